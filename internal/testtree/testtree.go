// Package testtree writes small dataset categories, random models and their
// PUAD fits in the reference's layouts for the tests and examples of the
// programs that read them.
package testtree

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/evaluate/stats"
	"github.com/puad-go/puad/internal/evalsetup"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// Category writes a small LOCO-like category (32×32 images, upscaled to
// the model's 256 when loaded) below root and returns its folder: 4 train,
// 3 validation, 2 good, 1 logical and 1 structural test images.
func Category(t testing.TB, root, datasetName, category string, variant synth.Variant, seed uint64) string {
	t.Helper()
	dir, err := WriteCategory(root, datasetName, category, variant, seed)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// WriteCategory is Category for callers without a testing.TB (examples).
func WriteCategory(root, datasetName, category string, variant synth.Variant, seed uint64) (string, error) {
	sum, err := synth.Generate(root, synth.Config{
		Seed: seed, Width: 32, Height: 32, DatasetName: datasetName, Category: category, Variant: variant,
		TrainGood: 4, WithValidation: true, ValidationGood: 3, TestGood: 2, TestLogical: 1, TestStructural: 1,
	})
	if err != nil {
		return "", err
	}
	return sum.Dir, nil
}

// LabelledFolder writes a labelled image folder at dir (which must not
// exist) in the layout of a category's test/: good/ with 3 images,
// logical_anomalies/ and structural_anomalies/ with 2 each, 32×32 images of
// the variant drawn from seed.
func LabelledFolder(t testing.TB, dir string, variant synth.Variant, seed uint64) string {
	t.Helper()
	tmp := dir + ".gen"
	sum, err := synth.Generate(tmp, synth.Config{
		Seed: seed, Width: 32, Height: 32, DatasetName: "labelled", Category: "images", Variant: variant,
		TrainGood: 1, TestGood: 3, TestLogical: 2, TestStructural: 2,
	})
	if err == nil {
		err = os.Rename(filepath.Join(sum.Dir, datasets.TestDir), dir)
	}
	if err == nil {
		err = os.RemoveAll(tmp)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// RandomModel writes an EfficientAD-S model with PyTorch's default
// initialisation drawn from seed into the reference layout below root: the
// teacher (if absent) and the category's student, autoencoder, mu, sigma and
// quantiles. The scores are meaningless but deterministic.
func RandomModel(t testing.TB, root, datasetName, category string, seed uint64) {
	t.Helper()
	if err := WriteRandomModel(root, datasetName, category, seed, 0); err != nil {
		t.Fatal(err)
	}
}

// WriteRandomModel is RandomModel for callers without a testing.TB, for
// images resized to imgSize (0 for the reference's 256; the autoencoder
// depends on it).
func WriteRandomModel(root, datasetName, category string, seed uint64, imgSize int) error {
	if imgSize <= 0 {
		imgSize = evalsetup.DefaultImgSize
	}
	m, err := models.NewEfficientAD(models.Small, int64(imgSize), tb.CPU)
	if err != nil {
		return err
	}
	defer m.Close()
	g, err := tb.NewGenerator(seed, tb.CPU)
	if err != nil {
		return err
	}
	defer g.Close()
	for _, mod := range []models.Module{m.Teacher, m.Student, m.AutoEncoder} {
		if err := models.InitDefault(mod, g, tb.CPU); err != nil {
			return err
		}
	}
	s := tb.NewScope()
	defer s.Close()
	m.Mu = s.Keep(s.T(tb.Zeros([]int64{models.TeacherChannels}, tb.Float32, tb.CPU)))
	m.Sigma = s.Keep(s.T(tb.Ones([]int64{models.TeacherChannels}, tb.Float32, tb.CPU)))
	for k, v := range map[string]float64{models.QuantileStudentA: 0, models.QuantileStudentB: 0.5, models.QuantileAutoEncoderA: 0, models.QuantileAutoEncoderB: 0.5} {
		m.Quantiles[k] = s.Keep(s.T(tb.Scalar(v, tb.Float32, tb.CPU)))
	}
	if err := s.Err(); err != nil {
		return err
	}
	l := models.Layout{Root: root, Size: models.Small}
	if _, err := os.Stat(l.TeacherPath()); err != nil {
		if err := writeTeacher(m.Teacher, l); err != nil {
			return err
		}
	}
	return m.Save(l.CategoryDir(datasetName, category))
}

// WriteFit fits PUAD (student extractor, EfficientAD-S on the CPU, images
// resized to imgSize, 0 for the reference's 256) on the category folder
// categoryDir with its model below modelDir, as `puad fit` does, and stores
// the fit where `puad predict` finds it.
func WriteFit(categoryDir, modelDir string, imgSize int, maxFPR float64) (*stats.FitFile, error) {
	ds, m, opts, err := evalsetup.Load(categoryDir, modelDir, evalsetup.Settings{
		Size: models.Small, Extractor: evaluate.StudentExtractor, Device: tb.CPU, ImgSize: imgSize})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	pm, err := evaluate.Fit(context.Background(), ds, m, opts)
	if err != nil {
		return nil, err
	}
	f, err := pm.FitFile(ds, maxFPR, time.Now())
	if err != nil {
		return nil, err
	}
	if err := stats.SaveFit(evalsetup.FitPath(modelDir, m.Size, ds.DatasetName, ds.Category), f); err != nil {
		return nil, fmt.Errorf("testtree: %w", err)
	}
	return f, nil
}

// Fitted writes a category, a random model and its fit (at imgSize, see
// WriteFit) below root and returns the model folder and the category folder.
func Fitted(root, datasetName, category string, variant synth.Variant, seed uint64, imgSize int) (modelDir, categoryDir string, err error) {
	modelDir = filepath.Join(root, "models")
	if categoryDir, err = WriteCategory(filepath.Join(root, "data"), datasetName, category, variant, seed); err != nil {
		return "", "", err
	}
	if err := WriteRandomModel(modelDir, datasetName, category, seed, imgSize); err != nil {
		return "", "", err
	}
	if _, err := WriteFit(categoryDir, modelDir, imgSize, stats.DefaultMaxFPR); err != nil {
		return "", "", err
	}
	return modelDir, categoryDir, nil
}

func writeTeacher(teacher models.Module, l models.Layout) error {
	if err := os.MkdirAll(l.TeacherDir(), 0o755); err != nil {
		return err
	}
	sd, err := models.StateDict(teacher)
	if err != nil {
		return err
	}
	defer sd.Close()
	return tb.SaveStateDict(l.TeacherPath(), sd)
}

// Poison rewrites the weights file path (a state dict, or a single tensor
// when key is "") in place, with its first value of key set to v (e.g.
// NaN), as a damaged or diverged file would hold it. The file is written
// directly, as by hand, so a model folder's manifest no longer matches it.
func Poison(t testing.TB, path, key string, v float32) {
	t.Helper()
	set := func(src *tb.Tensor) *tb.Tensor {
		vals, err := src.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		vals[0] = v
		out, err := tb.FromSlice(vals, src.Shape()...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if key == "" {
		src, err := tb.LoadTensor(path)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		out := set(src)
		defer out.Close()
		if err := tb.SaveTensor(path, out); err != nil {
			t.Fatal(err)
		}
		return
	}
	sd, err := tb.LoadStateDict(path)
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	src, ok := sd.Tensors[key]
	if !ok {
		t.Fatalf("%s has no key %q", path, key)
	}
	sd.Set(key, set(src))
	if err := tb.SaveStateDict(path, sd); err != nil {
		t.Fatal(err)
	}
}

// RewriteFit edits the PUAD fit file at path in place as decoded JSON, as
// a damaged or hand-edited file would be.
func RewriteFit(t testing.TB, path string, change func(map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	change(m)
	if data, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// NarrowFitSpread rewrites the PUAD fit file at path (RewriteFit) with the
// standard deviation of its EfficientAD validation scores set to relative
// times their mean's magnitude: a fit whose scores lie closer together than
// a precision may resolve (evaluate.CheckResolution).
func NarrowFitSpread(t testing.TB, path string, relative float64) {
	t.Helper()
	RewriteFit(t, path, func(fit map[string]any) {
		zscore, _ := fit["zscore"].(map[string]any)
		eff, _ := zscore["efficient_ad"].(map[string]any)
		mean, ok := eff["mean"].(float64)
		if !ok {
			t.Fatalf("%s has no zscore.efficient_ad.mean", path)
		}
		eff["std"] = math.Abs(mean) * relative
	})
}

// Unseal removes a category's manifest, so that hand-edited files load as
// in a reference folder.
func Unseal(t testing.TB, root, datasetName, category string) {
	t.Helper()
	p := filepath.Join(models.Layout{Root: root, Size: models.Small}.CategoryDir(datasetName, category), models.ManifestFile)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}

// Files maps the files under dir (slash-separated relative paths) to their
// content, for comparing output folders file for file.
func Files(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		files[filepath.ToSlash(rel)] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/evaluate/stats"
	"github.com/puad-go/puad/internal/testtree"
)

// TestFitAndPredict fits PUAD on a tiny category, then predicts its test
// images through the command line: the scores must be those of `puad eval`
// for the same images, bit for bit, unreadable inputs are reported and make
// the command fail, and every image gets a heatmap.
func TestFitAndPredict(t *testing.T) {
	root := t.TempDir()
	data, modelDir := filepath.Join(root, "data"), filepath.Join(root, "models")
	cat := testtree.Category(t, data, loco, "pushpins", synth.VariantPins, 7)
	testtree.RandomModel(t, modelDir, loco, "pushpins", 7)
	ctx := context.Background()
	st := evalSettings{Size: "s", Extractor: "student", Device: "cpu", Quiet: true}

	ps := predictSettings{ModelDir: modelDir, CategoryDir: cat, Inputs: []string{filepath.Join(cat, "test")}, Size: "s", Device: "cpu"}
	if _, err := runPredict(ctx, ps, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "puad fit DATASET MODELS --size s") {
		t.Fatalf("predict before fit: %v", err)
	}

	// 3 validation images and a maximum rate of 0.34: one may be above the threshold.
	f, path, err := runFit(ctx, cat, modelDir, st, 0.34)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(modelDir, "s_size", loco, "pushpins", stats.FitFileName); path != want {
		t.Errorf("fit written to %s, want %s", path, want)
	}
	if f.Threshold.Allowed != 1 || f.NumValidation != 3 || f.NumTrain != 4 || f.Threshold.Value != f.Validation[sortedIndex(f, 1)].PUAD {
		t.Errorf("fit %+v, threshold %+v", f, f.Threshold)
	}
	var printed bytes.Buffer
	printFit(&printed, f, path)
	t.Logf("puad fit prints:\n%s", printed.String())
	if !strings.Contains(printed.String(), "1 of 3 validation images above the threshold") {
		t.Errorf("fit output:\n%s", printed.String())
	}

	res, err := runEval(ctx, cat, modelDir, st)
	if err != nil {
		t.Fatal(err)
	}
	if res.Validation != f.Fusion {
		t.Errorf("fit z-scores %+v, eval's %+v", f.Fusion, res.Validation)
	}

	broken := filepath.Join(root, "broken.png")
	if err := os.WriteFile(broken, []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	heat, jsonPath := filepath.Join(root, "heat"), filepath.Join(root, "pred.json")
	app := newApp()
	err = app.Run(interspersed(app, []string{"puad", "predict", modelDir, filepath.Join(cat, "test"), broken,
		"--category", cat, "--device", "cpu", "--heatmaps", heat, "--json", jsonPath}))
	if err == nil || !strings.Contains(err.Error(), "1 of 5 inputs could not be read") {
		t.Errorf("predict with an unreadable image: %v", err)
	}
	var rep predictReport
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) != 1 || rep.Errors[0].Path != broken {
		t.Errorf("errors %+v", rep.Errors)
	}
	if len(rep.Images) != len(res.Test) {
		t.Fatalf("%d predictions, eval scored %d test images", len(rep.Images), len(res.Test))
	}
	for i, p := range rep.Images {
		want := res.Test[i]
		rel, _ := filepath.Rel(cat, p.Path)
		if filepath.ToSlash(rel) != want.Path {
			t.Fatalf("prediction %d is %s, eval's image %d is %s", i, rel, i, want.Path)
		}
		if p.EfficientAD != want.EfficientAD || p.Mahalanobis != want.Mahalanobis || p.PUAD != want.PUAD {
			t.Errorf("%s: predict %v %v %v, eval %v %v %v", want.Path, p.EfficientAD, p.Mahalanobis, p.PUAD, want.EfficientAD, want.Mahalanobis, want.PUAD)
		}
		if p.Anomalous != (p.PUAD > f.Threshold.Value) {
			t.Errorf("%s: verdict %v for PUAD %v and threshold %v", want.Path, p.Anomalous, p.PUAD, f.Threshold.Value)
		}
		wantHeat := filepath.Join(heat, strings.ReplaceAll(strings.TrimSuffix(want.Path, ".png"), "/", "_")+".png") // test_good_000.png
		if p.Heatmap != wantHeat {
			t.Errorf("heatmap %s, want %s", p.Heatmap, wantHeat)
		}
		checkHeatmap(t, p.Heatmap, 256)
	}

	for _, c := range []struct {
		ps   predictSettings
		want string
	}{
		{predictSettings{Size: "m"}, "--size m"},
		{predictSettings{Extractor: "teacher"}, "made with the student feature extractor, not teacher"},
	} {
		c.ps.ModelDir, c.ps.CategoryDir, c.ps.Inputs, c.ps.Device = modelDir, cat, ps.Inputs, "cpu"
		if c.ps.Size == "" {
			c.ps.Size = "s"
		}
		if _, err := runPredict(ctx, c.ps, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("predict %+v: %v, want %q", c.ps, err, c.want)
		}
	}
}

// sortedIndex returns the index in f.Validation of the (k+1)-th largest PUAD score.
func sortedIndex(f *stats.FitFile, k int) int {
	idx := make([]int, len(f.Validation))
	for i := range idx {
		idx[i] = i
	}
	for i := range idx {
		for j := i + 1; j < len(idx); j++ {
			if f.Validation[idx[j]].PUAD > f.Validation[idx[i]].PUAD {
				idx[i], idx[j] = idx[j], idx[i]
			}
		}
	}
	return idx[k]
}

// checkHeatmap decodes a heatmap PNG: the image part is size×size, with a
// colour bar on the right and two lines of text (title, score) below.
func checkHeatmap(t *testing.T, path string, size int) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Error(err)
		return
	}
	defer fh.Close()
	img, err := png.Decode(fh)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	b := img.Bounds()
	// Two text lines, three with the note of an image only the
	// Mahalanobis score flags.
	if (b.Dy() != size+2*15+4 && b.Dy() != size+3*15+4) || b.Dx() <= size+12 || b.Dx() > size+80 {
		t.Errorf("%s: %dx%d, want an image of %d pixels with a colour bar and two or three text lines", path, b.Dx(), b.Dy(), size)
	}
}

// TestFitHints checks that the errors of a missing or unusable fit file
// say which `puad fit` to run.
func TestFitHints(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "none", stats.FitFileName)
	old := filepath.Join(dir, stats.FitFileName)
	if err := os.WriteFile(old, []byte(`{"format": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	loadErr := func(path string) error {
		_, err := stats.LoadFit(path, "m", "")
		return err
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{loadErr(missing), "no PUAD fit at " + missing + ": run `puad fit DATASET MODELS --size m` for this category first"},
		{loadErr(old), "load PUAD fit " + old + ": format 1, this program reads format 2 (run `puad fit` again)"},
		{&stats.StaleError{File: "d/c/student.pt"},
			"model file d/c/student.pt changed since the PUAD fit was made: run `puad fit` again for this model"},
		{&stats.MismatchError{Path: "f.json", Field: stats.FieldSize, Have: "s", Want: "m"},
			"PUAD fit f.json belongs to size s, not m: run `puad fit` with --size m"},
		{&stats.MismatchError{Path: "f.json", Field: stats.FieldExtractor, Have: "student", Want: "teacher"},
			"PUAD fit f.json was made with the student feature extractor, not teacher: run `puad fit` with --feature-extractor teacher"},
	} {
		if got := withFitHint(c.err, "m"); got == nil || got.Error() != c.want {
			t.Errorf("withFitHint(%v) = %v, want %q", c.err, got, c.want)
		}
	}
}

// TestPredictBatchSize predicts the same inputs, an unreadable file among
// them, one image per forward pass and three: the printed lines and the
// reported errors (written to one stream, so their interleaving counts too)
// and the JSON report must be the same, byte for byte, and in the order of
// the inputs.
func TestPredictBatchSize(t *testing.T) {
	root := t.TempDir()
	modelDir, cat, err := testtree.Fitted(root, loco, "pushpins", synth.VariantPins, 7, 128)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := filepath.Glob(filepath.Join(cat, "test", "*", "*.png"))
	if err != nil || len(imgs) < 4 {
		t.Fatalf("test images %v: %v", imgs, err)
	}
	broken := filepath.Join(root, "broken.png")
	if err := os.WriteFile(broken, []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The unreadable file comes second, inside the first batch of three.
	inputs := append([]string{imgs[0], broken}, imgs[1:]...)
	run := func(batch int) (string, []byte) {
		ps := predictSettings{ModelDir: modelDir, CategoryDir: cat, Inputs: inputs, Size: "s", Device: "cpu", BatchSize: batch}
		var out bytes.Buffer
		rep, err := runPredict(context.Background(), ps, &out, &out)
		if err == nil || !strings.Contains(err.Error(), "1 of "+strconv.Itoa(len(inputs))+" inputs could not be read") {
			t.Errorf("batch %d: %v", batch, err)
		}
		js, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Images) != len(imgs) {
			t.Fatalf("batch %d: %d predictions for %d images", batch, len(rep.Images), len(imgs))
		}
		for i, p := range rep.Images {
			if p.Path != imgs[i] {
				t.Errorf("batch %d: prediction %d is %s, want %s", batch, i, p.Path, imgs[i])
			}
		}
		return out.String(), js
	}
	d, _, err := openDetector(predictSettings{ModelDir: modelDir, CategoryDir: cat, Size: "s", Device: "cpu", BatchSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	if d.BatchSize() != 3 {
		t.Errorf("--batch-size 3 gave a detector of batch size %d", d.BatchSize())
	}
	d.Close()
	out1, js1 := run(1)
	out3, js3 := run(3)
	if out1 != out3 || !strings.Contains(out1, "cannot read "+broken) {
		t.Errorf("printed, batch 1:\n%s\nbatch 3:\n%s", out1, out3)
	}
	if !bytes.Equal(js1, js3) {
		t.Errorf("JSON, batch 1:\n%s\nbatch 3:\n%s", js1, js3)
	}
}

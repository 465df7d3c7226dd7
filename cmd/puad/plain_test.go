package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/evaluate/stats"
	"github.com/puad-go/puad/internal/pyref"
	"github.com/puad-go/puad/internal/testtree"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// plainLine writes a tiny generated category as a plain folder named line
// (good images, validation/, test/) and a random model for it under
// MODELS/s_size/custom/line; it returns the folder and the model directory.
func plainLine(t *testing.T) (dir, modelDir string) {
	t.Helper()
	root := t.TempDir()
	cat := testtree.Category(t, filepath.Join(root, "data"), "gen", "tray", synth.VariantTray, 3)
	dir, modelDir = filepath.Join(root, "line"), filepath.Join(root, "models")
	if err := synth.WritePlain(cat, dir); err != nil {
		t.Fatal(err)
	}
	testtree.RandomModel(t, modelDir, datasets.PlainDatasetName, "line", 3)
	return dir, modelDir
}

// predictByName runs `puad predict MODELS --name line` on the plain
// folder's test images.
func predictByName(t *testing.T, dir, modelDir string, extra ...string) *predictReport {
	t.Helper()
	jsonPath := filepath.Join(t.TempDir(), "pred.json")
	args := append([]string{"puad", "predict", modelDir, filepath.Join(dir, "test"), "--name", "line", "--device", "cpu", "--json", jsonPath}, extra...)
	app := newApp()
	if err := app.Run(interspersed(app, args)); err != nil {
		t.Fatal(err)
	}
	var rep predictReport
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	return &rep
}

// sameScores fails unless predict scored eval's test images with eval's
// numbers, bit for bit.
func sameScores(t *testing.T, what string, rep *predictReport, res *evaluate.Result) {
	t.Helper()
	if len(rep.Images) != len(res.Test) {
		t.Fatalf("%s: %d predictions, %d eval scores", what, len(rep.Images), len(res.Test))
	}
	for i, p := range rep.Images {
		w := res.Test[i]
		if !strings.HasSuffix(filepath.ToSlash(p.Path), w.Path) || p.EfficientAD != w.EfficientAD || p.Mahalanobis != w.Mahalanobis || p.PUAD != w.PUAD {
			t.Errorf("%s: %s %v %v %v, eval %s %v %v %v", what, p.Path, p.EfficientAD, p.Mahalanobis, p.PUAD, w.Path, w.EfficientAD, w.Mahalanobis, w.PUAD)
		}
	}
}

// TestPlainFolderFitPredictByName evaluates and fits a plain folder, then
// predicts its test images by the model's name alone: the scores are
// eval's, bit for bit.
func TestPlainFolderFitPredictByName(t *testing.T) {
	dir, modelDir := plainLine(t)
	ctx := context.Background()
	st := evalSettings{Size: "s", Extractor: "student", Device: "cpu", Quiet: true}
	res, err := runEval(ctx, dir, modelDir, st)
	if err != nil {
		t.Fatal(err)
	}
	if res.DatasetName != "custom" || res.Category != "line" || len(res.Test) != 4 || res.NumTrain != 4 {
		t.Fatalf("eval of %s/%s: %d train, %d test images", res.DatasetName, res.Category, res.NumTrain, len(res.Test))
	}
	f, path, err := runFit(ctx, dir, modelDir, st, 0.34)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(modelDir, "s_size", "custom", "line", stats.FitFileName); path != want || f.Depth16 != "scale" || f.TeacherFile != "" {
		t.Errorf("fit %s (depth16 %q, teacher %q), want %s", path, f.Depth16, f.TeacherFile, want)
	}
	// The dataset folder is not needed any more.
	moved := dir + "-elsewhere"
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	sameScores(t, "predict --name", predictByName(t, moved, modelDir), res)

	// Another name for the same folder is another model.
	st.Name = "other"
	if _, err := runEval(ctx, moved, modelDir, st); err == nil || !strings.Contains(err.Error(), filepath.Join("custom", "other")) {
		t.Errorf("eval --name other: %v", err)
	}
}

// TestPlainFolderNeeds checks that each command asks for what it needs of a
// plain folder and no more.
func TestPlainFolderNeeds(t *testing.T) {
	dir, modelDir := plainLine(t)
	if err := os.RemoveAll(filepath.Join(dir, "test")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st := evalSettings{Size: "s", Extractor: "student", Device: "cpu", Quiet: true}
	var me *datasets.MissingError
	if _, err := runEval(ctx, dir, modelDir, st); !errors.As(err, &me) || !strings.Contains(err.Error(), "test folder test/") || !strings.Contains(err.Error(), "evaluation") {
		t.Errorf("eval without test images: %v", err)
	}
	if _, _, err := runFit(ctx, dir, modelDir, st, 0.01); err != nil {
		t.Errorf("fit without test images: %v", err)
	}
	_, stderr, code := runPuad(t, "predict", modelDir, dir)
	if code == 0 || !strings.Contains(stderr, "either --category DIR or --name NAME") {
		t.Errorf("predict without a model: exit %d, %s", code, stderr)
	}
	_, stderr, code = runPuad(t, "fit", filepath.Join(dir, "validation"), modelDir, "--name", "../x")
	if code == 0 || !strings.Contains(stderr, "invalid model name") {
		t.Errorf("fit --name ../x: exit %d, %s", code, stderr)
	}
}

// TestPublishedTeachers evaluates one model with the teachers that
// gen_teachers.py writes in every published layout: the scores are
// identical, and a fit made with one serves predict by name.
func TestPublishedTeachers(t *testing.T) {
	tdir := t.TempDir()
	pyref.Run(t, "../../models/testdata/gen_teachers.py", tdir)
	dir, modelDir := plainLine(t)
	ctx := context.Background()
	var first *evaluate.Result
	for _, layout := range []string{"reference", "anomalib", "sequential"} {
		st := evalSettings{Size: "s", Extractor: "student", Device: "cpu", Quiet: true,
			TeacherFile: filepath.Join(tdir, "teacher_s_"+layout+".pth")}
		res, err := runEval(ctx, dir, modelDir, st)
		if err != nil {
			t.Fatalf("%s: %v", layout, err)
		}
		if first == nil {
			first = res
			continue
		}
		for i := range res.Test {
			if res.Test[i] != first.Test[i] {
				t.Errorf("%s: %+v, reference layout %+v", layout, res.Test[i], first.Test[i])
			}
		}
	}
	seq := filepath.Join(tdir, "teacher_s_sequential.pth")
	st := evalSettings{Size: "s", Extractor: "student", Device: "cpu", Quiet: true, TeacherFile: seq}
	if _, _, err := runFit(ctx, dir, modelDir, st, 0.01); err != nil {
		t.Fatal(err)
	}
	sameScores(t, "predict after fit --teacher", predictByName(t, dir, modelDir), first)

	_, stderr, code := runPuad(t, "eval", dir, modelDir, "--teacher", filepath.Join(tdir, "teacher_m_sequential.pth"), "--quiet")
	if code == 0 || !strings.Contains(stderr, "is not a PDN_S teacher state dict") || !strings.Contains(stderr, "found 0.weight[256 3 4 4]") {
		t.Errorf("eval with a medium teacher: exit %d, %s", code, stderr)
	}
}

// TestTrainStudentPlainFolder trains briefly on a plain folder without test
// images, from a teacher in nn.Sequential layout: the teacher is copied in
// the reference layout, the model is named by --name, and no results.txt is
// written.
func TestTrainStudentPlainFolder(t *testing.T) {
	tdir := t.TempDir()
	pyref.Run(t, "../../models/testdata/gen_teachers.py", tdir)
	root := t.TempDir()
	cat := testtree.Category(t, filepath.Join(root, "data"), "gen", "tray", synth.VariantTray, 4)
	dir, modelDir := filepath.Join(root, "line"), filepath.Join(root, "models")
	if err := synth.WritePlain(cat, dir); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "test")); err != nil {
		t.Fatal(err)
	}
	seq := filepath.Join(tdir, "teacher_s_sequential.pth")
	args := []string{"train", "student", "none", modelDir, "--dataset", dir, "--name", "bolts", "--teacher", seq,
		"--iterations", "1", "--img-size", "128", "--device", "cpu", "--quiet", "--checkpoint-every", "0"}
	stdout, stderr, code := runPuad(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "no test images") || !strings.Contains(stderr, "sequential layout) copied to") {
		t.Errorf("stdout %s\nstderr %s", stdout, stderr)
	}
	l := models.Layout{Root: modelDir, Size: models.Small}
	catDir := l.CategoryDir("custom", "bolts")
	for _, f := range models.CategoryFiles {
		if _, err := os.Stat(filepath.Join(catDir, f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(catDir, models.ResultsFile)); err == nil {
		t.Error("results.txt written without test images")
	}
	sd, err := tb.LoadStateDict(l.TeacherPath())
	if err != nil {
		t.Fatal(err)
	}
	keys := slices.Clone(sd.Keys)
	sd.Close()
	if want := []string{"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "conv3.weight", "conv3.bias", "conv4.weight", "conv4.bias"}; !slices.Equal(keys, want) {
		t.Errorf("copied teacher keys %v", keys)
	}
	// The same teacher again is fine; another one is refused.
	if _, stderr, code = runPuad(t, append(args, "--name", "bolts2")...); code != 0 {
		t.Errorf("same teacher again: exit %d: %s", code, stderr)
	}
	args[9] = filepath.Join(tdir, "teacher_s_reference.pth")
	// teacher_s_reference.pth holds the same tensors as the sequential file.
	if _, stderr, code = runPuad(t, append(args, "--name", "bolts3")...); code != 0 {
		t.Errorf("same tensors in the reference layout: exit %d: %s", code, stderr)
	}
	other := filepath.Join(tdir, "other.pt")
	writeRandomTeacher(t, other)
	args[9] = other
	if _, stderr, code = runPuad(t, append(args, "--name", "bolts4")...); code == 0 || !strings.Contains(stderr, "holds another teacher") {
		t.Errorf("another teacher: exit %d: %s", code, stderr)
	}
}

// writeRandomTeacher writes a randomly initialised PDN_S teacher to path.
func writeRandomTeacher(t *testing.T, path string) {
	t.Helper()
	p, err := models.NewPDN(models.Small, models.TeacherChannels, false)
	if err != nil {
		t.Fatal(err)
	}
	defer models.Close(p)
	g, err := tb.NewGenerator(99, tb.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := models.InitDefault(p, g, tb.CPU); err != nil {
		t.Fatal(err)
	}
	if err := models.SaveTeacher(path, p); err != nil {
		t.Fatal(err)
	}
}

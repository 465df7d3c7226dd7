package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/detector"
	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/evaluate/defectmask"
	"github.com/puad-go/puad/evaluate/stats"
	"github.com/puad-go/puad/internal/sklearnref"
	"github.com/puad-go/puad/internal/testtree"
	"github.com/puad-go/puad/models"
)

// decisionTree is a category, its random model and a labelled folder for
// the tests of the operator's decisions.
type decisionTree struct {
	root, cat, models, labelled string
}

func newDecisionTree(t *testing.T) decisionTree {
	root := t.TempDir()
	d := decisionTree{root: root, models: filepath.Join(root, "models")}
	d.cat = testtree.Category(t, filepath.Join(root, "data"), loco, "tray", synth.VariantTray, 11)
	testtree.RandomModel(t, d.models, loco, "tray", 11)
	d.labelled = testtree.LabelledFolder(t, filepath.Join(root, "held_out"), synth.VariantTray, 12)
	return d
}

// puad runs the command line in this process; a failure's error is
// returned as main would print it (explain).
func puad(t *testing.T, args ...string) error {
	t.Helper()
	app := newApp()
	if err := app.Run(interspersed(app, append([]string{"puad"}, args...))); err != nil {
		return &cliError{err: err}
	}
	return nil
}

// cliError is a failed command's error, its message as main prints it.
type cliError struct{ err error }

func (e *cliError) Error() string { return explain(e.err) }
func (e *cliError) Unwrap() error { return e.err }

func (d decisionTree) fitFile(t *testing.T) *stats.FitFile {
	t.Helper()
	f, err := stats.LoadFit(fitPath(d.models, models.Small, loco, "tray"), "s", "student")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestFitThresholdFromFolder runs `puad fit --threshold-from DIR` with each
// kind of objective and checks the stored threshold against scikit-learn's
// choice on the scores `puad predict` gives the folder's images, and the
// stored pixel threshold of --pixel-fpr against the quantile rule on the
// validation maps of the Go API.
func TestFitThresholdFromFolder(t *testing.T) {
	d := newDecisionTree(t)
	if err := puad(t, "fit", d.cat, d.models, "--quiet", "--device", "cpu", "--threshold-from", d.labelled, "--objective", "f1", "--pixel-fpr", "0.02"); err != nil {
		t.Fatal(err)
	}
	f := d.fitFile(t)
	jsonPath := filepath.Join(d.root, "labelled.json")
	if err := puad(t, "predict", d.models, d.labelled, "--category", d.cat, "--device", "cpu", "--json", jsonPath); err != nil {
		t.Fatal(err)
	}
	var rep predictReport
	readJSON(t, jsonPath, &rep)
	scores := make([]float64, len(rep.Images))
	anomalous := make([]bool, len(rep.Images))
	for i, p := range rep.Images {
		scores[i] = p.PUAD
		anomalous[i] = filepath.Base(filepath.Dir(p.Path)) != datasets.NormalClass
	}
	objectives := []string{"f1", "fpr=0.4"}
	want := sklearnref.Thresholds(t, scores, anomalous, objectives)
	abs, _ := filepath.Abs(d.labelled)
	checkLabelledFit(t, f, abs, "f1", want["f1"])
	if !reflect.DeepEqual(rep.Threshold, f.Threshold) {
		t.Errorf("predict's threshold %+v, the fit's %+v", rep.Threshold, f.Threshold)
	}
	checkPixelThreshold(t, d, f, 0.02)
	for _, o := range objectives[1:] {
		if err := puad(t, "fit", d.cat, d.models, "--quiet", "--device", "cpu", "--threshold-from", d.labelled, "--objective", o); err != nil {
			t.Fatal(err)
		}
		f := d.fitFile(t)
		checkLabelledFit(t, f, abs, o, want[o])
		if f.PixelThreshold.MaxFPR != stats.DefaultPixelFPR {
			t.Errorf("default pixel rate %v", f.PixelThreshold.MaxFPR)
		}
	}
}

// checkLabelledFit compares a fit's labelled threshold with scikit-learn's.
func checkLabelledFit(t *testing.T, f *stats.FitFile, from, objective string, want stats.OperatingPoint) {
	t.Helper()
	th := f.Threshold
	if th.From != from || th.Objective == nil || th.Objective.String() != objective || th.Labelled == nil {
		t.Fatalf("%s: threshold %+v", objective, th)
	}
	if *th.Labelled != want || th.Value != want.Threshold {
		t.Errorf("%s: stored %v %+v, scikit-learn's %+v", objective, th.Value, *th.Labelled, want)
	}
	t.Logf("%s on %s: threshold %v, %+v", objective, th.Source(), th.Value, *th.Labelled)
}

// checkPixelThreshold checks f's pixel threshold against the rule of
// stats.ChoosePixelThreshold at rate on the validation images' maps as the
// detector (the Go API) computes them.
func checkPixelThreshold(t *testing.T, d decisionTree, f *stats.FitFile, rate float64) {
	t.Helper()
	det, err := detector.Load(d.models, d.cat, detector.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer det.Close()
	ds, err := datasets.OpenFor(d.cat, nil, datasets.NeedTrain, "")
	if err != nil {
		t.Fatal(err)
	}
	var maps [][]float32
	for _, p := range ds.Valid {
		in, err := det.DecodeFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := det.PredictBatch(context.Background(), []detector.Input{in})
		if err != nil {
			t.Fatal(err)
		}
		m, _ := rs[0].ModelMap()
		maps = append(maps, m)
	}
	want, err := stats.ChoosePixelThreshold(maps, rate)
	if err != nil {
		t.Fatal(err)
	}
	if pt := f.PixelThreshold; pt == nil || *pt != want {
		t.Errorf("pixel threshold %+v, the rule on the validation maps %+v", pt, want)
	}
}

// TestMasksAndThresholds fits a category with --pixel-fpr, runs `puad
// eval --masks` and `puad predict --threshold X --masks` on its test
// images and checks that the masks of eval, predict and the detector are
// the same bytes, that predict's verdicts flip at X and its JSON records
// the override, and that eval, predict and the detector judge by the
// fit's threshold. Then `puad fit --threshold-from test` stores
// scikit-learn's choice on the PUAD scores eval reports.
func TestMasksAndThresholds(t *testing.T) {
	d := newDecisionTree(t)
	if err := puad(t, "fit", d.cat, d.models, "--quiet", "--device", "cpu", "--pixel-fpr", "0.05"); err != nil {
		t.Fatal(err)
	}
	f := d.fitFile(t)
	evalMasks, evalJSON := filepath.Join(d.root, "eval-masks"), filepath.Join(d.root, "eval.json")
	if err := puad(t, "eval", d.cat, d.models, "--quiet", "--device", "cpu", "--masks", evalMasks, "--json", evalJSON); err != nil {
		t.Fatal(err)
	}
	var res evaluate.Result
	readJSON(t, evalJSON, &res)
	if len(res.OperatingPoints) == 0 || res.OperatingPoints[0].Name != "fitted" || res.OperatingPoints[0].Threshold != f.Threshold.Value {
		t.Errorf("eval's operating points %+v, fitted threshold %v", res.OperatingPoints, f.Threshold.Value)
	}
	scores := make([]float64, len(res.Test))
	for i, s := range res.Test {
		scores[i] = s.PUAD
	}
	x := slices.Sorted(slices.Values(scores))[len(scores)/2] // an image scoring exactly X is normal
	predMasks, predJSON := filepath.Join(d.root, "pred-masks"), filepath.Join(d.root, "pred.json")
	if err := puad(t, "predict", d.models, filepath.Join(d.cat, "test"), "--category", d.cat, "--device", "cpu",
		"--threshold", pyFloat(x), "--masks", predMasks, "--json", predJSON); err != nil {
		t.Fatal(err)
	}
	var rep predictReport
	readJSON(t, predJSON, &rep)
	if rep.ThresholdOverride == nil || *rep.ThresholdOverride != x || !reflect.DeepEqual(rep.Threshold, f.Threshold) || len(rep.Images) != len(res.Test) {
		t.Fatalf("predict --threshold %v: override %v, threshold %+v, %d images", x, rep.ThresholdOverride, rep.Threshold, len(rep.Images))
	}
	flagged := 0
	for i, p := range rep.Images {
		if p.PUAD != scores[i] || p.Anomalous != (p.PUAD > x) {
			t.Errorf("%s: PUAD %v (eval %v), anomalous %v at threshold %v", p.Path, p.PUAD, scores[i], p.Anomalous, x)
		}
		if p.Anomalous {
			flagged++
		}
	}
	if flagged == 0 || flagged == len(rep.Images) {
		t.Errorf("%d of %d flagged at the median score: the verdicts do not flip", flagged, len(rep.Images))
	}
	checkMasks(t, d, f, res, rep, evalMasks)
	checkFitFromTest(t, d, res)
}

// checkMasks compares the masks of eval and predict with each other and
// with the detector's, and predict's regions with the detector's.
func checkMasks(t *testing.T, d decisionTree, f *stats.FitFile, res evaluate.Result, rep predictReport, evalMasks string) {
	t.Helper()
	det, err := detector.Load(d.models, d.cat, detector.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer det.Close()
	if det.Threshold() != f.Threshold.Value {
		t.Errorf("detector threshold %v, the fit's %v", det.Threshold(), f.Threshold.Value)
	}
	defects := 0
	for i, p := range rep.Images {
		it := res.Test[i]
		evalFile := defectmask.Path(evalMasks, "tray", it.Class, it.Path)
		fromEval, err := os.ReadFile(evalFile)
		if err != nil {
			t.Fatal(err)
		}
		fromPredict, err := os.ReadFile(p.Mask)
		if err != nil {
			t.Fatal(err)
		}
		in, err := det.DecodeFile(p.Path)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := det.PredictBatch(context.Background(), []detector.Input{in})
		if err != nil {
			t.Fatal(err)
		}
		mask, regions, err := det.Defects(rs[0])
		if err != nil {
			t.Fatal(err)
		}
		var api bytes.Buffer
		if err := png.Encode(&api, mask); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fromEval, fromPredict) || !bytes.Equal(fromEval, api.Bytes()) {
			t.Errorf("%s: the masks of eval (%s), predict (%s) and the detector differ", it.Path, evalFile, p.Mask)
		}
		if img, err := png.Decode(bytes.NewReader(fromPredict)); err != nil || img.Bounds().Dx() != 32 || img.Bounds().Dy() != 32 {
			t.Errorf("%s: mask %v, want 32×32 (the image's size)", p.Mask, err)
		}
		if !slices.Equal(p.Regions, regions) {
			t.Errorf("%s: regions %+v, the detector's %+v", p.Path, p.Regions, regions)
		}
		defects += len(regions)
	}
	if defects == 0 {
		t.Error("no defect region in any test image at pixel rate 0.05")
	}
}

// checkFitFromTest runs `puad fit --threshold-from test` and compares the
// stored threshold with scikit-learn's choice on eval's PUAD scores.
func checkFitFromTest(t *testing.T, d decisionTree, res evaluate.Result) {
	t.Helper()
	scores := make([]float64, len(res.Test))
	anomalous := make([]bool, len(res.Test))
	for i, s := range res.Test {
		scores[i], anomalous[i] = s.PUAD, s.Anomalous
	}
	want := sklearnref.Thresholds(t, scores, anomalous, []string{"fpr=0.5"})
	if err := puad(t, "fit", d.cat, d.models, "--quiet", "--device", "cpu", "--threshold-from", "test", "--objective", "fpr=0.5"); err != nil {
		t.Fatal(err)
	}
	f := d.fitFile(t)
	checkLabelledFit(t, f, stats.FromTest, "fpr=0.5", want["fpr=0.5"])
	if f.PixelThreshold == nil || f.PixelThreshold.MaxFPR != stats.DefaultPixelFPR {
		t.Errorf("pixel threshold %+v", f.PixelThreshold)
	}
}

// pyFloat is v as a command-line argument that parses back to v.
func pyFloat(v float64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestDecisionErrors checks the refusals of the decision flags: each says
// what is wrong, and none needs a model run longer than a fit.
func TestDecisionErrors(t *testing.T) {
	d := newDecisionTree(t)
	noAnomaly := testtree.Category(t, filepath.Join(d.root, "no-anomaly"), loco, "tray", synth.VariantTray, 11)
	for _, c := range []string{"logical_anomalies", "structural_anomalies"} {
		if err := os.RemoveAll(filepath.Join(noAnomaly, "test", c)); err != nil {
			t.Fatal(err)
		}
	}
	normal := filepath.Join(d.root, "normal")
	if err := os.MkdirAll(filepath.Join(normal, "good"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(d.labelled, "good", "000.png"), filepath.Join(normal, "good", "000.png")); err != nil {
		t.Fatal(err)
	}
	fit := []string{"fit", d.cat, d.models, "--quiet", "--device", "cpu"}
	eval := []string{"eval", d.cat, d.models, "--quiet", "--device", "cpu", "--masks", filepath.Join(d.root, "masks")}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"eval --masks without a fit", eval, "defect masks: no PUAD fit at " + fitPath(d.models, models.Small, loco, "tray") + ": run `puad fit"},
		{"objective without a labelled source", append(fit, "--objective", "f1"), "--objective needs --threshold-from test or a labelled folder"},
		{"no such labelled folder", append(fit, "--threshold-from", filepath.Join(d.root, "absent")), "want validation, test or a labelled folder"},
		{"bad objective", append(fit, "--threshold-from", d.labelled, "--objective", "precision=1"), "--objective \"precision=1\""},
		{"pixel rate 1", append(fit, "--pixel-fpr", "1"), "--pixel-fpr 1: want a rate in [0, 1)"},
		{"negative pixel rate", append(fit, "--pixel-fpr", "-0.1"), "--pixel-fpr -0.1: want a rate in [0, 1)"},
		{"test images without anomalies", []string{"fit", noAnomaly, d.models, "--quiet", "--device", "cpu", "--threshold-from", "test"}, "no anomaly class"},
		{"labelled images without anomalies", append(fit, "--threshold-from", normal, "--objective", "recall=0.9"),
			"objective recall=0.9 needs anomalous images, and the labelled images are all normal"},
	} {
		if err := puad(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if err := puad(t, fit...); err != nil {
		t.Fatal(err)
	}
	path := fitPath(d.models, models.Small, loco, "tray")
	f := d.fitFile(t)
	f.PixelThreshold = nil
	if err := stats.SaveFit(path, f); err != nil {
		t.Fatal(err)
	}
	if err := puad(t, eval...); err == nil || !strings.Contains(err.Error(), "the PUAD fit has no pixel threshold (run `puad fit` again to store one)") {
		t.Errorf("eval --masks with a fit without pixel threshold: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.root, "masks")); err == nil {
		t.Error("a refused eval --masks left a mask folder")
	}
}

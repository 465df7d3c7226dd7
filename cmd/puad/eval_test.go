package main

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/evaluate/floattiff"
	"github.com/puad-go/puad/internal/testtree"
)

// runPuad runs the puad program (this test binary, see TestMain) with args
// and returns its stdout, stderr and exit status.
func runPuad(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PUAD_TEST_MAIN_ARGS="+strings.Join(args, "\x1f"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// referenceLines are the lines of eval's output that the reference's
// main.py prints, for a LOCO-like category.
var referenceLines = []string{
	`dataset name : mvtec_loco_anomaly_detection`,
	`category : tray`,
	`size : s`,
	`feature extractor : student`,
	`efficient_ad auroc : [0-9.e-]+`,
	`puad auroc : [0-9.e-]+`,
	`puad auroc for logical_anomalies: [0-9.e-]+`,
	`puad auroc for structural_anomalies: [0-9.e-]+`,
}

// operatingLines are the lines of the operating point at the F1-optimal
// threshold, overall and per anomaly class, that eval prints last (no fit
// is stored).
var operatingLines = []string{
	`operating point at the F1-optimal threshold [0-9.e-]+ : TP \d+, FP \d+, TN \d+, FN \d+, precision [0-9.]+, recall [0-9.]+, F1 [0-9.]+, FPR [0-9.]+`,
	`  logical_anomalies : TP \d+, FP \d+, TN \d+, FN \d+, precision [0-9.]+, recall [0-9.]+, F1 [0-9.]+, FPR [0-9.]+`,
	`  structural_anomalies : TP \d+, FP \d+, TN \d+, FN \d+, precision [0-9.]+, recall [0-9.]+, F1 [0-9.]+, FPR [0-9.]+`,
}

// sproLines are the AU-sPRO lines of eval's output with the given suffix.
func sproLines(suffix string) []string {
	var out []string
	for _, l := range []string{"0.05", "0.1", "0.3", "1.0"} {
		out = append(out, `au_spro@`+regexp.QuoteMeta(l)+suffix+` : [0-9.e-]+`)
	}
	return out
}

func checkLines(t *testing.T, stdout string, want []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), stdout)
	}
	for i, w := range want {
		if !regexp.MustCompile("^" + w + "$").MatchString(lines[i]) {
			t.Errorf("line %d = %q, want %s", i+1, lines[i], w)
		}
	}
}

// With ground truth (the generated LOCO layout with defects_config.json),
// eval prints the reference's lines, then the pixel-level ones, writes
// them to the JSON and the maps as TIFFs.
func TestEvalPrintsTheReferenceLines(t *testing.T) {
	root := filepath.Join(testRoot, "eval-lines")
	dir := testtree.Category(t, filepath.Join(root, "data"), loco, "tray", synth.VariantTray, 5)
	testtree.RandomModel(t, filepath.Join(root, "models"), loco, "tray", 5)
	jsonPath := filepath.Join(root, "out.json")
	mapsDir := filepath.Join(root, "maps")
	stdout, stderr, code := runPuad(t, "eval", dir, filepath.Join(root, "models"), "--json", jsonPath, "--quiet", "--maps", mapsDir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := append([]string{}, referenceLines...)
	want = append(want, `pixel auroc : [0-9.e-]+`)
	want = append(want, sproLines("")...)
	for _, c := range []string{"logical_anomalies", "structural_anomalies"} {
		want = append(want, `pixel auroc for `+c+` : [0-9.e-]+`)
		want = append(want, sproLines(" for "+c)...)
	}
	want = append(want, operatingLines...)
	checkLines(t, stdout, want)
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"efficient_ad_auroc"`, `"puad_auroc_per_class"`, `"validation"`, `"path": "test/good/000.png"`, `"mahalanobis_distance"`, `"puad_score"`,
		`"pixel_auroc"`, `"au_spro": {`, `"0.05"`, `"1.0"`, `"localization_per_class"`, `"operating_points"`, `"name": "f1_optimal"`} {
		if !bytes.Contains(data, []byte(key)) {
			t.Errorf("JSON lacks %s", key)
		}
	}
	if bytes.Contains(data, []byte(`"au_pro"`)) {
		t.Error("JSON has an AU-PRO for LOCO channels")
	}
	for _, f := range []string{"test/good/000.tiff", "test/good/001.tiff", "test/logical_anomalies/000.tiff", "test/structural_anomalies/000.tiff"} {
		m, err := os.ReadFile(filepath.Join(mapsDir, "tray", filepath.FromSlash(f)))
		if err != nil {
			t.Fatal(err)
		}
		pix, w, h, err := floattiff.Decode(m)
		if err != nil || w != 32 || h != 32 || len(pix) != 32*32 {
			t.Errorf("%s: %d×%d, %v; want a 32×32 float map (the image's size)", f, w, h, err)
		}
	}
}

// With MVTec AD masks eval reports the pixel AUROC and the AU-PRO, overall
// and per class, and no AU-sPRO.
func TestEvalMVTecADMasks(t *testing.T) {
	root := filepath.Join(testRoot, "eval-ad-masks")
	sum, err := synth.Generate(filepath.Join(root, "data"), synth.Config{
		Seed: 5, Width: 32, Height: 32, DatasetName: loco, Category: "tray", Variant: synth.VariantTray,
		TrainGood: 4, WithValidation: true, ValidationGood: 3, TestGood: 2, TestLogical: 1, TestStructural: 1,
		Masks: synth.MasksMVTecAD,
	})
	if err != nil {
		t.Fatal(err)
	}
	testtree.RandomModel(t, filepath.Join(root, "models"), loco, "tray", 5)
	jsonPath := filepath.Join(root, "out.json")
	stdout, stderr, code := runPuad(t, "eval", sum.Dir, filepath.Join(root, "models"), "--json", jsonPath, "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := append([]string{}, referenceLines...)
	want = append(want, `pixel auroc : [0-9.e-]+`, `au_pro : [0-9.e-]+`)
	for _, c := range []string{"logical_anomalies", "structural_anomalies"} {
		want = append(want, `pixel auroc for `+c+` : [0-9.e-]+`, `au_pro for `+c+` : [0-9.e-]+`)
	}
	want = append(want, operatingLines...)
	checkLines(t, stdout, want)
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"au_pro"`)) || bytes.Contains(data, []byte(`"au_spro"`)) {
		t.Errorf("JSON with MVTec AD masks:\n%s", data)
	}
}

// Without ground truth the output is the reference's lines alone, and the
// JSON has no pixel-level key.
func TestEvalWithoutMasksPrintsOnlyTheReferenceLines(t *testing.T) {
	root := filepath.Join(testRoot, "eval-no-masks")
	dir := testtree.Category(t, filepath.Join(root, "data"), loco, "tray", synth.VariantTray, 5)
	if err := os.RemoveAll(filepath.Join(dir, "ground_truth")); err != nil {
		t.Fatal(err)
	}
	testtree.RandomModel(t, filepath.Join(root, "models"), loco, "tray", 5)
	jsonPath := filepath.Join(root, "out.json")
	stdout, stderr, code := runPuad(t, "eval", dir, filepath.Join(root, "models"), "--json", jsonPath, "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	checkLines(t, stdout, append(append([]string{}, referenceLines...), operatingLines...))
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"pixel_auroc"`, `"au_pro"`, `"au_spro"`, `"localization_per_class"`} {
		if bytes.Contains(data, []byte(key)) {
			t.Errorf("JSON has %s without masks", key)
		}
	}
}

func TestEvalErrors(t *testing.T) {
	root := filepath.Join(testRoot, "eval-errors")
	models := filepath.Join(root, "models")
	testtree.RandomModel(t, models, loco, "tray", 6)
	fresh := func(name string) string {
		return testtree.Category(t, filepath.Join(root, name), loco, "tray", synth.VariantTray, 6)
	}
	noTrain := fresh("no-train")
	os.RemoveAll(filepath.Join(noTrain, "train"))
	noTest := fresh("no-test")
	os.RemoveAll(filepath.Join(noTest, "test"))
	badImage := fresh("bad-image")
	bad := filepath.Join(badImage, "test", "good", "zz_broken.png")
	os.WriteFile(bad, []byte("not a png"), 0o644)
	noAnomaly := fresh("no-anomaly")
	os.RemoveAll(filepath.Join(noAnomaly, "test", "logical_anomalies"))
	os.RemoveAll(filepath.Join(noAnomaly, "test", "structural_anomalies"))
	emptyClass := fresh("empty-class")
	os.MkdirAll(filepath.Join(emptyClass, "test", "broken"), 0o755)
	noMask := fresh("no-mask")
	missing := filepath.Join(noMask, "ground_truth", "structural_anomalies", "000")
	os.RemoveAll(missing)
	badConfig := fresh("bad-config")
	os.WriteFile(filepath.Join(badConfig, "defects_config.json"), []byte(`{"not": "a list"}`), 0o644)
	smallMask := fresh("small-mask")
	os.WriteFile(filepath.Join(smallMask, "ground_truth", "logical_anomalies", "000", "000.png"), tinyPNG(t), 0o644)
	otherCategory := testtree.Category(t, filepath.Join(root, "other"), loco, "pins", synth.VariantPins, 6)

	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"no train", []string{noTrain, models}, []string{"train"}},
		{"no test", []string{noTest, models}, []string{"test"}},
		{"unreadable image", []string{badImage, models}, []string{"zz_broken.png"}},
		{"no anomaly class", []string{noAnomaly, models}, []string{"anomal"}},
		{"empty class folder", []string{emptyClass, models}, []string{"broken"}},
		{"no model for the category", []string{otherCategory, models}, []string{"pins", "student.pt"}},
		{"model of another size", []string{fresh("m"), models, "--size", "m"}, []string{"m_size", "teacher.pt"}},
		{"model of another image size", []string{fresh("imgsize"), models, "--img-size", "128"}, []string{"autoencoder.pt", "encoder.enconv6.weight", "another --img-size?"}},
		{"no such model directory", []string{fresh("nomodels"), filepath.Join(root, "absent")}, []string{"absent"}},
		{"bad size", []string{fresh("badsize"), models, "--size", "xl"}, []string{"xl"}},
		{"bad device", []string{fresh("baddev"), models, "--device", "tpu"}, []string{"tpu"}},
		{"cuda without a GPU", []string{fresh("cuda"), models, "--device", "cuda"}, []string{"CUDA"}},
		{"too few arguments", []string{fresh("args")}, []string{"DATASET and MODELS"}},
		{"missing mask", []string{noMask, models}, []string{missing}},
		{"malformed defects config", []string{badConfig, models}, []string{filepath.Join(badConfig, "defects_config.json")}},
		{"mask of another size", []string{smallMask, models}, []string{filepath.Join("logical_anomalies", "000", "000.png"), "2×2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := runPuad(t, append([]string{"eval", "--quiet"}, c.args...)...)
			if code != 1 {
				t.Errorf("exit status %d, want 1; stderr:\n%s", code, stderr)
			}
			if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") {
				t.Errorf("stderr has a stack trace:\n%s", stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// tinyPNG is a 2×2 grey PNG.
func tinyPNG(t *testing.T) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestInterspersedFlags(t *testing.T) {
	app := newApp()
	got := interspersed(app, []string{"puad", "eval", "data", "models", "--json", "x.json", "--quiet", "--size=m"})
	want := []string{"puad", "eval", "--json", "x.json", "--quiet", "--size=m", "--", "data", "models"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, c := range []struct{ args, want []string }{
		{[]string{"puad", "--threads", "2", "eval", "data", "models", "--quiet"},
			[]string{"puad", "--threads", "2", "eval", "--quiet", "--", "data", "models"}},
		// Global flags after the verb move in front of it.
		{[]string{"puad", "eval", "data", "models", "--threads", "2"},
			[]string{"puad", "--threads", "2", "eval", "--", "data", "models"}},
		{[]string{"puad", "eval", "--threads=3", "data", "--quiet", "models"},
			[]string{"puad", "--threads=3", "eval", "--quiet", "--", "data", "models"}},
		{[]string{"puad", "train", "student", "none", "models", "--dataset", "d", "--threads", "2", "--seed", "1"},
			[]string{"puad", "--threads", "2", "train", "student", "--dataset", "d", "--seed", "1", "--", "none", "models"}},
		// After "--" everything is an argument.
		{[]string{"puad", "eval", "--", "data", "--threads", "2"},
			[]string{"puad", "eval", "--", "data", "--threads", "2"}},
	} {
		if got := interspersed(app, c.args); strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("%q: got %q, want %q", c.args, got, c.want)
		}
	}
}

// TestGlobalFlagAfterVerb runs commands with --threads after their
// arguments: the flag is accepted, not "flag provided but not defined".
func TestGlobalFlagAfterVerb(t *testing.T) {
	for _, args := range [][]string{
		{"version", "--threads", "1"},
		{"eval", filepath.Join(testRoot, "absent-data"), filepath.Join(testRoot, "absent-models"), "--threads", "1"},
		{"train", "student", "none", filepath.Join(testRoot, "absent-models"), "--threads", "1"},
	} {
		_, stderr, _ := runPuad(t, args...)
		if strings.Contains(stderr, "not defined") || strings.Contains(stderr, "threads") {
			t.Errorf("%q: %s", args, stderr)
		}
	}
}

// TestHelpListsCommands checks the order of the verbs in `puad --help`.
func TestHelpListsCommands(t *testing.T) {
	stdout, stderr, code := runPuad(t, "--help")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	_, list, _ := strings.Cut(stdout, "COMMANDS:")
	var names []string
	for _, line := range strings.Split(list, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasSuffix(line, ":") && !strings.HasPrefix(line, " ") {
			if len(names) > 0 {
				break
			}
			continue
		}
		names = append(names, strings.TrimSuffix(f[0], ","))
	}
	want := "eval fit predict serve train reproduce demo version help"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("commands listed: %q, want %q\n%s", got, want, stdout)
	}
}

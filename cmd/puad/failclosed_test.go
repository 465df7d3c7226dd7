package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/evaluate/stats"
	"github.com/puad-go/puad/internal/testtree"
)

// TestPredictFailsClosed: a fit that does not fit the model (another
// dimension, an unknown extractor, a retrained student) is refused without
// a panic; a score that is not a number is the verdict "invalid" and a
// non-zero exit; --json /dev/stdout writes through the link; an
// interrupted run marks its report incomplete.
func TestPredictFailsClosed(t *testing.T) {
	root := filepath.Join(testRoot, "fail-closed")
	data, modelDir := filepath.Join(root, "data"), filepath.Join(root, "models")
	cat := testtree.Category(t, data, loco, "pushpins", synth.VariantPins, 7)
	testtree.RandomModel(t, modelDir, loco, "pushpins", 7)
	ctx := context.Background()
	_, fitPath, err := runFit(ctx, cat, modelDir, evalSettings{Size: "s", Extractor: "student", Device: "cpu", Quiet: true}, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(fitPath)
	if err != nil {
		t.Fatal(err)
	}
	image := filepath.Join(cat, datasets.TestDir, datasets.NormalClass)
	ps := predictSettings{ModelDir: modelDir, CategoryDir: cat, Inputs: []string{image}, Size: "s", Device: "cpu"}

	// --json /dev/stdout, through the program: the JSON reaches the output.
	stdout, stderr, code := runPuad(t, "predict", modelDir, image, "--category", cat, "--device", "cpu", "--json", "/dev/stdout")
	if code != 0 || !strings.Contains(stdout, `"fit_file":`) || !strings.Contains(stdout, "2 images: ") {
		t.Errorf("--json /dev/stdout: exit %d, stdout:\n%s\nstderr: %s", code, stdout, stderr)
	}
	if fi, err := os.Lstat("/dev/stdout"); err == nil && fi.Mode().IsRegular() {
		t.Error("/dev/stdout was replaced by a regular file")
	}
	// The pixel limit, lowered below the test images' 32×32.
	_, stderr, code = runPuad(t, "--max-image-pixels", "1000", "predict", modelDir, image, "--category", cat, "--device", "cpu")
	if code == 0 || !strings.Contains(stderr, "over the limit of 1000 pixels") {
		t.Errorf("--max-image-pixels 1000: exit %d, stderr %s", code, stderr)
	}

	// An interrupted run: the report says so.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	rep, err := runPredict(cancelled, ps, io.Discard, io.Discard)
	if err == nil || rep == nil || !rep.Incomplete || !strings.Contains(err.Error(), "interrupted after") {
		t.Errorf("interrupted predict: %v, report %+v", err, rep)
	}

	diag := func(v float64) func(m map[string]any) {
		return func(m map[string]any) {
			inv := m["inverse_covariance"].([]any)
			for i := range inv {
				row := make([]float64, len(inv))
				row[i] = v
				inv[i] = row
			}
		}
	}
	for _, c := range []struct {
		name   string
		change func(map[string]any)
		want   string
	}{
		{"10 features", func(m map[string]any) {
			m["feature_mean"] = make([]float64, 10)
			m["inverse_covariance"] = diagonal(10)
		}, "10-dimensional features, the model gives 384"},
		{"unknown extractor", func(m map[string]any) { m["feature_extractor"] = "resnet" }, `feature extractor "resnet"`},
		{"overflowing covariance", diag(1e308), "got a score that is not a number (verdict invalid)"},
	} {
		if err := os.WriteFile(fitPath, good, 0o644); err != nil {
			t.Fatal(err)
		}
		testtree.RewriteFit(t, fitPath, c.change)
		var out strings.Builder
		rep, err := runPredict(ctx, ps, &out, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		if c.name == "overflowing covariance" {
			if rep == nil || len(rep.Images) == 0 || !rep.Images[0].Invalid || rep.Images[0].Anomalous || !strings.Contains(out.String(), "invalid") {
				t.Errorf("verdicts for a non-finite score: %s", out.String())
			}
			if _, err := json.Marshal(rep); err != nil {
				t.Errorf("report of invalid scores: %v", err)
			}
		}
	}

	// The student retrained after the fit: the fit is stale.
	if err := os.WriteFile(fitPath, good, 0o644); err != nil {
		t.Fatal(err)
	}
	testtree.RandomModel(t, modelDir, loco, "pushpins", 8)
	var stale *stats.StaleError
	if _, err := runPredict(ctx, ps, io.Discard, io.Discard); !errors.As(err, &stale) || !strings.Contains(err.Error(), "changed since the PUAD fit was made: run `puad fit` again") {
		t.Errorf("fit of the previous student: %v", err)
	}
}

func diagonal(n int) [][]float64 {
	m := make([][]float64, n)
	for i := range m {
		m[i] = make([]float64, n)
		m[i][i] = 1
	}
	return m
}

// TestFlagsChecked: bad numbers on the command line are refused, each
// blamed on its flag.
func TestFlagsChecked(t *testing.T) {
	root := filepath.Join(testRoot, "flags")
	cat := testtree.Category(t, filepath.Join(root, "data"), loco, "tray", synth.VariantTray, 5)
	models := filepath.Join(root, "models")
	testtree.RandomModel(t, models, loco, "tray", 5)
	asFile := filepath.Join(root, "file")
	if err := os.WriteFile(asFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--threads", "-3", "version"}, "--threads -3: want 1 to"},
		{[]string{"--threads", "100000", "version"}, "--threads 100000: want 1 to"},
		{[]string{"--max-image-pixels", "0", "version"}, "--max-image-pixels 0: want a positive number"},
		{[]string{"eval", cat, models, "--batch-size", "-1"}, "--batch-size -1"},
		{[]string{"predict", models, cat, "--category", cat, "--batch-size", "-2"}, "--batch-size -2"},
		{[]string{"eval", cat, models, "--img-size", "0"}, "--img-size: image size 0"},
		{[]string{"fit", cat, models, "--img-size", "130"}, "--img-size: image size 130"},
		{[]string{"eval", cat, asFile}, "model directory " + asFile + ": not a directory"},
		{[]string{"reproduce", "--data", root, "--models", models, "--categories", "../tray"}, `category "../tray": want a category's folder name`},
		{[]string{"train", "student", "none", models, "--dataset", cat, "--batch-size", "1000000"}, "batch size 1000000"},
	} {
		_, stderr, code := runPuad(t, c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("puad %s: exit %d, stderr %q, want %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
}

// TestOneValidationImage: a category with one validation image is refused
// with the reason, not a NaN.
func TestOneValidationImage(t *testing.T) {
	root := filepath.Join(testRoot, "one-valid")
	cat := testtree.Category(t, filepath.Join(root, "data"), loco, "tray", synth.VariantTray, 5)
	testtree.RandomModel(t, filepath.Join(root, "models"), loco, "tray", 5)
	valid, err := filepath.Glob(filepath.Join(cat, datasets.ValidationDir, datasets.NormalClass, "*.png"))
	if err != nil || len(valid) < 2 {
		t.Fatalf("validation images %v (%v)", valid, err)
	}
	for _, p := range valid[1:] {
		os.Remove(p)
	}
	_, err = runEval(context.Background(), cat, filepath.Join(root, "models"), evalSettings{Size: "s", Extractor: "student", Device: "cpu", Quiet: true})
	if err == nil || !strings.Contains(err.Error(), "need at least 2 validation images") {
		t.Errorf("one validation image: %v", err)
	}
}

// TestMessagesPlain: errors of interrupted work say so in words, and an
// interrupted demo does not promise a --resume it lacks.
func TestMessagesPlain(t *testing.T) {
	err := fmt.Errorf("validation images: %w", context.Canceled)
	if got := explain(err); got != "validation images: interrupted" {
		t.Errorf("explain: %q", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got := demoError(ctx, err).Error()
	if strings.Contains(got, "--resume") || !strings.Contains(got, "run `puad demo` again") {
		t.Errorf("interrupted demo: %q", got)
	}
}

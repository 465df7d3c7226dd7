package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/detector"
	"github.com/puad-go/puad/evaluate/floattiff"
)

// TestDemoWiring runs the demo in miniature (tiny images and counts, two
// training iterations): it tests that the steps connect, not the quality.
func TestDemoWiring(t *testing.T) {
	cfg := defaultDemoConfig()
	cfg.OutDir, cfg.Iterations, cfg.Device, cfg.Quiet, cfg.HeatmapsPerClass = t.TempDir(), 2, "cpu", true, 1
	cfg.Data = synth.Config{Width: 32, Height: 32, DatasetName: "synthetic_loco", Category: "tray", Variant: synth.VariantTray,
		TrainGood: 6, WithValidation: true, ValidationGood: 4, TestGood: 2, TestLogical: 2, TestStructural: 2}
	var out bytes.Buffer
	o, err := runDemo(context.Background(), cfg, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	text := out.String()
	t.Logf("output:\n%s", text)
	for _, s := range []string{
		"RANDOM weights", "can be downloaded here", "2 iterations at 128×128",
		"EfficientAD (S)", "Mahalanobis distance alone", "PUAD (EfficientAD + Mahalanobis)",
		"Logical anomalies: EfficientAD", "On this data", "demo finished in",
		"Pixel-level results", "pixel AUROC", "AU-sPRO@0.05", "AU-sPRO@1.0",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("output lacks %q", s)
		}
	}
	if len(o.Rows) != 3 || o.Result.NumTrain != 6 || len(o.Result.Test) != 6 {
		t.Errorf("rows %+v, result %d train, %d test", o.Rows, o.Result.NumTrain, len(o.Result.Test))
	}
	if got, want := o.Rows[2].All, o.Result.PUADAUROC; got != want {
		t.Errorf("PUAD AUROC in the table %v, evaluation %v", got, want)
	}
	if len(o.Heatmaps) != 3 {
		t.Errorf("heatmaps %v", o.Heatmaps)
	}
	for _, h := range o.Heatmaps {
		checkHeatmap(t, h, detector.HeatmapMinSize)
	}
	if _, err := os.Stat(filepath.Join(cfg.OutDir, "results.json")); err != nil {
		t.Error(err)
	}

	// The demo trained on the plain folder: its model and fit serve `puad
	// predict --name` at the demo's input size, with the scores of the
	// evaluation, bit for bit.
	plain := filepath.Join(cfg.OutDir, "data", "own_images", "tray")
	for _, p := range []string{"validation", "test/good", "test/logical_anomalies", "000.png"} {
		if _, err := os.Stat(filepath.Join(plain, p)); err != nil {
			t.Error(err)
		}
	}
	if o.Result.DatasetName != "custom" || o.Result.Category != "tray" {
		t.Errorf("evaluated %s/%s", o.Result.DatasetName, o.Result.Category)
	}
	for _, s := range []string{"[6/6] predict by name", "--name tray", "2 images: "} {
		if !strings.Contains(text, s) {
			t.Errorf("output lacks %q", s)
		}
	}
	mapsDir := filepath.Join(cfg.OutDir, "maps")
	rep, err := runPredict(context.Background(), predictSettings{ModelDir: filepath.Join(cfg.OutDir, "models"), Name: "tray",
		Inputs: []string{filepath.Join(plain, "test")}, Size: "s", Device: "cpu", MapsDir: mapsDir}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Images) != len(o.Result.Test) {
		t.Fatalf("predict scored %d images, evaluation %d", len(rep.Images), len(o.Result.Test))
	}
	// --maps writes each image's map at the image's size in the official layout.
	want := filepath.Join(mapsDir, "tray", "test", "structural_anomalies", "001.tiff")
	if rep.Images[len(rep.Images)-1].Map != want {
		t.Errorf("last map %q, want %s", rep.Images[len(rep.Images)-1].Map, want)
	}
	data, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if _, w, h, err := floattiff.Decode(data); err != nil || w != 32 || h != 32 {
		t.Errorf("%s: %d×%d, %v; want the image's 32×32", want, w, h, err)
	}
	// The plain folder carries the ground truth: the demo prints pixel-level results.
	if !strings.Contains(text, "Pixel-level results") {
		t.Errorf("output lacks the pixel-level table")
	}
	for i, p := range rep.Images {
		if want := o.Result.Test[i]; p.PUAD != want.PUAD || p.EfficientAD != want.EfficientAD {
			t.Errorf("%s: predict %v %v, demo %v %v", want.Path, p.EfficientAD, p.PUAD, want.EfficientAD, want.PUAD)
		}
	}
}

func TestDemoVerdict(t *testing.T) {
	row := func(l float64) demoRow { return demoRow{Logical: l, Structural: 0.5} }
	for _, c := range []struct {
		eff, puad float64
		want      string
	}{
		{0.70, 0.90, "HELPS"},
		{0.90, 0.70, "does NOT help"},
		{0.90, 0.91, "NO CLEAR DIFFERENCE"},
	} {
		if v := demoVerdict([]demoRow{row(c.eff), row(0), row(c.puad)}); !strings.Contains(v, c.want) {
			t.Errorf("%v → %v: %q, want %q", c.eff, c.puad, v, c.want)
		}
	}
	app := newApp()
	if err := app.Run([]string{"puad", "demo", "--iterations", "0", "--out", t.TempDir()}); err == nil || !strings.Contains(err.Error(), "--iterations 0") {
		t.Errorf("demo --iterations 0: %v", err)
	}
}

package serve_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/puad-go/puad/detector"
	"github.com/puad-go/puad/evaluate/stats"
	"github.com/puad-go/puad/internal/testtree"
	"github.com/puad-go/puad/serve"
)

// TestResolutionWarning: a served category whose fit's EfficientAD scores
// lie closer together than the networks' precision resolves
// (Detector.CheckResolution) is logged as a warning when the server starts;
// the test category's own fit is not.
func TestResolutionWarning(t *testing.T) {
	start := func(d *detector.Detector) string {
		var buf bytes.Buffer
		s, err := serve.New([]*detector.Detector{d}, serve.Config{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		return buf.String()
	}
	if log := start(newDetector(t, 1)); strings.Contains(log, "level=WARN") {
		t.Errorf("the test category's fit logged a warning:\n%s", log)
	}

	narrow := t.TempDir()
	if err := os.CopyFS(narrow, os.DirFS(modelDir)); err != nil {
		t.Fatal(err)
	}
	// A spread of 1e-8 of the mean: below float32's 4 × 2^-24.
	testtree.NarrowFitSpread(t, filepath.Join(narrow, "s_size", "mvtec_loco_anomaly_detection", "pushpins", stats.FitFileName), 1e-8)
	d, err := detector.Load(narrow, categoryDir, detector.Options{BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	log := start(d)
	if !strings.Contains(log, "level=WARN msg=precision category=pushpins warning=\"EfficientAD's validation scores spread only 1e-08 of their mean, less than fp32 resolves") {
		t.Errorf("no warning about a fit whose scores spread 1e-8 of their mean:\n%s", log)
	}
}

package detector_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/puad-go/puad/detector"
	"github.com/puad-go/puad/evaluate/stats"
	"github.com/puad-go/puad/internal/evalsetup"
	"github.com/puad-go/puad/internal/testtree"
	"github.com/puad-go/puad/models"
)

// A score that is not a number is the verdict invalid, never normal nor
// anomalous, whatever the threshold.
func TestInvalidVerdict(t *testing.T) {
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		r := detector.Result{PUAD: v}.WithThreshold(0)
		if !r.Invalid || r.Anomalous || r.Verdict() != stats.VerdictInvalid {
			t.Errorf("PUAD %v: %+v, verdict %v", v, r, r.Verdict())
		}
	}
	r := detector.Result{PUAD: 1}.WithThreshold(0)
	if r.Invalid || !r.Anomalous || r.Verdict() != stats.VerdictAnomalous {
		t.Errorf("PUAD 1 over 0: %+v", r)
	}
}

// copyModels copies the shared model directory, so that a test may damage
// its copy.
func copyModels(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "models")
	if err := os.CopyFS(dir, os.DirFS(modelDir)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A fit whose scores overflow gives invalid results; a model changed since
// its fit is refused with a *stats.StaleError.
func TestFailsClosed(t *testing.T) {
	dir := copyModels(t)
	fitPath := evalsetup.FitPath(dir, models.Small, "mvtec_loco_anomaly_detection", "pushpins")
	data, err := os.ReadFile(fitPath)
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]any
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	inv := f["inverse_covariance"].([]any)
	for i := range inv {
		row := make([]float64, len(inv))
		row[i] = 1e308
		inv[i] = row
	}
	if data, err = json.Marshal(f); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fitPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := detector.Load(dir, categoryDir, detector.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in, err := d.DecodeFile(testImages[0])
	if err != nil {
		t.Fatal(err)
	}
	rs, err := d.PredictBatch(context.Background(), []detector.Input{in})
	if err != nil {
		t.Fatal(err)
	}
	if r := rs[0]; !r.Invalid || r.Anomalous || r.Verdict() != stats.VerdictInvalid {
		t.Errorf("overflowing covariance: %+v", r)
	}

	if err := testtree.WriteRandomModel(dir, "mvtec_loco_anomaly_detection", "pushpins", 8, 0); err != nil {
		t.Fatal(err)
	}
	var stale *stats.StaleError
	if _, err := detector.Load(dir, categoryDir, detector.Options{}); !errors.As(err, &stale) {
		t.Errorf("model retrained after the fit: %v", err)
	}
}

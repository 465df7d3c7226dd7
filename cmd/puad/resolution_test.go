package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/evaluate/stats"
	"github.com/puad-go/puad/internal/pyref"
	"github.com/puad-go/puad/internal/testtree"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// resolutionWarning is the start of the warning of evaluate.CheckResolution.
const resolutionWarning = "puad: warning: EfficientAD's validation scores spread only"

// TestResolutionWarning: eval, fit and predict warn when the EfficientAD
// scores of the validation images lie closer together than the networks'
// precision resolves (evaluate.CheckResolution), and only then. Eval and
// fit compute the scores: on the end-to-end case (random weights, whose
// scores spread 0.12% of their mean) bfloat16 must warn, where the CPU has
// it, and float32 must not. Predict reads them from the stored fit, which
// the test edits to a spread that even float32 does not resolve.
func TestResolutionWarning(t *testing.T) {
	e2e := filepath.Join(testRoot, "resolution-e2e")
	pyref.Run(t, "../../evaluate/testdata/e2e_reference.py", e2e)
	cat := filepath.Join(e2e, "data", "tiny_loco", "widget")
	modelDir := filepath.Join(e2e, "models")
	fitFile := filepath.Join(modelDir, "s_size", "tiny_loco", "widget", stats.FitFileName)
	precisions := []models.Precision{models.FP32}
	if models.BF16.Check(tb.CPU) == nil {
		precisions = append(precisions, models.BF16)
	} else {
		t.Logf("no bfloat16 on this CPU: eval and fit checked in float32 only")
	}
	for _, p := range precisions {
		jsonPath := filepath.Join(e2e, "eval-"+string(p)+".json")
		_, stderr, code := runPuad(t, "eval", cat, modelDir, "--quiet", "--precision", string(p), "--json", jsonPath)
		if code != 0 {
			t.Fatalf("eval %s: exit %d: %s", p, code, stderr)
		}
		var res evaluate.Result
		raw, err := os.ReadFile(jsonPath)
		if err == nil {
			err = json.Unmarshal(raw, &res)
		}
		if err != nil {
			t.Fatal(err)
		}
		checkResolutionWarning(t, "eval", p, res.Validation, stderr)
		_, stderr, code = runPuad(t, "fit", cat, modelDir, "--quiet", "--precision", string(p))
		if code != 0 {
			t.Fatalf("fit %s: exit %d: %s", p, code, stderr)
		}
		f, err := stats.LoadFit(fitFile, "s", "student")
		if err != nil {
			t.Fatal(err)
		}
		checkResolutionWarning(t, "fit", p, f.Fusion, stderr)
	}

	root := filepath.Join(testRoot, "resolution")
	modelDir, cat, err := testtree.Fitted(root, loco, "pushpins", synth.VariantPins, 7, 128)
	if err != nil {
		t.Fatal(err)
	}
	fitFile = filepath.Join(modelDir, "s_size", loco, "pushpins", stats.FitFileName)
	predict := []string{"predict", modelDir, "--category", cat, filepath.Join(cat, "test", "good")}
	_, stderr, code := runPuad(t, predict...)
	if code != 0 || strings.Contains(stderr, resolutionWarning) {
		t.Fatalf("predict with the fit as stored: exit %d:\n%s", code, stderr)
	}
	// A spread of 1e-8 of the mean: below float32's 4 × 2^-24.
	testtree.NarrowFitSpread(t, fitFile, 1e-8)
	_, stderr, code = runPuad(t, predict...)
	if code != 0 || !strings.Contains(stderr, resolutionWarning+" 1e-08 of their mean, less than fp32 resolves (2.4e-07)") {
		t.Errorf("predict with validation scores 1e-8 apart: exit %d:\n%s", code, stderr)
	}
}

// checkResolutionWarning fails t unless a command run in precision p on
// the end-to-end case warned (stderr) exactly as CheckResolution says of
// the validation statistics f it computed: in bfloat16 it must, in float32
// not.
func checkResolutionWarning(t *testing.T, cmd string, p models.Precision, f stats.Fusion, stderr string) {
	t.Helper()
	want := evaluate.CheckResolution(f, p) != nil
	t.Logf("%s %s: validation scores %+v, warning expected %v", cmd, p, f.EfficientAD, want)
	if got := strings.Contains(stderr, resolutionWarning); got != want {
		t.Errorf("%s %s: warned %v, want %v:\n%s", cmd, p, got, want, stderr)
	}
	if want != (p == models.BF16) {
		t.Errorf("%s %s: validation scores %+v: CheckResolution warns %v on the end-to-end case", cmd, p, f.EfficientAD, want)
	}
}

// Package sklearnref gives tests scikit-learn's choice of a decision
// threshold on labelled scores, to check the thresholds that `puad fit`
// chooses on labelled images against it. It runs labelled_reference.py,
// beside this file, with Debian's Python (internal/pyref).
package sklearnref

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/puad-go/puad/evaluate/stats"
	"github.com/puad-go/puad/internal/pyref"
)

// Thresholds returns, per objective ("f1", "recall=R", "fpr=F"), the
// operating point scikit-learn's curves choose on the scores with their
// labels (true: anomalous), read with the rule "score > threshold" (see
// labelled_reference.py). It skips the test, or fails it under CI, when
// Python with scikit-learn is missing.
func Thresholds(t testing.TB, scores []float64, anomalous []bool, objectives []string) map[string]stats.OperatingPoint {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("sklearnref: cannot locate labelled_reference.py")
	}
	labels := make([]int, len(anomalous))
	for i, a := range anomalous {
		if a {
			labels[i] = 1
		}
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.json")
	data, err := json.Marshal(map[string]any{"scores": scores, "labels": labels, "objectives": objectives})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	pyref.Run(t, filepath.Join(filepath.Dir(file), "labelled_reference.py"), in, out)
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var ops map[string]stats.OperatingPoint
	if err := json.Unmarshal(raw, &ops); err != nil {
		t.Fatal(err)
	}
	return ops
}

package stats

import (
	"cmp"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
)

// operatingCase is one case of testdata/operating_points.json, written by
// gen_operating_fixtures.py with scikit-learn.
type operatingCase struct {
	Name          string         `json:"name"`
	Scores        []float64      `json:"scores"`
	Labels        []int          `json:"labels"`
	PRPrecision   []float64      `json:"pr_precision"`
	PRRecall      []float64      `json:"pr_recall"`
	PRThresholds  []float64      `json:"pr_thresholds"`
	ROCFPR        []float64      `json:"roc_fpr"`
	ROCTPR        []float64      `json:"roc_tpr"`
	ROCThresholds []float64      `json:"roc_thresholds"`
	AtThresholds  []sklearnPoint `json:"at_thresholds"`
}

// sklearnPoint is scikit-learn's confusion matrix and scores at a
// threshold (flagged: score >= Threshold).
type sklearnPoint struct {
	Threshold             float64 `json:"threshold"`
	TP, FP, TN, FN        int
	Precision, Recall, F1 float64
}

func loadOperatingCases(t *testing.T) []operatingCase {
	t.Helper()
	raw, err := os.ReadFile("testdata/operating_points.json")
	if err != nil {
		t.Fatal(err)
	}
	var cs []operatingCase
	if err := json.Unmarshal(raw, &cs); err != nil {
		t.Fatal(err)
	}
	return cs
}

func (c operatingCase) anomalous() []bool {
	a := make([]bool, len(c.Labels))
	for i, l := range c.Labels {
		a[i] = l == 1
	}
	return a
}

// strictlyBelow is the rule "score > th" equivalent of sklearn's "score >=
// t": the next observed score below t, or just below t.
func strictlyBelow(scores []float64, t float64) float64 {
	th := math.Nextafter(t, math.Inf(-1))
	best := math.Inf(-1)
	for _, s := range scores {
		if s < t && s > best {
			best = s
		}
	}
	if !math.IsInf(best, -1) {
		th = best
	}
	return th
}

// TestOperatingPointsMatchSklearn compares the counts and rates at every
// threshold, the precision-recall curve and the ROC curve with
// scikit-learn's, ties included.
func TestOperatingPointsMatchSklearn(t *testing.T) {
	for _, c := range loadOperatingCases(t) {
		an := c.anomalous()
		for _, w := range c.AtThresholds {
			op := OperatingPointAt(c.Scores, an, strictlyBelow(c.Scores, w.Threshold))
			if op.TP != w.TP || op.FP != w.FP || op.TN != w.TN || op.FN != w.FN ||
				op.Precision != w.Precision || op.Recall != w.Recall || op.F1 != w.F1 {
				t.Errorf("%s, sklearn threshold %v: %+v, sklearn %+v", c.Name, w.Threshold, op, w)
			}
		}
		ops, err := OperatingPoints(c.Scores, an)
		if err != nil {
			t.Fatal(err)
		}
		// ops[1:] are sklearn's thresholds from the highest down.
		if len(ops) != len(c.PRThresholds)+1 || len(c.ROCThresholds) != len(c.PRThresholds) {
			t.Fatalf("%s: %d points, sklearn %d/%d thresholds", c.Name, len(ops), len(c.PRThresholds), len(c.ROCThresholds))
		}
		n := len(c.PRThresholds)
		for j := range n {
			op, pr := ops[1+j], n-1-j
			if op.Threshold != strictlyBelow(c.Scores, c.PRThresholds[pr]) || op.Precision != c.PRPrecision[pr] || op.Recall != c.PRRecall[pr] {
				t.Errorf("%s: point %d %+v, sklearn PR threshold %v precision %v recall %v", c.Name, j, op, c.PRThresholds[pr], c.PRPrecision[pr], c.PRRecall[pr])
			}
			if op.FPR != c.ROCFPR[1+j] || op.Recall != c.ROCTPR[1+j] {
				t.Errorf("%s: point %d FPR %v TPR %v, sklearn ROC %v %v", c.Name, j, op.FPR, op.Recall, c.ROCFPR[1+j], c.ROCTPR[1+j])
			}
		}
		if ops[0].TP+ops[0].FP != 0 {
			t.Errorf("%s: the first point flags %d", c.Name, ops[0].TP+ops[0].FP)
		}
	}
}

// TestChooseLabelledThreshold checks each objective against the sklearn
// points: the best F1 (highest threshold among ties), the fewest alarms at
// a recall, the highest recall at a false-positive rate.
func TestChooseLabelledThreshold(t *testing.T) {
	for _, c := range loadOperatingCases(t) {
		an := c.anomalous()
		f1 := slices.MaxFunc(c.AtThresholds, func(a, b sklearnPoint) int { return cmp.Compare(a.F1, b.F1) }).F1
		op, err := ChooseLabelledThreshold(c.Scores, an, Objective{Kind: ObjectiveF1})
		if err != nil || op.F1 != f1 {
			t.Errorf("%s: F1 objective %+v %v, sklearn's best F1 %v", c.Name, op, err, f1)
		}
		ops, _ := OperatingPoints(c.Scores, an)
		for _, o := range ops {
			if o.F1 == f1 && o.Threshold > op.Threshold {
				t.Errorf("%s: F1 %v also at the higher threshold %v than %v", c.Name, f1, o.Threshold, op.Threshold)
			}
		}
		for _, target := range []float64{0, 0.5, 0.9, 1} {
			rec, err := ChooseLabelledThreshold(c.Scores, an, Objective{Kind: ObjectiveRecall, Target: target})
			if err != nil || rec.Recall < target {
				t.Errorf("%s: recall=%v: %+v %v", c.Name, target, rec, err)
			}
			fpr, err := ChooseLabelledThreshold(c.Scores, an, Objective{Kind: ObjectiveFPR, Target: target})
			if err != nil || fpr.FPR > target {
				t.Errorf("%s: fpr=%v: %+v %v", c.Name, target, fpr, err)
			}
			for _, o := range ops {
				if o.Recall >= target && o.FP < rec.FP {
					t.Errorf("%s: recall=%v reached with %d false positives, chosen %d", c.Name, target, o.FP, rec.FP)
				}
				if o.FPR <= target && o.Recall > fpr.Recall {
					t.Errorf("%s: fpr=%v allows recall %v, chosen %v", c.Name, target, o.Recall, fpr.Recall)
				}
			}
		}
	}
}

// TestFPRObjectiveIsFitThreshold checks that on normal images alone the
// fpr objective picks what `puad fit` picks: the (k+1)-th largest score.
func TestFPRObjectiveIsFitThreshold(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 1))
	for trial := range 200 {
		n := 1 + r.IntN(40)
		scores := make([]float64, n)
		for i := range scores {
			scores[i] = float64(r.IntN(12)) // ties
		}
		maxFPR := r.Float64() * 0.99
		want, err := ChooseThreshold(scores, maxFPR)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ChooseLabelledThreshold(scores, make([]bool, n), Objective{Kind: ObjectiveFPR, Target: maxFPR})
		if err != nil || got.Threshold != want.Value || got.FPR != want.ValidationFPR {
			t.Fatalf("trial %d (%v, max FPR %v): %+v %v, fit's threshold %+v", trial, scores, maxFPR, got, err, want)
		}
	}
}

// TestObjectives checks parsing and the errors that name the objective.
func TestObjectives(t *testing.T) {
	for _, s := range []string{"f1", "recall=0.99", "fpr=0.01", "recall=1"} {
		o, err := ParseObjective(s)
		if err != nil || o.String() != s {
			t.Errorf("%q: %+v %v", s, o, err)
		}
	}
	for _, s := range []string{"", "f1=2", "recall", "recall=1.5", "fpr=-0.1", "precision=0.9", "fpr=x"} {
		if _, err := ParseObjective(s); err == nil {
			t.Errorf("%q parsed", s)
		}
	}
	normal := []float64{1, 2, 3}
	for _, obj := range []string{"f1", "recall=0.99"} {
		o, _ := ParseObjective(obj)
		_, err := ChooseLabelledThreshold(normal, make([]bool, 3), o)
		var na *NoAnomaliesError
		if !errors.As(err, &na) || !strings.Contains(err.Error(), "objective "+obj+" needs anomalous images") {
			t.Errorf("%s on normal images: %v", obj, err)
		}
	}
	if _, err := ChooseLabelledThreshold(normal, []bool{true, true, true}, Objective{Kind: ObjectiveFPR, Target: 0.1}); err == nil ||
		!strings.Contains(err.Error(), "objective fpr=0.1 needs normal images") {
		t.Errorf("fpr on anomalies alone: %v", err)
	}
	if _, err := OperatingPoints([]float64{1, math.NaN()}, []bool{true, false}); err == nil {
		t.Error("NaN score accepted")
	}
}

// TestOperatingByClass checks the per-class split: each class is judged
// with all the normal images.
func TestOperatingByClass(t *testing.T) {
	scores := []float64{1, 5, 2, 6, 0.5, 3}
	classes := []string{"good", "logical", "good", "structural", "logical", "good"}
	rep := OperatingByClass("fitted", scores, classes, "good", 2.5)
	if rep.TP != 2 || rep.FP != 1 || rep.TN != 2 || rep.FN != 1 || len(rep.PerClass) != 2 {
		t.Fatalf("%+v", rep)
	}
	lo, st := rep.PerClass[0], rep.PerClass[1]
	if lo.Class != "logical" || lo.TP != 1 || lo.FN != 1 || lo.FP != 1 || lo.TN != 2 || st.Class != "structural" || st.TP != 1 || st.FN != 0 || st.Recall != 1 {
		t.Errorf("per class %+v", rep.PerClass)
	}
}

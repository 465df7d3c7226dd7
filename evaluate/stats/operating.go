package stats

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// OperatingPoint is how a decision threshold performs on labelled scores:
// an image is flagged when its score is greater than Threshold.
type OperatingPoint struct {
	Threshold float64 `json:"threshold"`
	TP        int     `json:"tp"`
	FP        int     `json:"fp"`
	TN        int     `json:"tn"`
	FN        int     `json:"fn"`
	// Precision is TP/(TP+FP), 0 when nothing is flagged (as scikit-learn's
	// precision_score with zero_division=0); Recall TP/(TP+FN); F1 their
	// harmonic mean, 0 when both are 0; FPR FP/(FP+TN). Rates over an empty
	// class are 0.
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	FPR       float64 `json:"fpr"`
}

// ratio is a/b, 0 when b is 0.
func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// newOperatingPoint fills the rates of the counts.
func newOperatingPoint(th float64, tp, fp, tn, fn int) OperatingPoint {
	op := OperatingPoint{Threshold: th, TP: tp, FP: fp, TN: tn, FN: fn,
		Precision: ratio(tp, tp+fp), Recall: ratio(tp, tp+fn), FPR: ratio(fp, fp+tn)}
	if op.Precision+op.Recall > 0 {
		op.F1 = 2 * op.Precision * op.Recall / (op.Precision + op.Recall)
	}
	return op
}

// OperatingPointAt counts the verdicts "score > threshold" against the
// labels (true: anomalous).
func OperatingPointAt(scores []float64, anomalous []bool, threshold float64) OperatingPoint {
	var tp, fp, tn, fn int
	for i, s := range scores {
		switch flagged := s > threshold; {
		case flagged && anomalous[i]:
			tp++
		case flagged:
			fp++
		case anomalous[i]:
			fn++
		default:
			tn++
		}
	}
	return newOperatingPoint(threshold, tp, fp, tn, fn)
}

// OperatingPoints returns the operating points of every distinct decision
// on the labelled scores, from the highest threshold (nothing flagged: the
// largest score) to the lowest (everything flagged: just below the
// smallest score). Thresholds are observed scores except the last. It is
// scikit-learn's precision_recall_curve and roc_curve read with the rule
// "score > threshold" instead of ">=": the point at sklearn's threshold t
// is the one here at the next lower score.
func OperatingPoints(scores []float64, anomalous []bool) ([]OperatingPoint, error) {
	if err := checkLabelled(scores, anomalous); err != nil {
		return nil, err
	}
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] > scores[idx[b]] })
	pos := 0
	for _, a := range anomalous {
		if a {
			pos++
		}
	}
	neg := len(scores) - pos
	var out []OperatingPoint
	tp, fp := 0, 0
	for k := 0; k < len(idx); {
		th := scores[idx[k]]
		out = append(out, newOperatingPoint(th, tp, fp, neg-fp, pos-tp))
		for ; k < len(idx) && scores[idx[k]] == th; k++ {
			if anomalous[idx[k]] {
				tp++
			} else {
				fp++
			}
		}
	}
	low := math.Nextafter(scores[idx[len(idx)-1]], math.Inf(-1))
	return append(out, newOperatingPoint(low, tp, fp, neg-fp, pos-tp)), nil
}

func checkLabelled(scores []float64, anomalous []bool) error {
	if len(scores) == 0 || len(scores) != len(anomalous) {
		return fmt.Errorf("stats: %d scores and %d labels", len(scores), len(anomalous))
	}
	for i, v := range scores {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("stats: score %d is %v", i, v)
		}
	}
	return nil
}

// ObjectiveKind names what a labelled threshold optimises.
type ObjectiveKind string

// The objectives of ChooseLabelledThreshold.
const (
	// ObjectiveF1 maximises F1.
	ObjectiveF1 ObjectiveKind = "f1"
	// ObjectiveRecall reaches a recall of at least Target with as few
	// false positives as possible.
	ObjectiveRecall ObjectiveKind = "recall"
	// ObjectiveFPR keeps the false-positive rate at most Target with as
	// high a recall as possible.
	ObjectiveFPR ObjectiveKind = "fpr"
)

// Objective is how a threshold is chosen on labelled scores.
type Objective struct {
	Kind   ObjectiveKind `json:"kind"`
	Target float64       `json:"target,omitempty"` // for recall and fpr
}

func (o Objective) String() string {
	if o.Kind == ObjectiveF1 {
		return string(o.Kind)
	}
	return string(o.Kind) + "=" + strconv.FormatFloat(o.Target, 'g', -1, 64)
}

// ParseObjective reads "f1", "recall=R" or "fpr=F" with R and F in [0, 1].
func ParseObjective(s string) (Objective, error) {
	kind, target, hasTarget := strings.Cut(strings.TrimSpace(s), "=")
	switch o := (Objective{Kind: ObjectiveKind(kind)}); o.Kind {
	case ObjectiveF1:
		if !hasTarget {
			return o, nil
		}
	case ObjectiveRecall, ObjectiveFPR:
		v, err := strconv.ParseFloat(target, 64)
		if hasTarget && err == nil && v >= 0 && v <= 1 {
			o.Target = v
			return o, nil
		}
	}
	return Objective{}, fmt.Errorf("objective %q: want f1, recall=R or fpr=F with R and F in [0, 1]", s)
}

// NoAnomaliesError is returned by ChooseLabelledThreshold for an objective
// that needs anomalous images when the labels have none (or normal images
// when they have none).
type NoAnomaliesError struct {
	Objective Objective
	// Normal is true when normal images are the missing class.
	Normal bool
}

func (e *NoAnomaliesError) Error() string {
	if e.Normal {
		return fmt.Sprintf("objective %s needs normal images, and the labelled images have none", e.Objective)
	}
	return fmt.Sprintf("objective %s needs anomalous images, and the labelled images are all normal", e.Objective)
}

// ChooseLabelledThreshold picks the threshold of OperatingPoints that best
// meets obj: the largest F1 (ties: the higher threshold, fewer alarms), the
// highest threshold with recall >= Target, or the lowest threshold with
// FPR <= Target. It never falls back to flagging everything for want of
// anomalies: that is a *NoAnomaliesError.
func ChooseLabelledThreshold(scores []float64, anomalous []bool, obj Objective) (OperatingPoint, error) {
	ops, err := OperatingPoints(scores, anomalous)
	if err != nil {
		return OperatingPoint{}, err
	}
	all := ops[len(ops)-1] // everything flagged: TP+FN anomalies, FP+TN normal
	if all.TP == 0 && obj.Kind != ObjectiveFPR {
		return OperatingPoint{}, &NoAnomaliesError{Objective: obj}
	}
	if all.FP == 0 && obj.Kind == ObjectiveFPR {
		return OperatingPoint{}, &NoAnomaliesError{Objective: obj, Normal: true}
	}
	best := -1
	for i, op := range ops {
		switch obj.Kind {
		case ObjectiveF1:
			if best < 0 || op.F1 > ops[best].F1 {
				best = i
			}
		case ObjectiveRecall:
			if best < 0 && op.Recall >= obj.Target {
				best = i
			}
		case ObjectiveFPR:
			if op.FPR <= obj.Target {
				best = i
			}
		default:
			return OperatingPoint{}, fmt.Errorf("stats: unknown objective %q", obj.Kind)
		}
	}
	return ops[best], nil
}

// ClassOperatingPoint is an operating point on the normal images and the
// images of one anomaly class.
type ClassOperatingPoint struct {
	Class string `json:"class"`
	OperatingPoint
}

// OperatingReport is how one threshold performs on labelled images,
// overall and per anomaly class.
type OperatingReport struct {
	// Name says where the threshold comes from, such as "fitted" or
	// "f1_optimal".
	Name string `json:"name"`
	OperatingPoint
	PerClass []ClassOperatingPoint `json:"per_class"`
}

// OperatingByClass is the OperatingReport of threshold on scores whose
// classes name the normal class normal or an anomaly class; classes are
// listed in the order they first appear.
func OperatingByClass(name string, scores []float64, classes []string, normal string, threshold float64) OperatingReport {
	anomalous := make([]bool, len(classes))
	var order []string
	seen := map[string]bool{}
	for i, c := range classes {
		anomalous[i] = c != normal
		if anomalous[i] && !seen[c] {
			seen[c] = true
			order = append(order, c)
		}
	}
	rep := OperatingReport{Name: name, OperatingPoint: OperatingPointAt(scores, anomalous, threshold)}
	for _, c := range order {
		var s []float64
		var a []bool
		for i, ci := range classes {
			if ci == c || ci == normal {
				s, a = append(s, scores[i]), append(a, anomalous[i])
			}
		}
		rep.PerClass = append(rep.PerClass, ClassOperatingPoint{Class: c, OperatingPoint: OperatingPointAt(s, a, threshold)})
	}
	return rep
}

package evaluate

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// ErrOneClass is returned (wrapped) by AUROC when the labels are all normal
// or all anomalous. scikit-learn's roc_auc_score raises "Only one class
// present in y_true. ROC AUC score is not defined in that case." there.
var ErrOneClass = errors.New("only one class present in the labels; ROC AUC is not defined in that case")

// AUROC returns the area under the ROC curve of scores for the binary labels
// (true = anomalous, the positive class; a higher score means more
// anomalous), with the semantics of scikit-learn's roc_auc_score: the ROC
// curve has one point per distinct score, plus the origin, and its area is
// taken with the trapezoidal rule, so a positive and a negative with equal
// scores count one half. That is the Mann-Whitney statistic with mid-ranks
// for ties, which is what is computed here by sorting the scores once
// (O(n log n)) and counting, per group of equal scores, the negatives in the
// group times the positives above it plus half the positives in it. The
// counts are exact in float64, so the one division at the end is the only
// rounding.
//
// It returns an error, as roc_auc_score raises one, when the lengths differ,
// when there are no samples, when a score is NaN or infinite, or when only
// one class is present (ErrOneClass).
func AUROC(labels []bool, scores []float64) (float64, error) {
	if len(labels) != len(scores) {
		return 0, fmt.Errorf("evaluate: AUROC: %d labels but %d scores", len(labels), len(scores))
	}
	if len(scores) == 0 {
		return 0, errors.New("evaluate: AUROC: no samples")
	}
	var nPos int
	for i, s := range scores {
		if math.IsNaN(s) || math.IsInf(s, 0) {
			return 0, fmt.Errorf("evaluate: AUROC: score %d is %v; scores must be finite", i, s)
		}
		if labels[i] {
			nPos++
		}
	}
	nNeg := len(labels) - nPos
	if nPos == 0 || nNeg == 0 {
		return 0, fmt.Errorf("evaluate: AUROC: %w", ErrOneClass)
	}

	type sample struct {
		score     float64
		anomalous bool
	}
	sorted := make([]sample, len(scores))
	for i, s := range scores {
		sorted[i] = sample{s, labels[i]}
	}
	// Descending score. Equal scores (including -0 and +0, which
	// cmp.Compare treats as equal) form one group whatever their order, so
	// the sort need not be stable.
	slices.SortFunc(sorted, func(a, b sample) int { return cmp.Compare(b.score, a.score) })

	// area = Σ over groups of negatives·(positives above + positives in
	// group/2), counted in halves to stay in integers.
	var twiceArea float64
	var posAbove int
	for start := 0; start < len(sorted); {
		s := sorted[start].score
		var pos, neg int
		end := start
		for ; end < len(sorted) && sorted[end].score == s; end++ {
			if sorted[end].anomalous {
				pos++
			} else {
				neg++
			}
		}
		twiceArea += float64(neg) * float64(2*posAbove+pos)
		posAbove += pos
		start = end
	}
	return twiceArea / (2 * float64(nPos) * float64(nNeg)), nil
}

// ClassAUROC is the AUROC of one anomaly class: the normal images against
// the images of that class only.
type ClassAUROC struct {
	// Class is the anomaly class name (a test-set folder name such as
	// "broken_large").
	Class string `json:"class"`
	// AUROC is the area under the ROC curve of the normal images and this
	// class's images.
	AUROC float64 `json:"auroc"`
	// Count is the number of images of this class.
	Count int `json:"count"`
}

// PerClassAUROC returns the AUROC over all images and the AUROC of each
// anomaly class, as the reference's PUAD.auroc_for_anomalies computes them.
// classes[i] is the class name of image i and scores[i] its anomaly score;
// images whose class is normal (the reference uses "good") are the
// negatives, every other class is anomalous. Per-class results come in the
// order in which each anomaly class first appears in classes, which for an
// ImageFolder test set is the alphabetical order of its folders.
//
// It returns an error when the lengths differ, when there are no normal or
// no anomalous images, or when a score is not finite.
func PerClassAUROC(classes []string, scores []float64, normal string) (overall float64, perClass []ClassAUROC, err error) {
	if len(classes) != len(scores) {
		return 0, nil, fmt.Errorf("evaluate: per-class AUROC: %d class names but %d scores", len(classes), len(scores))
	}
	labels := make([]bool, len(classes))
	var normalScores []float64
	byClass := map[string][]float64{}
	var order []string
	for i, c := range classes {
		if c == normal {
			normalScores = append(normalScores, scores[i])
			continue
		}
		labels[i] = true
		if _, ok := byClass[c]; !ok {
			order = append(order, c)
		}
		byClass[c] = append(byClass[c], scores[i])
	}
	if len(normalScores) == 0 {
		return 0, nil, fmt.Errorf("evaluate: per-class AUROC: no image of the normal class %q", normal)
	}
	if len(order) == 0 {
		return 0, nil, fmt.Errorf("evaluate: per-class AUROC: no anomalous image (every image is of class %q)", normal)
	}
	overall, err = AUROC(labels, scores)
	if err != nil {
		return 0, nil, err
	}
	for _, c := range order {
		s := append(append([]float64(nil), normalScores...), byClass[c]...)
		l := make([]bool, len(s))
		for i := len(normalScores); i < len(l); i++ {
			l[i] = true
		}
		a, err := AUROC(l, s)
		if err != nil {
			return 0, nil, fmt.Errorf("evaluate: per-class AUROC of %q: %w", c, err)
		}
		perClass = append(perClass, ClassAUROC{Class: c, AUROC: a, Count: len(byClass[c])})
	}
	return overall, perClass, nil
}

package metrics

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
		return 0, fmt.Errorf("metrics: AUROC: %d labels but %d scores", len(labels), len(scores))
	}
	if len(scores) == 0 {
		return 0, errors.New("metrics: AUROC: no samples")
	}
	var nPos int
	for i, s := range scores {
		if math.IsNaN(s) || math.IsInf(s, 0) {
			return 0, fmt.Errorf("metrics: AUROC: score %d is %v; scores must be finite", i, s)
		}
		if labels[i] {
			nPos++
		}
	}
	nNeg := len(labels) - nPos
	if nPos == 0 || nNeg == 0 {
		return 0, fmt.Errorf("metrics: AUROC: %w", ErrOneClass)
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

	// The ROC curve as scikit-learn's roc_curve builds it: cumulative true
	// and false positives at each distinct threshold (exact integers)...
	var tps, fps []float64
	var tp, fp float64
	for start := 0; start < len(sorted); {
		end := start
		for ; end < len(sorted) && sorted[end].score == sorted[start].score; end++ {
			if sorted[end].anomalous {
				tp++
			} else {
				fp++
			}
		}
		tps = append(tps, tp)
		fps = append(fps, fp)
		start = end
	}
	// ...without the collinear intermediate points (drop_intermediate=True)...
	if len(fps) > 2 {
		keepT, keepF := []float64{tps[0]}, []float64{fps[0]}
		for i := 1; i < len(fps)-1; i++ {
			if fps[i+1]-2*fps[i]+fps[i-1] != 0 || tps[i+1]-2*tps[i]+tps[i-1] != 0 {
				keepT, keepF = append(keepT, tps[i]), append(keepF, fps[i])
			}
		}
		tps = append(keepT, tps[len(tps)-1])
		fps = append(keepF, fps[len(fps)-1])
	}
	// ...starting at (0, 0), normalised, and integrated with np.trapz, whose
	// floating-point steps (and numpy's pairwise summation) are followed
	// exactly so that the result equals scikit-learn's to the last bit.
	tps = append([]float64{0}, tps...)
	fps = append([]float64{0}, fps...)
	nT, nF := tps[len(tps)-1], fps[len(fps)-1]
	terms := make([]float64, len(tps)-1)
	for i := range terms {
		dx := fps[i+1]/nF - fps[i]/nF
		terms[i] = dx * (tps[i+1]/nT + tps[i]/nT) / 2.0
	}
	return PairwiseSum(terms), nil
}

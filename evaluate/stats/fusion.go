package stats

import (
	"errors"
	"fmt"
	"math"

	"github.com/puad-go/puad/evaluate/metrics"
)

// MeanStd returns the mean and the population standard deviation (ddof=0) of
// xs, as np.mean(xs) and np.std(xs) compute them: mean = Σx/n, then
// std = sqrt(Σ(x-mean)²/n) in a second pass. For an empty xs both are NaN,
// as in numpy (which also warns).
//
// The reference's scores are float32 numpy values (the EfficientAD score is
// a float32 0-d array, the distance a float32 scalar), so numpy accumulates
// them in float32 there; this works in float64.
func MeanStd(xs []float64) (mean, std float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	n := float64(len(xs))
	for _, x := range xs {
		mean += x
	}
	mean /= n
	var ss float64
	for _, x := range xs {
		d := x - mean
		ss += d * d
	}
	return mean, math.Sqrt(ss / n)
}

// ZScore standardises a score by the mean and population standard deviation
// of the validation set, the normalisation PUAD applies to both of its
// scores before adding them.
type ZScore struct {
	Mean float64 `json:"mean"`
	Std  float64 `json:"std"`
}

// FitZScore returns the ZScore of the validation scores xs as the
// reference computes it: the scores are float32 values there (EfficientAD
// scores and Mahalanobis distances come out of float32 arithmetic), so
// np.mean and np.std work in float32, with numpy's pairwise summation. The
// same float32 steps are taken here, so the statistics agree bit for bit
// when the scores do.
func FitZScore(xs []float64) ZScore {
	m, s := meanStd32(xs)
	return ZScore{Mean: float64(m), Std: float64(s)}
}

// meanStd32 is np.mean and np.std (ddof 0) of a float32 array.
func meanStd32(xs []float64) (mean, std float32) {
	if len(xs) == 0 {
		return float32(math.NaN()), float32(math.NaN())
	}
	v := make([]float32, len(xs))
	for i, x := range xs {
		v[i] = float32(x)
	}
	n := float32(len(v))
	mean = metrics.PairwiseSum(v) / n
	for i := range v {
		d := v[i] - mean
		v[i] = d * d
	}
	// sqrt of a float32, correctly rounded (double rounding is exact for sqrt).
	std = float32(math.Sqrt(float64(metrics.PairwiseSum(v) / n)))
	return mean, std
}

// Apply returns (x - Mean) / Std.
//
// As in the reference, nothing guards Std == 0: the result is then ±Inf, or
// NaN when x == Mean, exactly as numpy's division gives. Keeping that
// behaviour keeps scores identical to the reference's; call Check after
// fitting to detect (and report) the degenerate case. Such scores make AUROC
// fail, as they make roc_auc_score raise.
func (z ZScore) Apply(x float64) float64 {
	return float64(z.apply32(x))
}

// apply32 standardises in float32, as the reference's numpy scalars do.
func (z ZScore) apply32(x float64) float32 {
	return (float32(x) - float32(z.Mean)) / float32(z.Std)
}

// ErrZeroStd is returned (wrapped) by ZScore.Check and Fusion.Check when the
// validation scores are all equal, so standardising divides by zero.
var ErrZeroStd = errors.New("standard deviation of the validation scores is 0")

// Check reports whether Apply gives finite results: it returns an error
// wrapping ErrZeroStd when Std is 0, and an error when Mean or Std is NaN or
// infinite (an empty or non-finite validation set).
func (z ZScore) Check() error {
	switch {
	case math.IsNaN(z.Mean) || math.IsInf(z.Mean, 0) || math.IsNaN(z.Std) || math.IsInf(z.Std, 0):
		return fmt.Errorf("mean %v and standard deviation %v of the validation scores are not finite", z.Mean, z.Std)
	case z.Std == 0:
		return fmt.Errorf("%w (every validation score is %v); normalised scores will be infinite or NaN", ErrZeroStd, z.Mean)
	case z.Std < 0:
		return fmt.Errorf("standard deviation %v of the validation scores is negative", z.Std)
	}
	return nil
}

// Fusion is PUAD's combination of its two anomaly scores: the picturable
// score of EfficientAD and the unpicturable Mahalanobis distance, each
// standardised by its mean and standard deviation on the validation set,
// then added.
type Fusion struct {
	EfficientAD ZScore `json:"efficient_ad"`
	Mahalanobis ZScore `json:"mahalanobis"`
}

// FitFusion fits the two standardisations on the validation set's
// EfficientAD scores and Mahalanobis distances, like PUAD.valid. It returns
// an error when either list is empty or they have different lengths (they
// score the same images). It does not reject a zero standard deviation, so
// that scoring stays identical to the reference; see Fusion.Check.
func FitFusion(effScores, mahaDists []float64) (Fusion, error) {
	if len(effScores) == 0 || len(mahaDists) == 0 {
		return Fusion{}, fmt.Errorf("stats: fitting the PUAD fusion needs validation scores, got %d EfficientAD scores and %d Mahalanobis distances", len(effScores), len(mahaDists))
	}
	if len(effScores) != len(mahaDists) {
		return Fusion{}, fmt.Errorf("stats: fitting the PUAD fusion: %d EfficientAD scores but %d Mahalanobis distances", len(effScores), len(mahaDists))
	}
	return Fusion{EfficientAD: FitZScore(effScores), Mahalanobis: FitZScore(mahaDists)}, nil
}

// Score returns the PUAD anomaly score of one image,
// (eff - eff_mean)/eff_std + (maha - maha_mean)/maha_std.
//
// The arithmetic is float32, as in the reference (whose scores are numpy
// float32 values): ties and orderings, and so AUROCs, come out the same.
func (f Fusion) Score(eff, maha float64) float64 {
	return float64(f.EfficientAD.apply32(eff) + f.Mahalanobis.apply32(maha))
}

// Check returns an error naming the score whose standardisation is
// degenerate (see ZScore.Check), or nil. A command can warn with it: the
// reference would go on and produce infinite or NaN scores.
func (f Fusion) Check() error {
	if err := f.EfficientAD.Check(); err != nil {
		return fmt.Errorf("stats: EfficientAD score: %w", err)
	}
	if err := f.Mahalanobis.Check(); err != nil {
		return fmt.Errorf("stats: Mahalanobis distance: %w", err)
	}
	return nil
}

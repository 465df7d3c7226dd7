package stats

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// DefaultMaxFPR is the default false-positive rate the decision threshold
// allows on the validation images. With the validation sets of MVTec LOCO AD
// (60 to 100 images) it allows no validation image above the threshold, so
// the threshold is the largest validation PUAD score; see ChooseThreshold.
const DefaultMaxFPR = 0.01

// Threshold is the decision threshold on the PUAD score: an image is
// anomalous when its score is greater than Value.
type Threshold struct {
	Value float64 `json:"value"`
	// MaxFPR is the false-positive rate that was asked for on the validation images.
	MaxFPR float64 `json:"max_fpr"`
	// Allowed is floor(MaxFPR·n): how many of the n validation images may
	// score above Value.
	Allowed int `json:"allowed_false_positives"`
	// ValidationFPR is the rate of validation images above Value (at most MaxFPR).
	ValidationFPR float64 `json:"validation_fpr"`
	// ExpectedFPR is (Allowed+1)/(n+1): the probability that a new normal
	// image, exchangeable with the validation images, scores above Value.
	// It exceeds MaxFPR when the validation set is small.
	ExpectedFPR float64 `json:"expected_fpr"`
	// NumValidation is n.
	NumValidation int `json:"num_validation"`
	// From, Objective and Labelled describe a threshold chosen on labelled
	// images (ChooseLabelled): where they came from (FromTest, or the
	// absolute path of a labelled folder), the objective, and the operating
	// point of Value on them. They are absent for the maximum
	// false-positive rule of ChooseThreshold.
	From      string          `json:"from,omitempty"`
	Objective *Objective      `json:"objective,omitempty"`
	Labelled  *OperatingPoint `json:"labelled_operating_point,omitempty"`
}

// ChooseThreshold picks the decision threshold on the PUAD scores of the
// validation images (all normal) so that at most maxFPR of them are above
// it: with n scores sorted from the largest, k = floor(maxFPR·n) may be
// false positives, and the threshold is the (k+1)-th largest score, so that
// the rule "score > threshold" flags at most the k above it (fewer with
// ties). This is the empirical upper quantile taken at an observed score,
// without interpolation: with n = 60 to 100 validation images an
// interpolated quantile would be an arbitrary point between two images.
//
// Small validation sets cannot resolve small rates: below 1/n, k is 0 and
// the threshold is the largest validation score. On new normal images the
// expected false-positive rate is then (k+1)/(n+1), not maxFPR (for n = 60,
// about 1.6%); Threshold.ExpectedFPR records it.
func ChooseThreshold(validScores []float64, maxFPR float64) (Threshold, error) {
	n := len(validScores)
	if n == 0 {
		return Threshold{}, errors.New("stats: a threshold needs validation scores, got none")
	}
	if !validRate(maxFPR) {
		return Threshold{}, fmt.Errorf("stats: maximum false-positive rate %v not in [0, 1)", maxFPR)
	}
	s := append([]float64(nil), validScores...)
	for i, v := range s {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return Threshold{}, fmt.Errorf("stats: validation PUAD score %d is %v", i, v)
		}
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(s)))
	// The small epsilon keeps 0.05·100 from becoming 4.999… → 4.
	k := int(math.Floor(maxFPR*float64(n) + 1e-9))
	th := Threshold{Value: s[k], MaxFPR: maxFPR, Allowed: k, NumValidation: n,
		ExpectedFPR: float64(k+1) / float64(n+1)}
	above := 0
	for _, v := range s {
		if v > th.Value {
			above++
		}
	}
	th.ValidationFPR = float64(above) / float64(n)
	return th, nil
}

// FromTest is Threshold.From for a threshold chosen on the test images of
// the fitted category.
const FromTest = "test"

// Source says in words which images a labelled threshold was chosen on:
// "the test images" or "the labelled images in <folder>".
func (th Threshold) Source() string {
	if th.From == FromTest {
		return "the test images"
	}
	return "the labelled images in " + th.From
}

// ChooseLabelled replaces the fit's threshold by the one that best meets
// obj on labelled scores (ChooseLabelledThreshold), taken from the images
// named by from (FromTest, or the path of a labelled folder). MaxFPR is then 0 (none was asked for);
// Allowed, ValidationFPR and ExpectedFPR describe the validation images
// above the new threshold, as for ChooseThreshold.
func (f *FitFile) ChooseLabelled(scores []float64, anomalous []bool, obj Objective, from string) error {
	op, err := ChooseLabelledThreshold(scores, anomalous, obj)
	if err != nil {
		return err
	}
	n, above := len(f.Validation), 0
	for _, v := range f.Validation {
		if v.PUAD > op.Threshold {
			above++
		}
	}
	f.Threshold = Threshold{Value: op.Threshold, Allowed: above, NumValidation: n,
		ValidationFPR: ratio(above, n), ExpectedFPR: ratio(above+1, n+1),
		From: from, Objective: &obj, Labelled: &op}
	return nil
}

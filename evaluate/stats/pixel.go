package stats

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
)

// DefaultPixelFPR is the default share of normal validation pixels a
// defect mask may mark. Fit files whose pixel threshold does not record
// its rate were made with it.
const DefaultPixelFPR = 0.001

// ErrNoPixelThreshold is returned (wrapped) when defect masks are asked of
// a fit made without the validation maps, which has no pixel threshold.
var ErrNoPixelThreshold = errors.New("the PUAD fit has no pixel threshold")

// PixelThreshold turns anomaly maps into defect masks: a pixel is part of
// a defect when its map value is greater than Value.
type PixelThreshold struct {
	Value float64 `json:"value"`
	// MaxFPR is the share of the validation images' pixels (all normal)
	// allowed above Value.
	MaxFPR float64 `json:"max_fpr"`
	// NumPixels is the number of validation pixels it was chosen on.
	NumPixels int `json:"num_pixels"`
}

// UnmarshalJSON reads a stored pixel threshold; one without "max_fpr" was
// chosen at DefaultPixelFPR.
func (p *PixelThreshold) UnmarshalJSON(data []byte) error {
	type plain PixelThreshold
	v := plain{MaxFPR: DefaultPixelFPR}
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*p = PixelThreshold(v)
	return nil
}

// check checks a loaded pixel threshold: a number, chosen at a rate in
// [0, 1) on at least one pixel.
func (p *PixelThreshold) check() error {
	if nonFinite([]float64{p.Value}) >= 0 || !validRate(p.MaxFPR) || p.NumPixels < 1 {
		return fmt.Errorf("pixel threshold %v (false-positive rate %v on %d pixels)", p.Value, p.MaxFPR, p.NumPixels)
	}
	return nil
}

// validRate reports whether r is a false-positive rate a threshold can be
// chosen at: in [0, 1).
func validRate(r float64) bool { return r >= 0 && r < 1 }

// ChoosePixelThreshold picks the pixel threshold on the anomaly maps of
// the validation images with the rule of ChooseThreshold applied to all
// their pixels: the (k+1)-th largest value, k = floor(maxFPR·n).
func ChoosePixelThreshold(maps [][]float32, maxFPR float64) (PixelThreshold, error) {
	n := 0
	for _, m := range maps {
		n += len(m)
	}
	if n == 0 {
		return PixelThreshold{}, errors.New("stats: a pixel threshold needs validation maps, got none")
	}
	if !validRate(maxFPR) {
		return PixelThreshold{}, fmt.Errorf("stats: pixel false-positive rate %v not in [0, 1)", maxFPR)
	}
	all := make([]float32, 0, n)
	for _, m := range maps {
		all = append(all, m...)
	}
	for i, v := range all {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return PixelThreshold{}, fmt.Errorf("stats: validation map value %d is %v", i, v)
		}
	}
	slices.Sort(all)
	k := int(math.Floor(maxFPR*float64(n) + 1e-9))
	return PixelThreshold{Value: float64(all[n-1-k]), MaxFPR: maxFPR, NumPixels: n}, nil
}

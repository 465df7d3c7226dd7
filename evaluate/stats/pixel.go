package stats

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// DefaultPixelFPR is the default share of normal validation pixels a
// defect mask may mark.
const DefaultPixelFPR = 0.001

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
	if !(maxFPR >= 0 && maxFPR < 1) {
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

package metrics

import (
	"cmp"
	"fmt"
	"slices"
)

// SPROLimits are the false positive rates up to which MVTec LOCO AD's
// official evaluation integrates the sPRO curve (MAX_FPRS).
var SPROLimits = []float64{0.01, 0.05, 0.1, 0.3, 1.0}

// SPROAccumulator computes MVTec LOCO AD's localisation metric, the AU-sPRO,
// over a set of images one image at a time, as MVTec's evaluation script
// defines it, together with the pixel AUROC of the same pixels:
//
//   - A defect image has one or more channels (masks), each marking one
//     defect with its pixel value; the defect's entry in defects_config.json
//     gives the channel's saturation area (see DefectConfig.SaturationArea).
//   - At a threshold, the sPRO of a channel is min(TP area / saturation
//     area, 1); the curve's y is the mean over all channels of all images.
//   - The FPR is the number of positive pixels that lie in no channel of
//     their image, over the number of pixels in no channel (all pixels of
//     anomaly-free images), summed over all images.
//   - The area up to each limit in SPROLimits is taken with the same
//     trapezoid and interpolation as for the AU-PRO and divided by the
//     limit.
//
// The official script samples thresholds and refines them until adjacent
// curve points are at most 0.01 apart; here the curve has a point at every
// distinct score, which is the value that refinement converges to. Like the
// official per-subdirectory results, a result for structural or logical
// anomalies comes from an accumulator fed those images plus the good ones.
// An SPROAccumulator is not safe for concurrent use.
type SPROAccumulator struct {
	core     *pxCore
	cfg      *DefectsConfig
	channels int
	union    []bool   // scratch: pixel in any channel
	chKeys   []uint32 // scratch: keys of one channel's pixels
}

// SPROArea is the area under the sPRO curve up to one FPR limit.
type SPROArea struct {
	// Limit is the FPR integration limit.
	Limit float64 `json:"limit"`
	// AUSPRO is the area up to Limit divided by Limit.
	AUSPRO float64 `json:"au_spro"`
}

// SPROResult holds MVTec LOCO AD's localisation metrics.
type SPROResult struct {
	// AUSPRO has one area per limit of SPROLimits, in that order.
	AUSPRO []SPROArea `json:"au_spro"`
	// PixelAUROC is the pixel-level AUROC of the same pixels (anomalous
	// where any channel is > 0).
	PixelAUROC float64 `json:"pixel_auroc"`
	// Images and Channels count what was added.
	Images   int `json:"images"`
	Channels int `json:"channels"`
}

// NewSPROAccumulator returns an empty accumulator for a category with the
// given defects configuration.
func NewSPROAccumulator(cfg *DefectsConfig) *SPROAccumulator {
	return &SPROAccumulator{core: pxNewCore(), cfg: cfg}
}

// Add adds one image: its anomaly map (w×h scores, row-major) and its
// ground-truth channels (none for a good image). Every channel must mark
// at least one pixel and carry exactly one non-zero value, a pixel_value of
// the configuration. It returns a *SizeError when a length does not match
// w×h; the accumulator is unchanged after any error.
func (a *SPROAccumulator) Add(anomalyMap []float32, w, h int, channels ...Mask) error {
	if err := pxCheck(anomalyMap, w, h, channels); err != nil {
		return err
	}
	sats := make([]int, len(channels))
	for i, ch := range channels {
		s, err := a.saturation(i, ch)
		if err != nil {
			return err
		}
		sats[i] = s
	}
	c := a.core
	if err := c.keysOf(anomalyMap); err != nil {
		return err
	}
	n := w * h
	if cap(a.union) < n {
		a.union = make([]bool, n)
	}
	union := a.union[:n]
	clear(union)
	for i, ch := range channels {
		a.addChannel(ch, sats[i], union)
	}
	c.addPixels(func(i int) bool { return union[i] }, func(int) float64 { return 0 })
	a.channels += len(channels)
	return nil
}

// saturation checks channel i and returns its saturation area.
func (a *SPROAccumulator) saturation(i int, ch Mask) (int, error) {
	var value uint8
	area := 0
	for _, v := range ch {
		if v == 0 {
			continue
		}
		if value != 0 && v != value {
			return 0, fmt.Errorf("metrics: channel %d has pixel values %d and %d; a channel marks one defect", i, value, v)
		}
		value = v
		area++
	}
	if area == 0 {
		return 0, fmt.Errorf("metrics: channel %d marks no pixel", i)
	}
	d, ok := a.cfg.Lookup(value)
	if !ok {
		return 0, fmt.Errorf("metrics: channel %d has pixel value %d, which the defects config does not list", i, value)
	}
	s := d.SaturationArea(area)
	if s < 1 {
		return 0, fmt.Errorf("metrics: channel %d (%q, %d pixels): relative saturation %v gives a saturation area of 0 pixels", i, d.Name, area, d.Saturation)
	}
	return s, nil
}

// addChannel adds one channel's sPRO increments: with the channel's pixels
// in descending score order, the curve rises by 1/sat per pixel until sat
// pixels are positive, and not after; pixels with equal scores become
// positive together. It also marks the channel's pixels in union.
func (a *SPROAccumulator) addChannel(ch Mask, sat int, union []bool) {
	keys := a.chKeys[:0]
	for i, v := range ch {
		if v != 0 {
			keys = append(keys, a.core.keys[i])
			union[i] = true
		}
	}
	a.chKeys = keys
	slices.SortFunc(keys, func(x, y uint32) int { return cmp.Compare(y, x) })
	fs := float64(sat)
	for i := 0; i < len(keys) && i < sat; {
		j := i
		for j < len(keys) && keys[j] == keys[i] {
			j++
		}
		a.core.pos.add(keys[i], pxPos{w: float64(min(j, sat)-i) / fs})
		i = j
	}
}

// Result returns the AU-sPRO per limit of SPROLimits and the pixel AUROC of
// the images added so far. It returns an error wrapping ErrNoAnomalousPixel
// or ErrNoNormalPixel when they are not defined.
func (a *SPROAccumulator) Result() (SPROResult, error) {
	c := a.core
	cv, err := c.walk(float64(a.channels), SPROLimits)
	if err != nil {
		return SPROResult{}, fmt.Errorf("sPRO: %w", err)
	}
	r := SPROResult{PixelAUROC: cv.auroc, Images: c.images, Channels: a.channels}
	for i, l := range SPROLimits {
		r.AUSPRO = append(r.AUSPRO, SPROArea{Limit: l, AUSPRO: cv.areas[i]})
	}
	return r, nil
}

package metrics

import (
	"errors"
	"fmt"
	"math"
)

// Mask is a ground-truth mask of one image in row-major order (index
// y*width+x), as read from a mask PNG: a pixel is anomalous where its value
// is greater than zero. For MVTec LOCO AD a mask is one channel of a defect
// image (ground_truth/<defect>/<id>/000.png, 001.png, ...), whose non-zero
// pixels all carry the defect's pixel_value.
type Mask []uint8

// ErrNoAnomalousPixel is returned (wrapped) by Result when no image added
// so far has an anomalous pixel: the pixel AUROC and the overlap curves are
// not defined then.
var ErrNoAnomalousPixel = errors.New("no anomalous pixel in any ground-truth mask")

// ErrNoNormalPixel is returned (wrapped) by Result when every pixel added so
// far is anomalous: the false positive rate is not defined then.
var ErrNoNormalPixel = errors.New("no anomaly-free pixel in any image")

// ErrTooManyPixels is returned (wrapped) by Add when the pixels added would
// exceed 2^32-1, the most the accumulators count.
var ErrTooManyPixels = errors.New("more than 2^32-1 pixels")

// SizeError reports an anomaly map or mask whose length does not match the
// image size given to Add.
type SizeError struct {
	// What names the offending input: "anomaly map" or "mask 2".
	What string
	// Got is its length, Want is width × height.
	Got, Want int
	// Width and Height are the image size given to Add.
	Width, Height int
}

func (e *SizeError) Error() string {
	return fmt.Sprintf("metrics: %s has %d values, want %d for a %d×%d image", e.What, e.Got, e.Want, e.Width, e.Height)
}

// pxCore holds what every pixel metric needs: per distinct score, the
// normal-pixel count and the anomalous-pixel count with the overlap-curve
// increments.
type pxCore struct {
	neg    *pxStore[pxCount]
	pos    *pxStore[pxPos]
	nNeg   uint64
	nPos   uint64
	images int
	keys   []uint32 // scratch: the keys of the image being added
}

func newPxCore() *pxCore {
	return &pxCore{
		neg: newPxStore[pxCount](6, 4),
		pos: newPxStore[pxPos](18, 16),
	}
}

// pxCheck validates an anomaly map and its masks against the image size.
func pxCheck(anomalyMap []float32, w, h int, masks []Mask) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("metrics: image size %d×%d is not positive", w, h)
	}
	n := w * h
	if len(anomalyMap) != n {
		return &SizeError{What: "anomaly map", Got: len(anomalyMap), Want: n, Width: w, Height: h}
	}
	for i, m := range masks {
		if len(m) != n {
			return &SizeError{What: fmt.Sprintf("mask %d", i), Got: len(m), Want: n, Width: w, Height: h}
		}
	}
	return nil
}

// keysOf computes the score keys of an anomaly map into c.keys, rejecting
// scores that are not finite, and checks the pixel budget.
func (c *pxCore) keysOf(anomalyMap []float32) error {
	if c.nNeg+c.nPos+uint64(len(anomalyMap)) > math.MaxUint32 {
		return fmt.Errorf("metrics: %w", ErrTooManyPixels)
	}
	if cap(c.keys) < len(anomalyMap) {
		c.keys = make([]uint32, len(anomalyMap))
	}
	c.keys = c.keys[:len(anomalyMap)]
	for i, s := range anomalyMap {
		if f := float64(s); math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("metrics: anomaly map value %d is %v; scores must be finite", i, s)
		}
		c.keys[i] = pxKey(s)
	}
	return nil
}

// addPixels counts every pixel of the current image (c.keys) as normal or
// anomalous; weight(i) is the overlap-curve increment of anomalous pixel i.
func (c *pxCore) addPixels(anomalous func(i int) bool, weight func(i int) float64) {
	for i, k := range c.keys {
		if anomalous(i) {
			c.pos.add(k, pxPos{n: 1, w: weight(i)})
			c.nPos++
		} else {
			c.neg.add(k, 1)
			c.nNeg++
		}
	}
	c.images++
}

// pxCurve is the outcome of one walk over all distinct scores.
type pxCurve struct {
	auroc float64
	areas []float64 // normalised area under the overlap curve per limit
}

// walk computes the pixel AUROC and, for each FPR limit, the area under the
// curve (FPR, cumulative weight / norm) up to the limit divided by the
// limit. The curve has one point per distinct score, in descending order
// (a pixel is positive when its score is at least that score), preceded by
// (0, 0); it ends at FPR 1.
func (c *pxCore) walk(norm float64, limits []float64) (pxCurve, error) {
	if c.nPos == 0 {
		return pxCurve{}, fmt.Errorf("metrics: %w", ErrNoAnomalousPixel)
	}
	if c.nNeg == 0 {
		return pxCurve{}, fmt.Errorf("metrics: %w", ErrNoNormalPixel)
	}
	// The AUROC is the Mann-Whitney statistic with ties counted one half:
	// sum over scores of negatives × (2 × positives above + positives at),
	// over 2 × P × N. With at most 2^32 pixels every term and the sum fit
	// in a uint64 exactly, so the one division is the only rounding. That
	// is the exact value of scikit-learn's trapezoidal roc_auc_score.
	var num, posAbove, fp uint64
	var cum proSum
	tr := newProTrapz(limits)
	nNeg := float64(c.nNeg)
	pxWalk(c.neg, c.pos, func(_ uint32, n pxCount, p pxPos) {
		num += uint64(n) * (2*posAbove + uint64(p.n))
		posAbove += uint64(p.n)
		fp += uint64(n)
		cum.add(p.w)
		tr.next(float64(fp)/nNeg, cum.value()/norm)
	})
	return pxCurve{
		auroc: float64(num) / (2 * float64(c.nPos) * nNeg),
		areas: tr.result(),
	}, nil
}

package metrics

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
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
	// scratch for sorting them
	negKeys, tmp []uint32
	posKeys      []pxKeyed
}

func pxNewCore() *pxCore {
	return &pxCore{
		neg: pxNewStore[pxCount](6, 4),
		pos: pxNewStore[pxPos](18, 16),
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
// The keys are sorted first, so that the stores are filled in key order
// (one run per distinct score, sequential access to dense buckets) rather
// than at random.
func (c *pxCore) addPixels(anomalous func(i int) bool, weight func(i int) float64) {
	neg, pos := c.negKeys[:0], c.posKeys[:0]
	for i, k := range c.keys {
		if anomalous(i) {
			pos = append(pos, pxKeyed{k, pxPos{n: 1, w: weight(i)}})
		} else {
			neg = append(neg, k)
		}
	}
	c.nNeg += uint64(len(neg))
	c.nPos += uint64(len(pos))
	neg, c.tmp = pxSortKeys(neg, c.tmp)
	for i := 0; i < len(neg); {
		j := i + 1
		for j < len(neg) && neg[j] == neg[i] {
			j++
		}
		c.neg.add(neg[i], pxCount(j-i))
		i = j
	}
	slices.SortFunc(pos, func(a, b pxKeyed) int { return cmp.Compare(a.key, b.key) })
	for i := 0; i < len(pos); {
		p := pos[i].v
		j := i + 1
		for ; j < len(pos) && pos[j].key == pos[i].key; j++ {
			p = p.pxPlus(pos[j].v)
		}
		c.pos.add(pos[i].key, p)
		i = j
	}
	c.negKeys, c.posKeys = neg, pos
	c.images++
}

// pxKeyed is an anomalous pixel's key with its value.
type pxKeyed struct {
	key uint32
	v   pxPos
}

// pxSortKeys sorts keys in ascending order with a least-significant-digit
// radix sort (digits of 11, 11 and 10 bits; a pass whose digit is the same
// for every key is skipped), using tmp as scratch. It returns the sorted
// slice (keys or tmp) and the other one for reuse.
func pxSortKeys(keys, tmp []uint32) (sorted, scratch []uint32) {
	if cap(tmp) < len(keys) {
		tmp = make([]uint32, len(keys))
	}
	tmp = tmp[:len(keys)]
	var count [1 << 11]int
	for _, shift := range [3]uint{0, 11, 22} {
		clear(count[:])
		for _, k := range keys {
			count[k>>shift&(1<<11-1)]++
		}
		if len(keys) == 0 || count[keys[0]>>shift&(1<<11-1)] == len(keys) {
			continue
		}
		sum := 0
		for d, n := range count {
			count[d] = sum
			sum += n
		}
		for _, k := range keys {
			d := k >> shift & (1<<11 - 1)
			tmp[count[d]] = k
			count[d]++
		}
		keys, tmp = tmp, keys
	}
	return keys, tmp
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
	// over 2 × P × N. With at most 2^32 pixels the numerator (at most
	// 2 × P × N ≤ 2^63) is an exact uint64, so the result is the exact
	// area of scikit-learn's trapezoidal roc_auc_score up to the rounding
	// of the two operands to float64 and of the division (a few ulps);
	// scikit-learn itself sums the trapezoids in floating point.
	var num, posAbove, fp uint64
	var cum proSum
	tr := proNewTrapz(limits)
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

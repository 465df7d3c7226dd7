package datasets

import (
	"fmt"
	"math"
	"sync"
)

// Fixed-point precision of Pillow's 8-bit resampling: 32 bits minus 8 for the
// sample and 2 for overflow of filters with negative lobes.
const precisionBits = 32 - 8 - 2

// bilinearSupport is the support of Pillow's triangle (BILINEAR) filter.
const bilinearSupport = 1.0

func bilinearFilter(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return 1 - x
	}
	return 0
}

// resampleCoeffs holds, for every output index, the window of input indices
// [start, start+n) and ksize fixed-point weights (zero beyond n).
type resampleCoeffs struct {
	ksize int
	start []int
	n     []int
	k     []int32 // len(start)*ksize
}

// newResampleCoeffs builds the coefficient table of Pillow's
// precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter, for a
// full-extent box (0, inSize) resampled to outSize samples.
func newResampleCoeffs(inSize, outSize int) *resampleCoeffs {
	// Pillow passes the box edges as C floats; for integer sizes the
	// difference is exact.
	scale := float64(float32(inSize)-0) / float64(outSize)
	filterscale := scale
	if filterscale < 1 {
		filterscale = 1
	}
	support := bilinearSupport * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	c := &resampleCoeffs{
		ksize: ksize,
		start: make([]int, outSize),
		n:     make([]int, outSize),
		k:     make([]int32, outSize*ksize),
	}
	w := make([]float64, ksize)
	ss := 1.0 / filterscale
	for xx := 0; xx < outSize; xx++ {
		center := (float64(xx) + 0.5) * scale
		// C's (int) cast truncates toward zero, as Go's conversion does.
		xmin := int(center - support + 0.5)
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		var sum float64
		for x := 0; x < xmax; x++ {
			v := bilinearFilter((float64(x+xmin) - center + 0.5) * ss)
			w[x] = v
			sum += v
		}
		k := c.k[xx*ksize : (xx+1)*ksize]
		for x := 0; x < xmax; x++ {
			v := w[x]
			if sum != 0 {
				v /= sum
			}
			if v < 0 {
				k[x] = int32(-0.5 + v*(1<<precisionBits))
			} else {
				k[x] = int32(0.5 + v*(1<<precisionBits))
			}
		}
		c.start[xx] = xmin
		c.n[xx] = xmax
	}
	return c
}

type coeffKey struct{ in, out int }

// coeffCache keeps coefficient tables per (in, out) size pair. It is bounded:
// when full it is emptied, which only costs recomputation.
var coeffCache = struct {
	sync.Mutex
	m map[coeffKey]*resampleCoeffs
}{m: make(map[coeffKey]*resampleCoeffs)}

const maxCachedCoeffs = 128

func cachedCoeffs(in, out int) *resampleCoeffs {
	key := coeffKey{in, out}
	coeffCache.Lock()
	c, ok := coeffCache.m[key]
	coeffCache.Unlock()
	if ok {
		return c
	}
	c = newResampleCoeffs(in, out)
	coeffCache.Lock()
	if len(coeffCache.m) >= maxCachedCoeffs {
		clear(coeffCache.m)
	}
	coeffCache.m[key] = c
	coeffCache.Unlock()
	return c
}

// Resize returns img resampled to w×h exactly as Pillow 9.4's
// img.resize((w, h), Image.BILINEAR) does for an RGB image, which is what
// torchvision 0.14's transforms.Resize((h, w)) calls on a PIL image.
//
// This is Pillow's antialiased separable resampling: a triangle filter whose
// support grows with the shrink factor, weights rounded to 22-bit fixed point,
// a horizontal pass into an 8-bit intermediate image (only over the rows the
// vertical pass reads), then a vertical pass; a pass whose size does not
// change is skipped, and an image that already has the target size is
// returned as a copy.
//
// It panics if w or h is not positive.
func Resize(img RGB, w, h int) RGB {
	if w <= 0 || h <= 0 {
		panic(fmt.Sprintf("datasets.Resize: invalid target size %dx%d", w, h))
	}
	if img.W == w && img.H == h {
		return RGB{W: w, H: h, Pix: append([]uint8(nil), img.Pix...)}
	}
	if img.W <= 0 || img.H <= 0 {
		panic(fmt.Sprintf("datasets.Resize: empty source image %dx%d", img.W, img.H))
	}
	needH := w != img.W
	needV := h != img.H
	vert := cachedCoeffs(img.H, h)
	first := vert.start[0]
	last := vert.start[h-1] + vert.n[h-1]

	cur := img
	rowOffset := 0 // index in cur of the source row vert.start refers to as 0
	if needH {
		cur = resampleHorizontal(img, cachedCoeffs(img.W, w), first, last)
		rowOffset = first
	}
	if needV {
		cur = resampleVertical(cur, vert, rowOffset, h)
	}
	return cur
}

// resampleHorizontal resamples rows [first, last) of src to the width of c.
func resampleHorizontal(src RGB, c *resampleCoeffs, first, last int) RGB {
	outW := len(c.start)
	dst := NewRGB(outW, last-first)
	ks := c.ksize
	for y := first; y < last; y++ {
		in := src.Pix[3*y*src.W : 3*(y+1)*src.W]
		out := dst.Pix[3*(y-first)*outW : 3*(y-first+1)*outW]
		for xx := 0; xx < outW; xx++ {
			k := c.k[xx*ks : xx*ks+c.n[xx]]
			p := in[3*c.start[xx] : 3*(c.start[xx]+len(k))]
			s0, s1, s2 := int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1))
			for len(k) > 0 && len(p) >= 3 {
				kv := k[0]
				s0 += int32(p[0]) * kv
				s1 += int32(p[1]) * kv
				s2 += int32(p[2]) * kv
				k, p = k[1:], p[3:]
			}
			o := out[3*xx : 3*xx+3 : 3*xx+3]
			o[0] = clip8(s0)
			o[1] = clip8(s1)
			o[2] = clip8(s2)
		}
	}
	return dst
}

// resampleVertical resamples src to outH rows; row r of the source image is
// row r-rowOffset of src.
func resampleVertical(src RGB, c *resampleCoeffs, rowOffset, outH int) RGB {
	dst := NewRGB(src.W, outH)
	rowLen := 3 * src.W
	ks := c.ksize
	acc := make([]int32, rowLen)
	for yy := 0; yy < outH; yy++ {
		k := c.k[yy*ks : yy*ks+c.n[yy]]
		for i := range acc {
			acc[i] = 1 << (precisionBits - 1)
		}
		base := c.start[yy] - rowOffset
		for j, kv := range k {
			row := src.Pix[(base+j)*rowLen : (base+j+1)*rowLen]
			a := acc[:len(row)]
			for i, v := range row {
				a[i] += int32(v) * kv
			}
		}
		out := dst.Pix[yy*rowLen : (yy+1)*rowLen]
		for i, s := range acc {
			out[i] = clip8(s)
		}
	}
	return dst
}

// clip8 converts a fixed-point accumulator to a byte, saturating.
func clip8(s int32) uint8 {
	v := s >> precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

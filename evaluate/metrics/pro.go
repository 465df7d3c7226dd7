package metrics

import (
	"fmt"
)

// PROLimit is the false positive rate up to which MVTec AD's official
// evaluation integrates the PRO curve; the area is divided by it.
const PROLimit = 0.3

// PixelAccumulator computes MVTec AD's localisation metrics over a test set
// one image at a time: the pixel-level AUROC (scikit-learn's roc_auc_score
// over all pixels, anomalous where the mask is > 0) and the AU-PRO (the area
// under the per-region-overlap curve up to an FPR of PROLimit, divided by
// PROLimit), as MVTec's evaluation scripts define them:
//
//   - The regions are the connected components of each image's ground truth
//     (8-connectivity, diagonal neighbours included).
//   - At a threshold t a pixel is positive when its score is ≥ t; the PRO is
//     the mean over all regions of all images of the fraction of the
//     region's pixels that are positive, and the FPR is the fraction of all
//     anomaly-free pixels of all images that are positive.
//   - The curve has a point at every distinct score (no sampling), starts at
//     (0, 0), and is integrated with the trapezoidal rule up to the limit,
//     the last piece interpolated linearly at the limit.
//
// The official script rounds its FPRs to float32; here they are exact
// quotients in float64, which moves the AU-PRO by about 1e-9.
//
// Nothing is kept per pixel: memory grows with the number of distinct
// scores (see the package's pixel store), not with the number of images.
// A PixelAccumulator is not safe for concurrent use.
type PixelAccumulator struct {
	core    *pxCore
	regions int
	labels  []int32 // scratch for the connected components
}

// PixelResult holds MVTec AD's localisation metrics.
type PixelResult struct {
	// PixelAUROC is the area under the ROC curve of all pixels.
	PixelAUROC float64 `json:"pixel_auroc"`
	// AUPRO is the area under the PRO curve up to an FPR of PROLimit,
	// divided by PROLimit.
	AUPRO float64 `json:"au_pro"`
	// Images, Regions, NormalPixels and AnomalousPixels count what was
	// added.
	Images          int    `json:"images"`
	Regions         int    `json:"regions"`
	NormalPixels    uint64 `json:"normal_pixels"`
	AnomalousPixels uint64 `json:"anomalous_pixels"`
}

// NewPixelAccumulator returns an empty accumulator.
func NewPixelAccumulator() *PixelAccumulator {
	return &PixelAccumulator{core: pxNewCore()}
}

// Add adds one image: its anomaly map (w×h scores, row-major; higher is
// more anomalous) and its ground-truth masks, whose union is the image's
// ground truth (none for an anomaly-free image). The map is not retained.
// It returns a *SizeError when a length does not match w×h, and an error
// when a score is NaN or infinite; the accumulator is unchanged then.
func (a *PixelAccumulator) Add(anomalyMap []float32, w, h int, masks ...Mask) error {
	if err := pxCheck(anomalyMap, w, h, masks); err != nil {
		return err
	}
	c := a.core
	if err := c.keysOf(anomalyMap); err != nil {
		return err
	}
	sizes := a.components(w, h, masks)
	a.regions += len(sizes) - 1
	inv := make([]float64, len(sizes))
	for i := 1; i < len(sizes); i++ {
		inv[i] = 1 / float64(sizes[i])
	}
	labels := a.labels
	c.addPixels(func(i int) bool { return labels[i] != 0 }, func(i int) float64 { return inv[labels[i]] })
	return nil
}

// Result returns the metrics of the images added so far. It returns an
// error wrapping ErrNoAnomalousPixel or ErrNoNormalPixel when they are not
// defined.
func (a *PixelAccumulator) Result() (PixelResult, error) {
	c := a.core
	cv, err := c.walk(float64(a.regions), []float64{PROLimit})
	if err != nil {
		return PixelResult{}, fmt.Errorf("pixel metrics: %w", err)
	}
	return PixelResult{
		PixelAUROC:      cv.auroc,
		AUPRO:           cv.areas[0],
		Images:          c.images,
		Regions:         a.regions,
		NormalPixels:    c.nNeg,
		AnomalousPixels: c.nPos,
	}, nil
}

// components labels the connected components (8-connectivity) of the
// union of the masks into a.labels (0 = anomaly-free, 1..n = component) and
// returns the component sizes indexed by label (sizes[0] unused).
func (a *PixelAccumulator) components(w, h int, masks []Mask) []int {
	n := w * h
	if cap(a.labels) < n {
		a.labels = make([]int32, n)
	}
	a.labels = a.labels[:n]
	return LabelComponents(w, h, func(i int) bool { return proAnomalous(masks, i) }, a.labels)
}

// LabelComponents labels the connected components (8-connectivity) of the
// pixels of a w×h raster for which on(y*w+x) holds: lab (w·h values) gets
// 0 for the other pixels and 1..n for the components, numbered in raster
// order of their first pixel. It returns the component sizes indexed by
// label (sizes[0] unused).
func LabelComponents(w, h int, on func(i int) bool, lab []int32) []int {
	parent := []int32{0}
	find := func(x int32) int32 {
		for parent[x] != x {
			parent[x] = parent[parent[x]]
			x = parent[x]
		}
		return x
	}
	union := func(x, y int32) int32 {
		rx, ry := find(x), find(y)
		if rx < ry {
			parent[ry] = rx
			return rx
		}
		parent[rx] = ry
		return ry
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := y*w + x
			lab[i] = 0
			if !on(i) {
				continue
			}
			l := int32(0)
			for _, d := range [4][2]int{{-1, 0}, {-1, -1}, {0, -1}, {1, -1}} {
				nx, ny := x+d[0], y+d[1]
				if nx < 0 || nx >= w || ny < 0 {
					continue
				}
				if nl := lab[ny*w+nx]; nl != 0 {
					if l == 0 {
						l = find(nl)
					} else {
						l = union(l, nl)
					}
				}
			}
			if l == 0 {
				l = int32(len(parent))
				parent = append(parent, l)
			}
			lab[i] = l
		}
	}
	// Renumber the roots 1..k in raster order of first appearance.
	renum := make([]int32, len(parent))
	sizes := []int{0}
	for i, l := range lab[:w*h] {
		if l == 0 {
			continue
		}
		r := find(l)
		if renum[r] == 0 {
			renum[r] = int32(len(sizes))
			sizes = append(sizes, 0)
		}
		lab[i] = renum[r]
		sizes[renum[r]]++
	}
	return sizes
}

// proAnomalous reports whether pixel i is anomalous in any of the masks.
func proAnomalous(masks []Mask, i int) bool {
	for _, m := range masks {
		if m[i] > 0 {
			return true
		}
	}
	return false
}

// proSum is a Neumaier-compensated running sum, so that cumulating millions
// of curve increments stays within a few ulps of the exact sum.
type proSum struct{ s, c float64 }

func (p *proSum) add(x float64) {
	t := p.s + x
	if proAbs(p.s) >= proAbs(x) {
		p.c += (p.s - t) + x
	} else {
		p.c += (x - t) + p.s
	}
	p.s = t
}

func (p *proSum) value() float64 { return p.s + p.c }

func proAbs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// proTrapz integrates a curve given point by point with ascending x,
// starting at (0, 0), up to several limits at once, as the official
// trapezoid function does: full trapezoids for the points with x ≤ limit,
// and, when the limit falls strictly between two points, the piece up to the
// limit with y interpolated linearly there. Each area is divided by its
// limit.
type proTrapz struct {
	limits []float64
	areas  []proSum
	x0, y0 float64
}

func proNewTrapz(limits []float64) *proTrapz {
	return &proTrapz{limits: limits, areas: make([]proSum, len(limits))}
}

func (t *proTrapz) next(x, y float64) {
	for i, lim := range t.limits {
		switch {
		case x <= lim:
			t.areas[i].add(0.5 * (y + t.y0) * (x - t.x0))
		case t.x0 < lim:
			yi := t.y0 + (y-t.y0)*(lim-t.x0)/(x-t.x0)
			t.areas[i].add(0.5 * (yi + t.y0) * (lim - t.x0))
		}
	}
	t.x0, t.y0 = x, y
}

func (t *proTrapz) result() []float64 {
	out := make([]float64, len(t.limits))
	for i := range out {
		out[i] = t.areas[i].value() / t.limits[i]
	}
	return out
}

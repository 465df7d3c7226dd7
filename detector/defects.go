package detector

import (
	"image"
	"math"

	"github.com/puad-go/puad/evaluate/defectmask"
	"github.com/puad-go/puad/evaluate/metrics"
	"github.com/puad-go/puad/evaluate/stats"
)

// ErrNoPixelThreshold is returned by Defects for a fit made without the
// validation maps (fitting again gives one). It is stats.ErrNoPixelThreshold.
var ErrNoPixelThreshold = stats.ErrNoPixelThreshold

// Region is a connected defect region of a mask (8-connectivity).
type Region struct {
	// X0, Y0 is the top-left pixel of the bounding box, X1, Y1 one past
	// its bottom-right pixel.
	X0 int `json:"x0"`
	Y0 int `json:"y0"`
	X1 int `json:"x1"`
	Y1 int `json:"y1"`
	// Area is the region's number of pixels.
	Area int `json:"area"`
	// MaxScore is the largest anomaly-map value in the region.
	MaxScore float64 `json:"max_score"`
}

// Defects turns the anomaly map of r, at the image's resolution
// (Result.AnomalyMap), into a defect mask with the fit's pixel threshold
// (a pixel is a defect when its value is greater; defectmask.New) and lists
// the mask's connected regions in raster order of their first pixel. The
// mask is 255 on defects and 0 elsewhere.
func (d *Detector) Defects(r Result) (*image.Gray, []Region, error) {
	pt := d.fit.PixelThreshold
	if pt == nil {
		return nil, nil, ErrNoPixelThreshold
	}
	amap, err := r.AnomalyMap()
	if err != nil {
		return nil, nil, err
	}
	w, h := r.Width, r.Height
	mask, err := defectmask.New(amap, w, h, pt.Value)
	if err != nil {
		return nil, nil, err
	}
	lab := make([]int32, w*h)
	sizes := metrics.LabelComponents(w, h, func(i int) bool { return mask.Pix[i] != 0 }, lab)
	regions := make([]Region, len(sizes)-1)
	for k := range regions {
		regions[k] = Region{X0: w, Y0: h, Area: sizes[k+1], MaxScore: math.Inf(-1)}
	}
	for i, l := range lab {
		if l == 0 {
			continue
		}
		g, x, y := &regions[l-1], i%w, i/w
		g.X0, g.Y0, g.X1, g.Y1 = min(g.X0, x), min(g.Y0, y), max(g.X1, x+1), max(g.Y1, y+1)
		if v := float64(amap[i]); v > g.MaxScore {
			g.MaxScore = v
		}
	}
	return mask, regions, nil
}

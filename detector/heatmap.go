package detector

import (
	"image"
	"math"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/evaluate/heatmap"
	"github.com/puad-go/puad/evaluate/stats"
)

// HeatmapMinSize is the smallest side of a heatmap's image: maps of models
// with smaller inputs are drawn upsampled over a larger copy of the image.
const HeatmapMinSize = 256

// HeatmapStyle draws anomaly maps with one colour scale for all images of a
// category: 0 (the 0.9 quantile of normal pixels after the model's
// normalisation) is cold, and Max is hot.
type HeatmapStyle struct {
	// Max is the validation images' mean EfficientAD score plus three
	// standard deviations: an unusually high peak for a normal image.
	Max float64
	// Threshold is the decision threshold on the PUAD score.
	Threshold float64
	// Contour, when set, outlines the defect mask of this pixel threshold.
	Contour *float64
}

// NewHeatmapStyle is the style of the images of a fit.
func NewHeatmapStyle(fit *stats.FitFile) HeatmapStyle {
	ef := fit.Fusion.EfficientAD
	return HeatmapStyle{Max: ef.Mean + 3*ef.Std, Threshold: fit.Threshold.Value}
}

// HeatmapExtras are what a heatmap shows beyond the map and the verdict.
type HeatmapExtras struct {
	// GroundTruth is the image's ground-truth mask (evaluation only),
	// outlined when set.
	GroundTruth *image.Gray
	// UnpicturableOnly says that only the Mahalanobis distance makes the
	// image anomalous (stats.FitFile.UnpicturableOnly): the map may show
	// nothing, and a note says so.
	UnpicturableOnly bool
}

// unpicturableNote is the heatmap's note for an image that only the
// unpicturable score flags.
const unpicturableNote = "flagged by Mahalanobis score only"

// Render draws the size×size anomaly map amap over img (resized to size,
// as the networks saw it, or to HeatmapMinSize if that is larger), with a
// colour bar, the title, the PUAD score and verdict below it, and the
// extras.
func (h HeatmapStyle) Render(img datasets.RGB, amap []float32, size int, title string, puad float64, ex HeatmapExtras) (*image.RGBA, error) {
	side := max(size, HeatmapMinSize)
	hi := h.Max
	if !(hi > 0) || math.IsInf(hi, 0) {
		hi = 0 // relative to the map's own peak
	}
	opts := heatmap.Options{
		Min: 0, Max: hi, Title: title, ShowScore: true, Score: puad,
		// heatmap flags Score >= Threshold; the verdict is Score > Threshold.
		UseThreshold: true, Threshold: math.Nextafter(h.Threshold, math.Inf(1)), ColorBar: true,
		Contour: h.Contour, GroundTruth: ex.GroundTruth,
	}
	if ex.UnpicturableOnly {
		opts.Note = unpicturableNote
	}
	return heatmap.Render(rgbaImage(datasets.Resize(img, side, side)), amap, size, size, opts)
}

// Heatmap draws the anomaly map of r over its input in with the style of
// the detector's fit and the threshold r was judged by, noting an image
// that only the unpicturable score flags; with contours it outlines the
// defect mask of Defects (ErrNoPixelThreshold without one).
func (d *Detector) Heatmap(in Input, r Result, title string, contours bool) (*image.RGBA, error) {
	st := NewHeatmapStyle(d.fit)
	st.Threshold = r.Threshold
	if contours {
		if d.fit.PixelThreshold == nil {
			return nil, ErrNoPixelThreshold
		}
		st.Contour = &d.fit.PixelThreshold.Value
	}
	ex := HeatmapExtras{UnpicturableOnly: d.fit.Fusion.UnpicturableOnly(r.EfficientAD, r.Mahalanobis, r.Threshold)}
	return st.Render(in.rgb, r.modelMap, r.mapSize, title, r.PUAD, ex)
}

// rgbaImage converts a datasets.RGB to an image.RGBA.
func rgbaImage(m datasets.RGB) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, m.W, m.H))
	for i, j := 0, 0; i < len(m.Pix); i, j = i+3, j+4 {
		out.Pix[j], out.Pix[j+1], out.Pix[j+2], out.Pix[j+3] = m.Pix[i], m.Pix[i+1], m.Pix[i+2], 255
	}
	return out
}

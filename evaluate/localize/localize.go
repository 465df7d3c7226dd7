// Package localize computes a category's pixel-level results from
// full-resolution anomaly maps and the category's ground truth, as MVTec's
// official evaluation scripts report them: the pixel AUROC, the AU-PRO
// (MVTec AD masks) and the AU-sPRO (MVTec LOCO AD channels with a
// defects_config.json), over the whole test set and per anomaly class (that
// class together with the good images). Maps are streamed into the
// accumulators of evaluate/metrics one image at a time; none is kept.
//
// It also names the files the official scripts read anomaly maps from
// (MapPath). The package is pure Go.
package localize

import (
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/evaluate/metrics"
	"github.com/puad-go/puad/internal/pyfmt"
)

// SPROLimits are the FPR limits of the AU-sPRO that results report, keyed
// by their Python repr ("0.05", "0.1", "0.3", "1.0"), as the official
// MVTec LOCO AD script lists them.
var SPROLimits = []float64{0.05, 0.1, 0.3, 1.0}

// MapExt is the extension of anomaly map files.
const MapExt = ".tiff"

// MapPath is the file of a test image's anomaly map in the layout the
// official evaluation scripts read: <dir>/<category>/test/<class>/<stem>.tiff.
func MapPath(dir, category, class, imagePath string) string {
	return TestFilePath(dir, category, class, imagePath, MapExt)
}

// TestFilePath is the file, with extension ext, that holds what was made
// of a test image in MapPath's layout: <dir>/<category>/test/<class>/<stem><ext>.
func TestFilePath(dir, category, class, imagePath, ext string) string {
	return filepath.Join(dir, category, datasets.TestDir, class, datasets.Stem(imagePath)+ext)
}

// GroundTruth is what a category offers for localisation.
type GroundTruth struct {
	// Layout is how the masks are stored.
	Layout datasets.GroundTruthLayout
	// Defects is the parsed defects_config.json of an MVTec LOCO AD
	// category; nil when there is none (no AU-sPRO then).
	Defects *metrics.DefectsConfig
	ds      *datasets.Dataset
}

// Open finds the ground truth of a category. It returns nil (and no
// error) when the category has no ground_truth folder. A
// defects_config.json that cannot be used is an error naming it
// (*metrics.DefectsConfigError).
func Open(ds *datasets.Dataset) (*GroundTruth, error) {
	layout, err := ds.GroundTruthLayout()
	if err != nil || layout == datasets.NoGroundTruth {
		return nil, err
	}
	gt := &GroundTruth{Layout: layout, ds: ds}
	if layout != datasets.LOCOChannels {
		return gt, nil
	}
	path := filepath.Join(ds.Dir, datasets.DefectsConfigFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return gt, nil
	}
	if gt.Defects, err = metrics.ReadDefectsConfig(path); err != nil {
		return nil, err
	}
	return gt, nil
}

// Masks loads the ground truth of one test image of w×h pixels: nothing
// for a good image, otherwise its mask or channels. A missing mask
// (*datasets.MissingMaskError) or one of another size
// (*datasets.MaskSizeError) is an error naming the file.
func (g *GroundTruth) Masks(it datasets.TestItem, w, h int) ([]metrics.Mask, error) {
	files, err := g.ds.MaskFiles(it, g.Layout)
	if err != nil {
		return nil, err
	}
	ms, err := datasets.LoadMasks(files, w, h)
	if err != nil {
		return nil, err
	}
	out := make([]metrics.Mask, len(ms))
	for i, m := range ms {
		out[i] = m.Pix
	}
	return out, nil
}

// Metrics are a category's pixel-level results. Metrics that do not apply
// are absent: AU-PRO without MVTec AD masks, AU-sPRO without LOCO channels
// and a defects_config.json.
type Metrics struct {
	// PixelAUROC is the AUROC over all pixels of all test images (for
	// LOCO a pixel is anomalous when any channel covers it).
	PixelAUROC float64 `json:"pixel_auroc"`
	// AUPRO is MVTec AD's AU-PRO up to an FPR of 0.3.
	AUPRO *float64 `json:"au_pro,omitempty"`
	// AUSPRO is MVTec LOCO AD's AU-sPRO per FPR limit (SPROLimits): the
	// mean over the anomaly classes of each class's AU-sPRO.
	AUSPRO map[string]float64 `json:"au_spro,omitempty"`
	// PerClass has the metrics of each anomaly class with the good
	// images, in the category's class order.
	PerClass []ClassMetrics `json:"localization_per_class,omitempty"`
}

// ClassMetrics are the pixel-level results of one anomaly class, computed
// on its images and the good ones.
type ClassMetrics struct {
	Class      string             `json:"class"`
	PixelAUROC float64            `json:"pixel_auroc"`
	AUPRO      *float64           `json:"au_pro,omitempty"`
	AUSPRO     map[string]float64 `json:"au_spro,omitempty"`
}

// WriteText prints the results as lines in the style of the evaluation's
// text output ("pixel auroc : 0.97", one line per metric, then per class).
func (m *Metrics) WriteText(w io.Writer) {
	lines := func(suffix string, auroc float64, aupro *float64, auspro map[string]float64) {
		fmt.Fprintf(w, "pixel auroc%s : %s\n", suffix, pyfmt.Float(auroc))
		if aupro != nil {
			fmt.Fprintf(w, "au_pro%s : %s\n", suffix, pyfmt.Float(*aupro))
		}
		for _, l := range SPROLimits {
			if v, ok := auspro[pyfmt.Float(l)]; ok {
				fmt.Fprintf(w, "au_spro@%s%s : %s\n", pyfmt.Float(l), suffix, pyfmt.Float(v))
			}
		}
	}
	lines("", m.PixelAUROC, m.AUPRO, m.AUSPRO)
	for _, c := range m.PerClass {
		lines(" for "+c.Class, c.PixelAUROC, c.AUPRO, c.AUSPRO)
	}
}

// MaskImage is the union of an image's masks as a w×h greyscale image
// (255 where any mask is non-zero), for drawing; nil when there is none.
func MaskImage(masks []metrics.Mask, w, h int) *image.Gray {
	if len(masks) == 0 {
		return nil
	}
	img := image.NewGray(image.Rect(0, 0, w, h))
	for _, m := range masks {
		for i, v := range m {
			if v != 0 && i < len(img.Pix) {
				img.Pix[i] = 255
			}
		}
	}
	return img
}

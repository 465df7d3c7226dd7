// Package defectmask turns anomaly maps into binary defect masks and
// writes them as PNG files. It is the one maker and writer of masks: `puad
// predict --masks`, `puad eval --masks` and the detector's Defects all go
// through it, so the same map and threshold give the same bytes. The
// package is pure Go.
package defectmask

import (
	"fmt"
	"image"
	"os"
	"path/filepath"

	"github.com/puad-go/puad/evaluate/heatmap"
	"github.com/puad-go/puad/evaluate/localize"
)

// Ext is the extension of mask files.
const Ext = ".png"

// Defect and Background are a mask's two values.
const (
	Defect     = 255
	Background = 0
)

// New returns the mask of the w×h anomaly map amap (row by row): Defect
// where a value is greater than threshold, Background elsewhere.
func New(amap []float32, w, h int, threshold float64) (*image.Gray, error) {
	if w <= 0 || h <= 0 || len(amap) != w*h {
		return nil, fmt.Errorf("defect mask: %d map values for %d×%d pixels", len(amap), w, h)
	}
	mask := image.NewGray(image.Rect(0, 0, w, h))
	for i, v := range amap {
		if float64(v) > threshold {
			mask.Pix[i] = Defect
		}
	}
	return mask, nil
}

// WriteFile writes mask to path as an 8-bit greyscale PNG (atomically,
// see heatmap.WritePNG), creating its folder.
func WriteFile(path string, mask *image.Gray) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write defect mask: %w", err)
	}
	if err := heatmap.WritePNG(path, mask); err != nil {
		return fmt.Errorf("write defect mask %s: %w", path, err)
	}
	return nil
}

// Path is the mask file of a test image in the layout of the anomaly maps
// (localize.MapPath): <dir>/<category>/test/<class>/<stem>.png.
func Path(dir, category, class, imagePath string) string {
	return localize.TestFilePath(dir, category, class, imagePath, Ext)
}

package evaluate

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/evaluate/defectmask"
	"github.com/puad-go/puad/evaluate/floattiff"
	"github.com/puad-go/puad/evaluate/localize"
	tb "github.com/puad-go/puad/torchbind"
)

// FullMap resizes a size×size anomaly map to w×h (width × height) as
// EfficientAD's reference code brings maps to the original image size:
// torch.nn.functional.interpolate(map[None, None], size=(h, w),
// mode="bilinear") with align_corners false, on the CPU.
func FullMap(amap []float32, size, w, h int) ([]float32, error) {
	if len(amap) != size*size {
		return nil, fmt.Errorf("resize anomaly map: %d values, want %d×%d", len(amap), size, size)
	}
	var out []float32
	err := tb.InferenceMode(func() error {
		s := tb.NewScope()
		defer s.Close()
		x := s.T(tb.FromSlice(amap, 1, 1, int64(size), int64(size)))
		up := s.T(tb.UpsampleBilinear(x, int64(h), int64(w), false))
		if err := s.Err(); err != nil {
			return err
		}
		var err error
		out, err = up.Float32s()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("resize anomaly map to %d×%d: %w", w, h, err)
	}
	return out, nil
}

// ImageMap is a test image's anomaly map at the image's own size.
type ImageMap struct {
	Pix  []float32
	W, H int
}

// ImageFullMap reads the size of the image at path and resizes its
// size×size map to it (FullMap).
func ImageFullMap(path string, amap []float32, size int) (ImageMap, error) {
	w, h, err := datasets.ImageSize(path)
	if err != nil {
		return ImageMap{}, err
	}
	pix, err := FullMap(amap, size, w, h)
	if err != nil {
		return ImageMap{}, fmt.Errorf("%s: %w", path, err)
	}
	return ImageMap{Pix: pix, W: w, H: h}, nil
}

// WriteMap writes m as a float TIFF at localize.MapPath(dir, category,
// class, imagePath), creating its folder, and returns the file's path.
func WriteMap(dir, category, class, imagePath string, m ImageMap) (string, error) {
	path := localize.MapPath(dir, category, class, imagePath)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("write anomaly map: %w", err)
	}
	return path, floattiff.WriteFile(path, m.Pix, m.W, m.H)
}

// MapCollisionError reports two images whose anomaly maps would be one
// file of the layout of WriteMap, which keeps only the class folder and
// the name without its extension.
type MapCollisionError struct {
	First, Second string // the images
	File          string // their map's file
}

func (e *MapCollisionError) Error() string {
	return fmt.Sprintf("the anomaly maps of %s and %s would both be %s (the layout keeps only the class folder and the name without extension)",
		e.First, e.Second, e.File)
}

// CheckMapPaths returns a *MapCollisionError for the first two of n images
// whose maps WriteMap would write to one file under dir; image i has the
// class and path that at returns. One file listed twice is one image.
func CheckMapPaths(dir, category string, n int, at func(i int) (class, path string)) error {
	owner := make(map[string]string, n)
	for i := range n {
		class, path := at(i)
		file := localize.MapPath(dir, category, class, path)
		if prev, ok := owner[file]; ok && !samePath(prev, path) {
			return &MapCollisionError{First: prev, Second: path, File: file}
		}
		owner[file] = path
	}
	return nil
}

// samePath reports whether a and b name one file by their absolute paths.
func samePath(a, b string) bool {
	absA, errA := filepath.Abs(a)
	absB, errB := filepath.Abs(b)
	return errA == nil && errB == nil && absA == absB
}

// testMaps handles the test images' maps during Evaluate: it writes them
// under dir and their defect masks under masks (when set), and streams them
// into the localisation metrics (when the category has ground truth).
type testMaps struct {
	ds         *datasets.Dataset
	size       int
	dir, masks string
	maskTh     float64
	gt         *localize.GroundTruth
	acc        *localize.Accumulator
}

// newTestMaps returns nil when the maps are not needed: no output folder
// and no ground truth.
func newTestMaps(ds *datasets.Dataset, size int, opts Options) (*testMaps, error) {
	gt, err := localize.Open(ds)
	if err != nil {
		return nil, err
	}
	if gt == nil && opts.MapsDir == "" && opts.MasksDir == "" {
		return nil, nil
	}
	t := &testMaps{ds: ds, size: size, dir: opts.MapsDir, masks: opts.MasksDir, maskTh: opts.MaskThreshold, gt: gt}
	if gt != nil {
		t.acc = localize.NewAccumulator(gt, ds.Classes)
	}
	return t, nil
}

// add takes the map of test image it.
func (t *testMaps) add(it datasets.TestItem, amap []float32) error {
	m, err := ImageFullMap(it.Path, amap, t.size)
	if err != nil {
		return err
	}
	if t.dir != "" {
		if _, err := WriteMap(t.dir, t.ds.Category, it.Class, it.Path, m); err != nil {
			return err
		}
	}
	if t.masks != "" {
		if err := writeMask(t.masks, t.ds.Category, it, m, t.maskTh); err != nil {
			return err
		}
	}
	if t.acc == nil {
		return nil
	}
	masks, err := t.gt.Masks(it, m.W, m.H)
	if err != nil {
		return err
	}
	return t.acc.Add(it, m.Pix, m.W, m.H, masks)
}

// writeMask writes the defect mask of test image it, whose map is m, cut
// at threshold, to defectmask.Path below dir.
func writeMask(dir, category string, it datasets.TestItem, m ImageMap, threshold float64) error {
	mask, err := defectmask.New(m.Pix, m.W, m.H, threshold)
	if err != nil {
		return fmt.Errorf("%s: %w", it.Path, err)
	}
	return defectmask.WriteFile(defectmask.Path(dir, category, it.Class, it.Path), mask)
}

// result returns the localisation metrics, nil when none apply.
func (t *testMaps) result() (*localize.Metrics, error) {
	if t == nil || t.acc == nil {
		return nil, nil
	}
	return t.acc.Result()
}

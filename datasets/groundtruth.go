package datasets

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// DefectsConfigFile is the file in an MVTec LOCO AD category folder that
// gives each defect type's pixel value and saturation threshold.
const DefectsConfigFile = "defects_config.json"

// MaskSuffix ends the name of an MVTec AD ground-truth mask:
// ground_truth/<class>/<image stem>_mask.png.
const MaskSuffix = "_mask.png"

// GroundTruthLayout tells how a category stores its ground-truth masks.
type GroundTruthLayout int

const (
	// NoGroundTruth: the category has no ground_truth folder.
	NoGroundTruth GroundTruthLayout = iota
	// MVTecADMasks: one mask per anomalous test image,
	// ground_truth/<class>/<stem>_mask.png.
	MVTecADMasks
	// LOCOChannels: one folder per anomalous test image,
	// ground_truth/<class>/<stem>/, holding one PNG per defect (000.png,
	// 001.png, ...).
	LOCOChannels
)

// String names the layout as the benchmark that uses it.
func (l GroundTruthLayout) String() string {
	switch l {
	case MVTecADMasks:
		return "MVTec AD masks"
	case LOCOChannels:
		return "MVTec LOCO AD channels"
	}
	return "no ground truth"
}

// MissingMaskError reports an anomalous test image without its
// ground-truth mask (or channel folder).
type MissingMaskError struct {
	// Image is the test image; Want is the file or folder looked for.
	Image, Want string
}

func (e *MissingMaskError) Error() string {
	return fmt.Sprintf("no ground-truth mask for test image %s: %s does not exist", e.Image, e.Want)
}

// MaskSizeError reports a ground-truth mask whose size differs from its
// image's.
type MaskSizeError struct {
	// Mask is the mask file.
	Mask string
	// W, H are the mask's size; ImageW, ImageH the image's.
	W, H, ImageW, ImageH int
}

func (e *MaskSizeError) Error() string {
	return fmt.Sprintf("ground-truth mask %s is %d×%d, its image %d×%d", e.Mask, e.W, e.H, e.ImageW, e.ImageH)
}

// GroundTruthLayout tells how the category stores its masks: not at all
// (no ground_truth folder), one PNG per image (MVTec AD) or one folder
// per image (MVTec LOCO AD), judged from the first anomalous test image
// that has either. A ground_truth folder that holds neither for any
// anomalous image is an error naming it.
func (d *Dataset) GroundTruthLayout() (GroundTruthLayout, error) {
	root := filepath.Join(d.Dir, GroundTruthDir)
	if _, err := os.Stat(root); errors.Is(err, os.ErrNotExist) {
		return NoGroundTruth, nil
	} else if err != nil {
		return NoGroundTruth, fmt.Errorf("dataset %s: %w", d.Dir, err)
	}
	for _, it := range d.Test {
		if !it.Anomalous {
			continue
		}
		if fi, err := os.Stat(locoMaskDir(d.Dir, it)); err == nil && fi.IsDir() {
			return LOCOChannels, nil
		}
		if _, err := os.Stat(adMaskFile(d.Dir, it)); err == nil {
			return MVTecADMasks, nil
		}
	}
	return NoGroundTruth, fmt.Errorf("dataset %s: %s holds no mask of any anomalous test image (want <class>/<stem>%s or <class>/<stem>/000.png)",
		d.Dir, root, MaskSuffix)
}

// MaskFiles returns the ground-truth files of a test image in the given
// layout: none for a normal image, the one mask (MVTec AD) or the
// channel PNGs in name order (MVTec LOCO AD). An anomalous image without
// them gives a *MissingMaskError.
func (d *Dataset) MaskFiles(it TestItem, layout GroundTruthLayout) ([]string, error) {
	if !it.Anomalous || layout == NoGroundTruth {
		return nil, nil
	}
	if layout == MVTecADMasks {
		p := adMaskFile(d.Dir, it)
		if _, err := os.Stat(p); err != nil {
			return nil, &MissingMaskError{Image: it.Path, Want: p}
		}
		return []string{p}, nil
	}
	dir := locoMaskDir(d.Dir, it)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, &MissingMaskError{Image: it.Path, Want: dir}
	}
	var files []string
	for _, e := range entries {
		if !e.IsDir() && strings.EqualFold(filepath.Ext(e.Name()), ".png") {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	if len(files) == 0 {
		return nil, &MissingMaskError{Image: it.Path, Want: filepath.Join(dir, "000.png")}
	}
	slices.SortFunc(files, pyCompare)
	return files, nil
}

// Stem is a file name without its folder and extension: the image id of
// the MVTec layouts ("000" for test/good/000.png).
func Stem(path string) string {
	base := filepath.Base(path)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

func adMaskFile(dir string, it TestItem) string {
	return filepath.Join(dir, GroundTruthDir, it.Class, Stem(it.Path)+MaskSuffix)
}

func locoMaskDir(dir string, it TestItem) string {
	return filepath.Join(dir, GroundTruthDir, it.Class, Stem(it.Path))
}

// Mask is one decoded ground-truth image: W×H values, row-major; a pixel
// is marked where its value is non-zero.
type Mask struct {
	W, H int
	Pix  []uint8
}

// LoadMask decodes a ground-truth PNG (or any image DecodeFile reads) as
// greyscale values, the first channel of the decoded image: for the 8-bit
// greyscale masks of the MVTec datasets, the stored values.
func LoadMask(path string) (Mask, error) {
	img, err := DecodeFile(path)
	if err != nil {
		return Mask{}, fmt.Errorf("ground-truth mask: %w", err)
	}
	m := Mask{W: img.W, H: img.H, Pix: make([]uint8, img.W*img.H)}
	for i := range m.Pix {
		m.Pix[i] = img.Pix[3*i]
	}
	return m, nil
}

// LoadMasks loads the masks of one image of w×h pixels, checking their
// size (*MaskSizeError).
func LoadMasks(files []string, w, h int) ([]Mask, error) {
	masks := make([]Mask, len(files))
	for i, f := range files {
		m, err := LoadMask(f)
		if err != nil {
			return nil, err
		}
		if m.W != w || m.H != h {
			return nil, &MaskSizeError{Mask: f, W: m.W, H: m.H, ImageW: w, ImageH: h}
		}
		masks[i] = m
	}
	return masks, nil
}

// ImageSize returns the width and height an image file's header
// announces, without decoding its pixels.
func ImageSize(path string) (w, h int, err error) {
	data, err := readRegularFile(path, DecodeOptions{}.maxFileBytes())
	if err != nil {
		return 0, 0, fmt.Errorf("image size of %s: %w", path, err)
	}
	for i := range formats {
		if formats[i].match(data) {
			w, h, err := formats[i].config(data)
			if err != nil {
				return 0, 0, fmt.Errorf("image size of %s: %w", path, formats[i].wrap(err))
			}
			return w, h, nil
		}
	}
	return 0, 0, fmt.Errorf("image size of %s: %w", path, ErrUnsupportedFormat)
}

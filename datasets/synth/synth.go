// Package synth generates a small synthetic dataset in the layout of MVTec
// LOCO AD, for demos and tests that must run without the real data.
//
// Every image shows a tray with compartments that hold a fixed set of objects
// in fixed counts and colours, with small random jitter in position, size,
// rotation, lighting and texture. Logical anomalies break one of the rules of
// the composition while every object still looks normal (an object missing,
// an extra object, a wrong colour, two objects swapped between compartments,
// an object moved to another compartment); their ground truth marks the
// objects concerned (where the missing one should be, the extra or
// recoloured one, both swapped ones, the moved one at its new and its old
// place), one channel each, as MVTec LOCO AD's does. Structural anomalies
// damage one object locally (scratch, hole, blot, broken edge) and come with
// a ground-truth mask of the damage.
//
// The output is a pure function of the configuration: each image is drawn
// from its own PCG stream derived from Config.Seed, the variant, the set and
// the image index, so the same seed always yields the same pixels (on a given
// architecture) and images can be produced in any order.
//
// Directory layout written by Generate:
//
//	<root>/<DatasetName>/<Category>/train/good/000.png ...
//	<root>/<DatasetName>/<Category>/validation/good/000.png ...   (WithValidation)
//	<root>/<DatasetName>/<Category>/test/good/000.png ...
//	<root>/<DatasetName>/<Category>/test/logical_anomalies/000.png ...
//	<root>/<DatasetName>/<Category>/test/structural_anomalies/000.png ...
//	<root>/<DatasetName>/<Category>/ground_truth/logical_anomalies/000/000.png ...
//	<root>/<DatasetName>/<Category>/ground_truth/structural_anomalies/000/000.png ...
//	<root>/<DatasetName>/<Category>/defects_config.json
//
// Each channel PNG of the MVTec LOCO AD layout holds its defect's pixel
// value (DefectPixelValue) where the defect is, and defects_config.json
// gives every kind's pixel value and saturation threshold (Defects). With
// Config.Masks set to MasksMVTecAD the ground truth is written as MVTec AD
// has it instead: one binary mask per anomalous image (the union of its
// channels), ground_truth/<label>/000_mask.png, and no defects_config.json.
package synth

import (
	"fmt"
	"image"
	"strings"

	"github.com/puad-go/puad/datasets"
)

// Variant selects the object set of a category.
type Variant string

const (
	// VariantTray is a tray with three compartments: two red discs on the
	// left, three blue rounded squares in the middle, one yellow bar on the
	// right (in the spirit of LOCO's breakfast box).
	VariantTray Variant = "tray"
	// VariantPins is a grid of two rows by three columns of cells, each
	// holding exactly one green pin head (in the spirit of LOCO's pushpins).
	VariantPins Variant = "pins"
)

// Variants returns the known variants.
func Variants() []Variant { return []Variant{VariantTray, VariantPins} }

// Default values used by DefaultConfig and for zero fields of Config.
const (
	DefaultDatasetName = "synthetic_loco"
	DefaultCategory    = "tray"
	DefaultWidth       = 256
	DefaultHeight      = 256
)

// Labels of the image groups, which are also the names of the directories
// below train/, validation/, test/ and ground_truth/.
const (
	LabelGood       = datasets.NormalClass
	LabelLogical    = "logical_anomalies"
	LabelStructural = "structural_anomalies"
)

// Set identifies one group of images of a category.
type Set int

const (
	// SetTrainGood is train/good.
	SetTrainGood Set = iota + 1
	// SetValidationGood is validation/good.
	SetValidationGood
	// SetTestGood is test/good.
	SetTestGood
	// SetTestLogical is test/logical_anomalies.
	SetTestLogical
	// SetTestStructural is test/structural_anomalies.
	SetTestStructural
)

// Sets returns all sets in the order Generate writes them.
func Sets() []Set {
	return []Set{SetTrainGood, SetValidationGood, SetTestGood, SetTestLogical, SetTestStructural}
}

// Split returns the split directory of s: "train", "validation" or "test".
func (s Set) Split() string {
	switch s {
	case SetTrainGood:
		return datasets.TrainDir
	case SetValidationGood:
		return datasets.ValidationDir
	case SetTestGood, SetTestLogical, SetTestStructural:
		return datasets.TestDir
	}
	return ""
}

// Label returns the label directory of s: LabelGood, LabelLogical or
// LabelStructural.
func (s Set) Label() string {
	switch s {
	case SetTrainGood, SetValidationGood, SetTestGood:
		return LabelGood
	case SetTestLogical:
		return LabelLogical
	case SetTestStructural:
		return LabelStructural
	}
	return ""
}

// String returns "split/label", e.g. "test/logical_anomalies".
func (s Set) String() string {
	if s.Split() == "" {
		return fmt.Sprintf("Set(%d)", int(s))
	}
	return s.Split() + "/" + s.Label()
}

// Logical anomaly kinds, as reported in Sample.Anomaly and Entry.Anomaly.
const (
	AnomalyMissing    = "missing_object"
	AnomalyExtra      = "extra_object"
	AnomalyWrongColor = "wrong_color"
	AnomalySwapped    = "swapped_objects"
	AnomalyMisplaced  = "misplaced_object"
)

// Structural anomaly kinds, as reported in Sample.Anomaly and Entry.Anomaly.
const (
	AnomalyScratch    = "scratch"
	AnomalyHole       = "hole"
	AnomalyBlot       = "blot"
	AnomalyBrokenEdge = "broken_edge"
)

// Config describes one synthetic category.
type Config struct {
	// Seed selects the dataset; the same seed gives the same images.
	Seed uint64
	// Width and Height of every image in pixels; zero means DefaultWidth
	// and DefaultHeight. Non-square sizes stretch the scene.
	Width, Height int
	// DatasetName is the directory below the root; empty means
	// DefaultDatasetName.
	DatasetName string
	// Category is the directory below DatasetName; empty means the name of
	// the variant.
	Category string
	// Variant selects the object set; empty means the variant named by
	// Category if there is one, else VariantTray.
	Variant Variant
	// TrainGood is the number of normal training images.
	TrainGood int
	// WithValidation enables the validation/good directory.
	WithValidation bool
	// ValidationGood is the number of normal validation images, used only
	// when WithValidation is set.
	ValidationGood int
	// TestGood, TestLogical and TestStructural are the numbers of test
	// images of each label.
	TestGood, TestLogical, TestStructural int
	// Masks is the layout of the ground truth; empty means MasksLOCO.
	Masks MaskLayout
}

// MaskLayout selects how Generate writes the ground truth.
type MaskLayout string

const (
	// MasksLOCO writes MVTec LOCO AD's layout: a folder per anomalous
	// image with one channel PNG per defect, and defects_config.json.
	MasksLOCO MaskLayout = "loco"
	// MasksMVTecAD writes MVTec AD's layout: one binary mask per
	// anomalous image, <stem>_mask.png.
	MasksMVTecAD MaskLayout = "mvtec_ad"
)

// DefaultConfig returns a configuration for a demo-sized category: 256x256
// images of the tray variant, 100 training images, 20 validation images and
// 20 test images of each label.
func DefaultConfig() Config {
	return Config{
		Seed:           1,
		Width:          DefaultWidth,
		Height:         DefaultHeight,
		DatasetName:    DefaultDatasetName,
		Category:       DefaultCategory,
		Variant:        VariantTray,
		TrainGood:      100,
		WithValidation: true,
		ValidationGood: 20,
		TestGood:       20,
		TestLogical:    20,
		TestStructural: 20,
	}
}

// Count returns the number of images c asks for in set s.
func (c Config) Count(s Set) int {
	switch s {
	case SetTrainGood:
		return c.TrainGood
	case SetValidationGood:
		if c.WithValidation {
			return c.ValidationGood
		}
	case SetTestGood:
		return c.TestGood
	case SetTestLogical:
		return c.TestLogical
	case SetTestStructural:
		return c.TestStructural
	}
	return 0
}

// Normalized returns c with the defaults filled in, or an error if c is not
// valid.
func (c Config) Normalized() (Config, error) {
	if c.Width == 0 {
		c.Width = DefaultWidth
	}
	if c.Height == 0 {
		c.Height = DefaultHeight
	}
	if c.Width < 16 || c.Height < 16 || c.Width > 8192 || c.Height > 8192 {
		return c, fmt.Errorf("synth: image size %dx%d out of range [16, 8192]", c.Width, c.Height)
	}
	if c.DatasetName == "" {
		c.DatasetName = DefaultDatasetName
	}
	if c.Variant == "" {
		c.Variant = VariantTray
		for _, v := range Variants() {
			if c.Category == string(v) {
				c.Variant = v
			}
		}
	}
	switch c.Masks {
	case "":
		c.Masks = MasksLOCO
	case MasksLOCO, MasksMVTecAD:
	default:
		return c, fmt.Errorf("synth: unknown mask layout %q", c.Masks)
	}
	if _, ok := layouts[c.Variant]; !ok {
		return c, fmt.Errorf("synth: unknown variant %q", c.Variant)
	}
	if c.Category == "" {
		c.Category = string(c.Variant)
	}
	for _, n := range []struct{ what, name string }{{"dataset name", c.DatasetName}, {"category", c.Category}} {
		if n.name == "." || n.name == ".." || strings.ContainsAny(n.name, `/\`) {
			return c, fmt.Errorf("synth: invalid %s %q", n.what, n.name)
		}
	}
	for _, s := range Sets() {
		if n := c.Count(s); n < 0 {
			return c, fmt.Errorf("synth: negative image count %d for %s", n, s)
		}
	}
	if c.ValidationGood < 0 {
		return c, fmt.Errorf("synth: negative image count %d for %s", c.ValidationGood, SetValidationGood)
	}
	return c, nil
}

// Sample is one rendered image.
type Sample struct {
	// Image is the scene.
	Image *image.RGBA
	// Mask is the binary ground truth (0 or 255) of an anomalous image, the
	// same size as Image: the union of Channels; nil for normal images.
	Mask *image.Gray
	// Channels are the ground truth of an anomalous image, one binary mask
	// per defect region (a structural anomaly has one, a logical anomaly
	// one per object concerned); nil for normal images.
	Channels []*image.Gray
	// Set is the group the image belongs to.
	Set Set
	// Index is the position of the image in its set.
	Index int
	// Anomaly names the kind of anomaly (one of the Anomaly* constants);
	// empty for normal images.
	Anomaly string
}

// Render returns image index of set s of the category described by cfg,
// without writing anything. It produces exactly the pixels Generate writes.
func Render(cfg Config, s Set, index int) (Sample, error) {
	cfg, err := cfg.Normalized()
	if err != nil {
		return Sample{}, err
	}
	if s.Split() == "" {
		return Sample{}, fmt.Errorf("synth: unknown set %d", int(s))
	}
	if index < 0 {
		return Sample{}, fmt.Errorf("synth: negative index %d", index)
	}
	sc := newScene(cfg, s, index)
	out := Sample{Set: s, Index: index, Anomaly: sc.anomaly}
	switch s {
	case SetTestStructural:
		out.Image, out.Mask = sc.renderStructural()
		out.Channels = []*image.Gray{out.Mask}
	case SetTestLogical:
		out.Image, _ = sc.render(false)
		out.Channels = sc.regionMasks()
		out.Mask = unionMask(out.Channels)
	default:
		out.Image, _ = sc.render(false)
	}
	return out, nil
}

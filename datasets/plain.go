package datasets

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Shape is the layout of a dataset folder.
type Shape int

const (
	// MVTecShape is a category of MVTec AD or MVTec LOCO AD: train/good,
	// an optional validation/good and test/ with good/ and anomaly classes.
	MVTecShape Shape = iota
	// PlainShape is a plain folder of good images with an optional
	// validation/ folder of good images and an optional test/ folder with
	// good/ and any number of defect folders.
	PlainShape
)

// PlainDatasetName is the dataset name of every plain folder: its model
// lives in <size>_size/custom/<name> of a model directory.
const PlainDatasetName = "custom"

// PlainExtensions are the (lower-case) file name endings of the images of a
// plain folder and of its validation folder: the formats Decode reads.
var PlainExtensions = []string{".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}

// Need says what a command needs of a dataset.
type Need int

const (
	// NeedTrain asks for training and validation images.
	NeedTrain Need = 1 << iota
	// NeedTest asks for a test set: a good class and an anomaly class.
	NeedTest
)

// MissingError reports a dataset folder that lacks what a command needs.
// Callers tell it apart with errors.As.
type MissingError struct {
	Dir string
	// What is missing, e.g. "a test folder test/ with good/ and at least one defect folder".
	What string
	// For is the work that needs it: "training" or "evaluation".
	For string
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("dataset %s: %s is needed for %s", e.Dir, e.What, e.For)
}

// ErrBadName is returned for a plain folder's name that cannot name a model
// folder.
var ErrBadName = errors.New("invalid model name")

// DetectShape tells a category in the MVTec layout (a train folder) from a
// plain folder.
func DetectShape(dir string) (Shape, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return 0, fmt.Errorf("dataset %s: %w", dir, err)
	}
	if !info.IsDir() {
		return 0, fmt.Errorf("dataset %s: not a folder", dir)
	}
	if info, err := os.Stat(filepath.Join(dir, TrainDir)); err == nil && info.IsDir() {
		return MVTecShape, nil
	}
	return PlainShape, nil
}

// OpenFor opens dir in whichever shape it has, for a command that needs
// what need says. A category in the MVTec layout is opened by Open, as
// strictly as the reference does, and must not be given a name; a plain
// folder by OpenPlain.
func OpenFor(dir string, perm PermFunc, need Need, name string) (*Dataset, error) {
	shape, err := DetectShape(dir)
	if err != nil {
		return nil, err
	}
	if shape == MVTecShape {
		if name != "" {
			return nil, fmt.Errorf("dataset %s: %w %q: the MVTec category is named by its folder and its parent", dir, ErrBadName, name)
		}
		return Open(dir, perm)
	}
	return OpenPlain(dir, perm, need, name)
}

// CheckName checks that name can name a plain folder's model folder: one
// path element, not "." or "..".
func CheckName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || strings.ContainsRune(name, 0) {
		return fmt.Errorf("%w %q: want a single folder name", ErrBadName, name)
	}
	return nil
}

// OpenPlain lists a plain folder of good images:
//   - train: the files of dir whose lower-cased name ends with one of
//     PlainExtensions, sorted by name;
//   - validation: those of dir/validation when it exists, otherwise
//     SplitTrainValid of the train list with perm(len(train)) and
//     ValidSplitRatio, as the reference splits train/good;
//   - test: ImageFolder(dir/test) when dir/test exists.
//
// Category is name, or dir's base name when name is empty, and DatasetName
// is PlainDatasetName. 16-bit greyscale images are scaled to 8 bits. A
// *MissingError names what need asks for and dir lacks.
func OpenPlain(dir string, perm PermFunc, need Need, name string) (*Dataset, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("dataset %s: %w", dir, err)
	}
	if name == "" {
		name = filepath.Base(abs)
	}
	if err := CheckName(name); err != nil {
		return nil, fmt.Errorf("dataset %s: %w", dir, err)
	}
	d := &Dataset{Dir: dir, DatasetName: PlainDatasetName, Category: name, Shape: PlainShape,
		Decode: DecodeOptions{Grey16: Grey16Scale}}
	if need&NeedTrain != 0 {
		if err := d.listPlainTrain(perm); err != nil {
			return nil, err
		}
	}
	testDir := filepath.Join(dir, TestDir)
	if _, err := os.Stat(testDir); err != nil {
		if need&NeedTest != 0 {
			return nil, &MissingError{Dir: dir, What: "a test folder " + TestDir + "/ with " + NormalClass + "/ and at least one defect folder", For: "evaluation"}
		}
		return d, nil
	}
	if d.Classes, d.Test, err = ImageFolder(testDir); err != nil {
		return nil, err
	}
	if !slices.Contains(d.Classes, NormalClass) || len(d.Classes) < 2 {
		if need&NeedTest != 0 {
			return nil, &MissingError{Dir: dir, What: fmt.Sprintf("a %q folder and at least one defect folder in %s (found %s)", NormalClass, testDir, strings.Join(d.Classes, ", ")), For: "evaluation"}
		}
		// Without both kinds of image the test set gives no AUROC.
		d.Classes, d.Test = nil, nil
	}
	return d, nil
}

// listPlainTrain fills the training and validation lists of a plain folder.
func (d *Dataset) listPlainTrain(perm PermFunc) error {
	normal, err := listPlainImages(d.Dir)
	if err != nil {
		return err
	}
	if len(normal) == 0 {
		return &MissingError{Dir: d.Dir, What: "a good image (" + strings.Join(PlainExtensions, ", ") + ") in the folder itself, or a " + TrainDir + "/" + NormalClass + " folder", For: "training"}
	}
	validDir := filepath.Join(d.Dir, ValidationDir)
	if info, err := os.Stat(validDir); err == nil && info.IsDir() {
		d.HasValidationDir, d.Train = true, normal
		if d.Valid, err = listPlainImages(validDir); err != nil {
			return err
		}
		if len(d.Valid) == 0 {
			return &MissingError{Dir: d.Dir, What: "an image in " + validDir, For: "training"}
		}
		return nil
	}
	if perm == nil {
		return fmt.Errorf("dataset %s: no %s folder and no permutation function to split the images", d.Dir, validDir)
	}
	p, err := perm(len(normal))
	if err != nil {
		return fmt.Errorf("dataset %s: permutation of %d images: %w", d.Dir, len(normal), err)
	}
	if d.Train, d.Valid, err = SplitTrainValid(normal, p, ValidSplitRatio); err != nil {
		return fmt.Errorf("dataset %s: %w", d.Dir, err)
	}
	if len(d.Valid) == 0 {
		return &MissingError{Dir: d.Dir, What: fmt.Sprintf("at least %d good images (or a %s folder) to hold %g of them out for validation; found %d",
			int(math.Ceil(1/ValidSplitRatio)), ValidationDir, ValidSplitRatio, len(normal)), For: "training"}
	}
	return nil
}

// listPlainImages returns the regular files (or links to them) of dir whose
// lower-cased name ends with one of PlainExtensions, sorted as Python sorts
// names.
func listPlainImages(dir string) ([]string, error) {
	return listFiles(dir, func(e fs.DirEntry) bool {
		return !isDir(filepath.Join(dir, e.Name()), e) && hasExtension(e.Name(), PlainExtensions)
	})
}

package datasets

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"
)

// ValidSplitRatio is the share of train/good the reference holds out for
// validation when a dataset has no validation/good folder.
const ValidSplitRatio = 0.15

// The folder names of an MVTec-style category.
const (
	// TrainDir, ValidationDir and TestDir are the splits of a category.
	TrainDir      = "train"
	ValidationDir = "validation"
	TestDir       = "test"
	// GroundTruthDir holds the defect masks of the test images, one folder per anomaly class.
	GroundTruthDir = "ground_truth"
	// NormalClass is the class folder of defect-free images (train/good,
	// validation/good, test/good).
	NormalClass = "good"
)

// ImgExtensions are torchvision's IMG_EXTENSIONS: the (lower-case) file name
// endings ImageFolder accepts.
var ImgExtensions = []string{".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}

// PermFunc returns a permutation of 0..n-1. The reference uses
// torch.randperm(n, generator=torch.Generator().manual_seed(42)), which
// datasets/refsplit.Perm reproduces (it needs libtorch, which this package
// does not use).
type PermFunc func(n int) ([]int64, error)

// TestItem is one test image.
type TestItem struct {
	Path      string
	Class     string // name of its class folder
	Label     int    // index of Class in the sorted class list
	Anomalous bool   // Class != NormalClass
}

// Dataset is one category of an MVTec-style dataset, e.g.
// .../mvtec_loco_anomaly_detection/breakfast_box.
type Dataset struct {
	// Dir is the category folder as given to Open.
	Dir string
	// DatasetName is the name of the folder above the category folder and
	// Category the category folder's own name (from the absolute path).
	DatasetName, Category string
	// Train and Valid are the normal images used for training and
	// validation. When HasValidationDir is false, Valid was split off
	// train/good with SplitTrainValid.
	Train, Valid     []string
	HasValidationDir bool
	// Classes are the test class folders in ImageFolder order; Test lists
	// the test images in ImageFolder order.
	Classes []string
	Test    []TestItem
	// Shape is the folder's layout: MVTecShape for Open, PlainShape for
	// OpenPlain (then Test is empty when the folder has no test set).
	Shape Shape
	// Decode is how the images of this dataset are decoded: the default
	// (16-bit greyscale clipped, as the reference) for MVTec folders,
	// 16-bit greyscale scaled for plain folders.
	Decode DecodeOptions
}

// Open lists the images of the category folder dir the way the reference's
// build_dataset does:
//   - train: train/good/*.png (ListNormalImages);
//   - validation: validation/good/*.png when validation/good exists,
//     otherwise SplitTrainValid of the train list with perm(len(train)) and
//     ValidSplitRatio;
//   - test: ImageFolder(test).
//
// It fails with an error naming the path when train or test is missing, the
// train or validation list is empty, or the test folder has no "good" class
// or no anomaly class.
func Open(dir string, perm PermFunc) (*Dataset, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("dataset %s: %w", dir, err)
	}
	d := &Dataset{
		Dir:         dir,
		Category:    filepath.Base(abs),
		DatasetName: filepath.Base(filepath.Dir(abs)),
	}
	trainDir := filepath.Join(dir, TrainDir)
	testDir := filepath.Join(dir, TestDir)
	for _, p := range []string{trainDir, testDir} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("dataset %s must contain `train` and `test` folders: %w", dir, err)
		}
	}

	normal, err := ListNormalImages(filepath.Join(trainDir, NormalClass))
	if err != nil {
		return nil, err
	}
	if len(normal) == 0 {
		return nil, fmt.Errorf("dataset %s: no .png image in %s", dir, filepath.Join(trainDir, NormalClass))
	}
	validDir := filepath.Join(dir, ValidationDir, NormalClass)
	if _, err := os.Stat(validDir); err == nil {
		d.HasValidationDir = true
		d.Train = normal
		if d.Valid, err = ListNormalImages(validDir); err != nil {
			return nil, err
		}
		if len(d.Valid) == 0 {
			return nil, fmt.Errorf("dataset %s: no .png image in %s", dir, validDir)
		}
	} else {
		if perm == nil {
			return nil, fmt.Errorf("dataset %s: %s does not exist and no permutation function was given to split train/good", dir, validDir)
		}
		p, err := perm(len(normal))
		if err != nil {
			return nil, fmt.Errorf("dataset %s: permutation of %d train images: %w", dir, len(normal), err)
		}
		d.Train, d.Valid, err = SplitTrainValid(normal, p, ValidSplitRatio)
		if err != nil {
			return nil, fmt.Errorf("dataset %s: %w", dir, err)
		}
		if len(d.Valid) == 0 {
			return nil, fmt.Errorf("dataset %s: %d train images leave no validation image at ratio %g", dir, len(normal), ValidSplitRatio)
		}
	}

	d.Classes, d.Test, err = ImageFolder(testDir)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(d.Classes, NormalClass) {
		return nil, fmt.Errorf("dataset %s: test folder %s has no %q class", dir, testDir, NormalClass)
	}
	if len(d.Classes) < 2 {
		return nil, fmt.Errorf("dataset %s: test folder %s has no anomaly class (only %q)", dir, testDir, NormalClass)
	}
	return d, nil
}

// ListNormalImages returns the entries of dir whose suffix is exactly ".png"
// (case-sensitive, as pathlib's Path.suffix == ".png"), sorted by name as
// Python sorts strings. Like the reference it does not look at what the
// entries are; a folder named x.png would be listed and fail to decode.
func ListNormalImages(dir string) ([]string, error) {
	return listFiles(dir, func(e fs.DirEntry) bool { return pathSuffix(e.Name()) == ".png" })
}

// listFiles lists the entries of dir that keep accepts, as paths sorted as
// Python sorts their names.
func listFiles(dir string, keep func(fs.DirEntry) bool) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if keep(e) {
			names = append(names, e.Name())
		}
	}
	slices.SortFunc(names, pyCompare)
	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = filepath.Join(dir, n)
	}
	return paths, nil
}

// pathSuffix is pathlib's PurePath.suffix of a file name.
func pathSuffix(name string) string {
	i := strings.LastIndexByte(name, '.')
	if 0 < i && i < len(name)-1 {
		return name[i:]
	}
	return ""
}

// SplitTrainValid splits paths with a permutation perm of 0..len(paths)-1 as
// the reference's split_dataset does: nValid = int(len(paths)*ratio), train
// is paths[perm[i]] for the first len(paths)-nValid positions of perm and
// valid the rest, both in permutation order.
func SplitTrainValid(paths []string, perm []int64, ratio float64) (train, valid []string, err error) {
	n := len(paths)
	if len(perm) != n {
		return nil, nil, fmt.Errorf("split: permutation has %d entries for %d images", len(perm), n)
	}
	seen := make([]bool, n)
	for _, p := range perm {
		if p < 0 || p >= int64(n) || seen[p] {
			return nil, nil, fmt.Errorf("split: %v is not a permutation of 0..%d", perm, n-1)
		}
		seen[p] = true
	}
	nTrain := n - int(float64(n)*ratio)
	train = make([]string, 0, nTrain)
	valid = make([]string, 0, n-nTrain)
	for i, p := range perm {
		if i < nTrain {
			train = append(train, paths[p])
		} else {
			valid = append(valid, paths[p])
		}
	}
	return train, valid, nil
}

// ImageFolder lists root the way torchvision 0.14's
// datasets.ImageFolder(root) does: the classes are the sub-folders of root
// (symbolic links followed) sorted as Python sorts strings, and each class
// contributes, in order, the files found by sorted(os.walk(class_dir,
// followlinks=True)) (folders ordered by their path string, files by name
// within a folder) whose lower-cased name ends with one of ImgExtensions.
//
// As in torchvision, it is an error for root to have no class folder or for a
// class folder to hold no image. Unlike os.walk, a symbolic-link cycle is
// reported as an error instead of being followed until paths get too long.
func ImageFolder(root string) (classes []string, items []TestItem, err error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, nil, fmt.Errorf("image folder %s: %w", root, err)
	}
	for _, e := range entries {
		if isDir(filepath.Join(root, e.Name()), e) {
			classes = append(classes, e.Name())
		}
	}
	if len(classes) == 0 {
		return nil, nil, fmt.Errorf("image folder %s: no class folder found", root)
	}
	slices.SortFunc(classes, pyCompare)
	var empty []string
	for label, class := range classes {
		files, err := walkImages(filepath.Join(root, class))
		if err != nil {
			return nil, nil, fmt.Errorf("image folder %s: %w", root, err)
		}
		if len(files) == 0 {
			empty = append(empty, filepath.Join(root, class))
		}
		for _, f := range files {
			items = append(items, TestItem{Path: f, Class: class, Label: label, Anomalous: class != NormalClass})
		}
	}
	if len(empty) > 0 {
		return nil, nil, fmt.Errorf("image folder %s: found no valid file (extensions %s) in class folder(s) %s",
			root, strings.Join(ImgExtensions, ", "), strings.Join(empty, ", "))
	}
	return classes, items, nil
}

// isDir reports whether the entry at path is a folder, following symbolic
// links like os.DirEntry.is_dir() in Python.
func isDir(path string, e fs.DirEntry) bool {
	if e.Type()&fs.ModeSymlink == 0 {
		return e.IsDir()
	}
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// walkImages returns the image files under top in sorted(os.walk(top,
// followlinks=True)) order.
func walkImages(top string) ([]string, error) {
	type walked struct {
		key   string // path relative to top, "" for top, "/a/b" below
		dir   string
		files []string
	}
	var all []walked
	// Folders on the current descent path, by identity, to detect cycles.
	var stack []os.FileInfo
	var visit func(dir, key string) error
	visit = func(dir, key string) error {
		fi, err := os.Stat(dir)
		if err != nil {
			return nil // os.walk ignores folders it cannot read
		}
		for _, s := range stack {
			if os.SameFile(s, fi) {
				return fmt.Errorf("symbolic link cycle at %s", dir)
			}
		}
		entries, err := os.ReadDir(dir)
		if err != nil && len(entries) == 0 {
			return nil
		}
		w := walked{key: key, dir: dir}
		var subdirs []string
		for _, e := range entries {
			if isDir(filepath.Join(dir, e.Name()), e) {
				subdirs = append(subdirs, e.Name())
			} else if hasImageExtension(e.Name()) {
				w.files = append(w.files, e.Name())
			}
		}
		all = append(all, w)
		stack = append(stack, fi)
		defer func() { stack = stack[:len(stack)-1] }()
		for _, s := range subdirs {
			if err := visit(filepath.Join(dir, s), key+"/"+s); err != nil {
				return err
			}
		}
		return nil
	}
	if err := visit(top, ""); err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(a, b walked) int { return pyCompare(a.key, b.key) })
	var out []string
	for _, w := range all {
		slices.SortFunc(w.files, pyCompare)
		for _, f := range w.files {
			out = append(out, filepath.Join(w.dir, f))
		}
	}
	return out, nil
}

// hasImageExtension reports whether name.lower() ends with one of
// ImgExtensions.
func hasImageExtension(name string) bool { return hasExtension(name, ImgExtensions) }

// hasExtension reports whether name.lower() ends with one of exts
// (lower-case). Only ASCII letters matter: no other character lower-cases to
// one of the extensions' letters in Python.
func hasExtension(name string, exts []string) bool {
	for _, ext := range exts {
		if len(name) < len(ext) {
			continue
		}
		tail := name[len(name)-len(ext):]
		ok := true
		for i := 0; i < len(ext); i++ {
			c := tail[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != ext[i] {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// pyCompare orders file names as Python 3 orders str values decoded from the
// file system: by code point, with each byte that is not valid UTF-8 standing
// for the surrogate U+DC80..U+DCFF (the surrogateescape error handler).
func pyCompare(a, b string) int {
	for len(a) > 0 && len(b) > 0 {
		ra, na := pyRune(a)
		rb, nb := pyRune(b)
		if ra != rb {
			if ra < rb {
				return -1
			}
			return 1
		}
		a, b = a[na:], b[nb:]
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

func pyRune(s string) (rune, int) {
	if s[0] < utf8.RuneSelf {
		return rune(s[0]), 1
	}
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && n == 1 {
		return 0xDC00 + rune(s[0]), 1
	}
	return r, n
}

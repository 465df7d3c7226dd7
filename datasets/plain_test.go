package datasets

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func reversePerm(n int) ([]int64, error) {
	p := make([]int64, n)
	for i := range p {
		p[i] = int64(n - 1 - i)
	}
	return p, nil
}

// TestOpenPlainEveryFormat makes a plain folder of the decoding fixtures
// (PNG, JPEG, BMP and TIFF written with Pillow, some with upper-case
// extensions), opens it and decodes every image the way the dataset says:
// each exact fixture equals Pillow's, 16-bit greyscale scaled.
func TestOpenPlainEveryFormat(t *testing.T) {
	f := loadFixtures(t)
	dir := filepath.Join(t.TempDir(), "line")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var want []string
	exts := map[string]bool{}
	for _, c := range f.Decode {
		data, err := os.ReadFile(testdata(c.File))
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(c.File)
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		want = append(want, filepath.Join(dir, name))
		exts[filepath.Ext(name)] = true
	}
	writeFiles(t, dir, "notes.txt", "thumbs.webp", "sub/x.png")
	for _, e := range []string{".png", ".jpg", ".bmp", ".BMP", ".tif", ".TIFF"} {
		if !exts[e] {
			t.Fatalf("no fixture ends in %s", e)
		}
	}
	d, err := OpenPlain(dir, reversePerm, NeedTrain, "")
	if err != nil {
		t.Fatal(err)
	}
	if d.DatasetName != PlainDatasetName || d.Category != "line" || d.Shape != PlainShape || d.Test != nil {
		t.Fatalf("dataset %q/%q shape %d, %d test images", d.DatasetName, d.Category, d.Shape, len(d.Test))
	}
	got := append(slices.Clone(d.Train), d.Valid...)
	slices.Sort(got)
	slices.Sort(want)
	checkList(t, "images", got, want)
	scaled := map[string]string{}
	for _, c := range scaledCases(t) {
		scaled[c.File] = c.Expect
	}
	for _, c := range f.Decode {
		expect := c.Expect
		if s, ok := scaled[c.File]; ok {
			expect = s
		} else if !c.Exact {
			continue
		}
		img, err := d.Decode.DecodeFile(filepath.Join(dir, filepath.Base(c.File)))
		if err != nil {
			t.Errorf("%s: %v", c.File, err)
			continue
		}
		if n, m := byteDiff(img.Pix, readGz(t, expect)); n != 0 {
			t.Errorf("%s: %d bytes differ from the expectation, max diff %d", c.File, n, m)
		}
	}
}

// TestOpenPlainSplit checks that a plain folder without validation/ is split
// like train/good of an MVTec category, and that validation/ is used when
// present.
func TestOpenPlainSplit(t *testing.T) {
	sp := loadFixtures(t).MVTec.Split
	dir := filepath.Join(t.TempDir(), "line")
	writeFiles(t, dir, sp.Names...)
	perm := func(n int) ([]int64, error) { return sp.Perm, nil }
	d, err := OpenPlain(dir, perm, NeedTrain, "bolts")
	if err != nil {
		t.Fatal(err)
	}
	if d.Category != "bolts" || d.HasValidationDir {
		t.Errorf("category %q, HasValidationDir %v", d.Category, d.HasValidationDir)
	}
	prefixed := func(names []string) []string {
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = "train/good/" + filepath.Base(n)
		}
		return out
	}
	checkList(t, "train", prefixed(d.Train), sp.Train)
	checkList(t, "valid", prefixed(d.Valid), sp.Valid)

	writeFiles(t, dir, "validation/v1.PNG", "validation/v0.jpeg")
	if d, err = OpenPlain(dir, nil, NeedTrain, ""); err != nil {
		t.Fatal(err)
	}
	if !d.HasValidationDir || len(d.Train) != len(sp.Names) {
		t.Errorf("HasValidationDir %v, %d train images", d.HasValidationDir, len(d.Train))
	}
	checkList(t, "valid", relAll(t, dir, d.Valid), []string{"validation/v0.jpeg", "validation/v1.PNG"})
}

// TestOpenForNeeds checks what each kind of command is told is missing.
func TestOpenForNeeds(t *testing.T) {
	root := t.TempDir()
	line := filepath.Join(root, "line")
	writeFiles(t, line, "a.png", "b.png", "c.png", "d.png", "e.png", "f.png", "g.png")
	if _, err := OpenFor(line, reversePerm, NeedTrain, ""); err != nil {
		t.Fatalf("train: %v", err)
	}
	var me *MissingError
	if _, err := OpenFor(line, reversePerm, NeedTrain|NeedTest, ""); !errors.As(err, &me) || me.For != "evaluation" || !strings.Contains(err.Error(), "test/") {
		t.Errorf("eval without a test folder: %v", err)
	}
	writeFiles(t, line, "test/good/a.png")
	if _, err := OpenFor(line, reversePerm, NeedTrain|NeedTest, ""); !errors.As(err, &me) || !strings.Contains(err.Error(), "defect folder") {
		t.Errorf("eval with only good test images: %v", err)
	}
	d, err := OpenFor(line, reversePerm, NeedTrain, "")
	if err != nil || d.Test != nil {
		t.Errorf("train with only good test images: %v, %d test images", err, len(d.Test))
	}
	writeFiles(t, line, "test/scratch/a.bmp")
	if d, err = OpenFor(line, reversePerm, NeedTrain|NeedTest, ""); err != nil || len(d.Test) != 2 || len(d.Classes) != 2 {
		t.Errorf("eval: %v", err)
	}

	empty := filepath.Join(root, "empty")
	writeFiles(t, empty, "readme.txt")
	if _, err := OpenFor(empty, reversePerm, NeedTrain, ""); !errors.As(err, &me) || me.For != "training" {
		t.Errorf("empty folder: %v", err)
	}
	few := filepath.Join(root, "few")
	writeFiles(t, few, "a.png", "b.png")
	if _, err := OpenFor(few, reversePerm, NeedTrain, ""); !errors.As(err, &me) || !strings.Contains(err.Error(), "at least 7") {
		t.Errorf("two images: %v", err)
	}
	for _, name := range []string{"..", "a/b", "."} {
		if _, err := OpenFor(line, reversePerm, NeedTrain, name); !errors.Is(err, ErrBadName) {
			t.Errorf("name %q: %v", name, err)
		}
	}

	cat := filepath.Join(root, "ds", "cat")
	writeFiles(t, cat, "train/good/a.png", "validation/good/b.png", "test/good/c.png", "test/bad/d.png")
	d, err = OpenFor(cat, nil, NeedTrain|NeedTest, "")
	if err != nil || d.Shape != MVTecShape || d.DatasetName != "ds" || d.Decode != (DecodeOptions{}) {
		t.Errorf("MVTec category: %v %+v", err, d)
	}
	if _, err := OpenFor(cat, nil, NeedTrain, "x"); !errors.Is(err, ErrBadName) {
		t.Errorf("MVTec category with a name: %v", err)
	}
}

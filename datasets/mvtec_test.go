package datasets

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// buildTree creates the fixture MVTec tree under a temporary folder and
// returns the category folder.
func buildTree(t *testing.T) string {
	t.Helper()
	f := loadFixtures(t)
	cat := filepath.Join(t.TempDir(), f.MVTec.DatasetName, f.MVTec.Category)
	for _, e := range f.MVTec.Entries {
		p := filepath.Join(cat, filepath.FromSlash(e.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch e.Kind {
		case "file":
			err = os.WriteFile(p, nil, 0o644)
		case "dir":
			err = os.MkdirAll(p, 0o755)
		case "symlink":
			err = os.Symlink(filepath.FromSlash(e.Target), p)
		default:
			t.Fatalf("unknown entry kind %q", e.Kind)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return cat
}

func relAll(t *testing.T, base string, paths []string) []string {
	t.Helper()
	out := make([]string, len(paths))
	for i, p := range paths {
		r, err := filepath.Rel(base, p)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = filepath.ToSlash(r)
	}
	return out
}

func checkList(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}

// TestOpenMatchesReference compares the listing with what the reference
// (pathlib listing and torchvision ImageFolder) produced on the same tree.
func TestOpenMatchesReference(t *testing.T) {
	f := loadFixtures(t)
	cat := buildTree(t)
	d, err := Open(cat, func(int) ([]int64, error) { return nil, errors.New("must not split") })
	if err != nil {
		t.Fatal(err)
	}
	if d.DatasetName != f.MVTec.DatasetName || d.Category != f.MVTec.Category {
		t.Errorf("name %q / %q, want %q / %q", d.DatasetName, d.Category, f.MVTec.DatasetName, f.MVTec.Category)
	}
	if !d.HasValidationDir {
		t.Error("HasValidationDir is false")
	}
	checkList(t, "train", relAll(t, cat, d.Train), f.MVTec.Train)
	checkList(t, "valid", relAll(t, cat, d.Valid), f.MVTec.Valid)
	checkList(t, "classes", d.Classes, f.MVTec.Classes)

	if len(d.Test) != len(f.MVTec.Test) {
		t.Fatalf("%d test items, ImageFolder has %d", len(d.Test), len(f.MVTec.Test))
	}
	for i, it := range d.Test {
		wantPath := f.MVTec.Test[i][0].(string)
		wantLabel := int(f.MVTec.Test[i][1].(float64))
		got := relAll(t, cat, []string{it.Path})[0]
		if got != wantPath || it.Label != wantLabel {
			t.Errorf("test[%d] = %s (%d), ImageFolder %s (%d)", i, got, it.Label, wantPath, wantLabel)
		}
		if it.Class != d.Classes[it.Label] || it.Anomalous != (it.Class != "good") {
			t.Errorf("test[%d] = %+v inconsistent with classes %q", i, it, d.Classes)
		}
	}
}

func TestOpenSplitsTrain(t *testing.T) {
	f := loadFixtures(t)
	sp := f.MVTec.Split
	cat := filepath.Join(t.TempDir(), "ds", "cat")
	for _, p := range []string{"train/good", "test/good", "test/bad"} {
		if err := os.MkdirAll(filepath.Join(cat, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Create the files in reverse to make sure the listing sorts.
	for i := len(sp.Names) - 1; i >= 0; i-- {
		if err := os.WriteFile(filepath.Join(cat, "train/good", sp.Names[i]), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"test/good/a.png", "test/bad/b.png"} {
		if err := os.WriteFile(filepath.Join(cat, p), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var asked int
	d, err := Open(cat, func(n int) ([]int64, error) { asked = n; return sp.Perm, nil })
	if err != nil {
		t.Fatal(err)
	}
	if asked != 20 {
		t.Errorf("permutation asked for n=%d, want 20", asked)
	}
	if d.HasValidationDir {
		t.Error("HasValidationDir is true")
	}
	checkList(t, "train", relAll(t, cat, d.Train), sp.Train)
	checkList(t, "valid", relAll(t, cat, d.Valid), sp.Valid)
	if d.DatasetName != "ds" || d.Category != "cat" {
		t.Errorf("name %q / %q", d.DatasetName, d.Category)
	}
}

func TestSplitTrainValid(t *testing.T) {
	paths := make([]string, 20)
	for i := range paths {
		paths[i] = string(rune('a' + i))
	}
	// torch.randperm(20) with a generator seeded 42.
	perm := []int64{2, 14, 18, 15, 1, 10, 0, 4, 6, 11, 8, 3, 7, 17, 13, 12, 19, 5, 16, 9}
	train, valid, err := SplitTrainValid(paths, perm, ValidSplitRatio)
	if err != nil {
		t.Fatal(err)
	}
	// n_valid = int(20*0.15) = 3: the last three positions of perm.
	checkList(t, "train", train, []string{"c", "o", "s", "p", "b", "k", "a", "e", "g", "l", "i", "d", "h", "r", "n", "m", "t"})
	checkList(t, "valid", valid, []string{"f", "q", "j"})

	tests := []struct {
		n, nValid int
	}{{1, 0}, {6, 0}, {7, 1}, {13, 1}, {14, 2}, {100, 15}, {351, 52}}
	for _, tc := range tests {
		p := make([]int64, tc.n)
		for i := range p {
			p[i] = int64(tc.n - 1 - i)
		}
		tr, va, err := SplitTrainValid(make([]string, tc.n), p, ValidSplitRatio)
		if err != nil || len(va) != tc.nValid || len(tr) != tc.n-tc.nValid {
			t.Errorf("n=%d: %d train, %d valid, %v; want %d valid", tc.n, len(tr), len(va), err, tc.nValid)
		}
	}
	for _, bad := range [][]int64{{0, 1}, {0, 1, 1}, {0, 1, 3}, {-1, 0, 1}} {
		if _, _, err := SplitTrainValid([]string{"a", "b", "c"}, bad, ValidSplitRatio); err == nil {
			t.Errorf("perm %v accepted", bad)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	mk := func(t *testing.T, files ...string) string {
		cat := filepath.Join(t.TempDir(), "ds", "cat")
		for _, f := range files {
			p := filepath.Join(cat, f)
			if strings.HasSuffix(f, "/") {
				if err := os.MkdirAll(p, 0o755); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return cat
	}
	ok := []string{"train/good/a.png", "validation/good/v.png", "test/good/g.png", "test/bad/b.png"}
	identity := func(n int) ([]int64, error) {
		p := make([]int64, n)
		for i := range p {
			p[i] = int64(i)
		}
		return p, nil
	}
	tests := []struct {
		name  string
		files []string
		want  string // substring of the error; the path is checked too
	}{
		{"no train", []string{"test/good/g.png", "test/bad/b.png"}, "must contain `train` and `test`"},
		{"no test", []string{"train/good/a.png"}, "must contain `train` and `test`"},
		{"empty train", []string{"train/good/A.PNG", "validation/good/v.png", "test/good/g.png", "test/bad/b.png"}, "no .png image in"},
		{"no train/good", []string{"train/", "test/good/g.png", "test/bad/b.png"}, "list "},
		{"empty validation", []string{"train/good/a.png", "validation/good/", "test/good/g.png", "test/bad/b.png"}, "no .png image in"},
		{"split leaves no validation", []string{"train/good/a.png", "test/good/g.png", "test/bad/b.png"}, "leave no validation image"},
		{"no anomaly class", []string{"train/good/a.png", "validation/good/v.png", "test/good/g.png"}, "no anomaly class"},
		{"no good class", []string{"train/good/a.png", "validation/good/v.png", "test/bad/b.png", "test/worse/w.png"}, `no "good" class`},
		{"no class", []string{"train/good/a.png", "validation/good/v.png", "test/x.png"}, "no class folder"},
		{"empty class", []string{"train/good/a.png", "validation/good/v.png", "test/good/g.png", "test/bad/b.txt", "test/worse/"}, "found no valid file"},
		{"ok", ok, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cat := mk(t, tc.files...)
			_, err := Open(cat, identity)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), cat) {
				t.Errorf("error %q does not say %q about %s", err, tc.want, cat)
			}
		})
	}
	t.Run("empty classes named", func(t *testing.T) {
		cat := mk(t, "test/good/g.png", "test/bad/b.txt", "test/worse/")
		_, _, err := ImageFolder(filepath.Join(cat, "test"))
		if err == nil || !strings.Contains(err.Error(), filepath.Join(cat, "test", "bad")) ||
			!strings.Contains(err.Error(), filepath.Join(cat, "test", "worse")) {
			t.Errorf("error %v does not name both empty class folders", err)
		}
	})
	t.Run("symlink cycle", func(t *testing.T) {
		cat := mk(t, "test/good/g.png")
		if err := os.Symlink("..", filepath.Join(cat, "test/good/loop")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ImageFolder(filepath.Join(cat, "test")); err == nil || !strings.Contains(err.Error(), "cycle") {
			t.Errorf("error %v, want a cycle error", err)
		}
	})
}

func TestPyCompare(t *testing.T) {
	// Each list is in Python's sorted() order.
	lists := [][]string{
		{"", "0", "00", "1", "10", "2", "A", "B", "Z", "_", "a", "b", "z"},
		{"a b", "a-b", "a.png", "a/b", "a0", "aB", "ab"},
		{"z", "\u00e9", "\u00ff", "\u0100", "\u20ac", "\ud7ff", "\ue000", "\U0001f600"},
		// Undecodable bytes sort as U+DC80..U+DCFF: after U+D7FF, before U+E000.
		{"\u00ff", "\ud7ff", "\xff", "\ue000"},
	}
	for _, l := range lists {
		for i := range l {
			for j := range l {
				got := pyCompare(l[i], l[j])
				want := 0
				if i < j {
					want = -1
				} else if i > j {
					want = 1
				}
				if got != want {
					t.Errorf("pyCompare(%q, %q) = %d, want %d", l[i], l[j], got, want)
				}
			}
		}
	}
}

func TestHasImageExtension(t *testing.T) {
	for name, want := range map[string]bool{
		"a.png": true, "a.PNG": true, "a.JpEg": true, ".png": true, "x.tiff": true, "x.tif": true,
		"a.webp": true, "a.gif": false, "png": false, "a.png.bak": false, "a.pn": false, "a.\u0130ng": false,
	} {
		if got := hasImageExtension(name); got != want {
			t.Errorf("hasImageExtension(%q) = %v", name, got)
		}
	}
}

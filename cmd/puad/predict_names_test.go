package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/puad-go/puad/evaluate"
)

// touch creates empty files under dir and returns their paths.
func touch(t *testing.T, dir string, names ...string) []string {
	t.Helper()
	var paths []string
	for _, n := range names {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// TestUniqueNames: heatmap names are unique, in input order, and a renamed
// input never takes a name another input has of its own.
func TestUniqueNames(t *testing.T) {
	ins := []predictInput{{name: "good_001"}, {name: "good_001"}, {name: "good_001_2"}, {name: "good_001"}, {name: "good_002"}}
	uniqueNames(ins)
	var got []string
	for _, in := range ins {
		got = append(got, in.name)
	}
	want := []string{"good_001", "good_001_3", "good_001_2", "good_001_4", "good_002"}
	if !slices.Equal(got, want) {
		t.Errorf("names %q, want %q", got, want)
	}
}

// TestListInputsNames: images of the same folder name and stem under
// different parents, or with different extensions, get distinct heatmap
// names.
func TestListInputsNames(t *testing.T) {
	dir := t.TempDir()
	paths := touch(t, dir, "a/good/001.png", "b/good/001.png", "c/good/001.png", "c/good/001.jpg", "c/good/001_2.png")
	ins, errs := listInputs(paths)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	seen := map[string]string{}
	for _, in := range ins {
		if prev, ok := seen[in.name]; ok {
			t.Errorf("%s and %s both named %s", prev, in.path, in.name)
		}
		seen[in.name] = in.path
	}
}

// TestMapCollisions: anomaly maps that would land on one file are refused
// before anything is loaded, naming both inputs; distinct maps and the same
// file given twice pass.
func TestMapCollisions(t *testing.T) {
	dir := t.TempDir()
	paths := touch(t, dir, "a/good/001.png", "b/good/001.png", "a/good/002.png", "a/good/002.jpg", "a/crack/001.png")
	for _, c := range []struct {
		inputs  []string
		clashes bool
	}{
		{[]string{paths[0], paths[1]}, true},            // same folder name and stem, other parents
		{[]string{paths[2], paths[3]}, true},            // same stem, other extensions
		{[]string{paths[0], paths[2], paths[4]}, false}, // distinct
		{[]string{paths[0], paths[0]}, false},           // one file twice
		{[]string{filepath.Join(dir, "a")}, true},       // a folder holding both 002s
	} {
		ins, _ := listInputs(c.inputs)
		err := checkMapNames("maps", ins)
		var ce *evaluate.MapCollisionError
		if got := errors.As(err, &ce); got != c.clashes {
			t.Errorf("%v: error %v, want a collision %v", c.inputs, err, c.clashes)
			continue
		}
		if ce != nil && (!strings.Contains(err.Error(), ce.First) || !strings.Contains(err.Error(), ce.Second) || ce.First == ce.Second) {
			t.Errorf("error does not name both inputs: %v", err)
		}
	}
	// runPredict refuses before it loads the model (there is none here).
	ps := predictSettings{ModelDir: filepath.Join(dir, "no-model"), CategoryDir: "bottle", Inputs: paths[:2],
		Size: "s", Device: "cpu", MapsDir: filepath.Join(dir, "maps")}
	var ce *evaluate.MapCollisionError
	if _, err := runPredict(context.Background(), ps, io.Discard, io.Discard); !errors.As(err, &ce) {
		t.Errorf("runPredict: %v, want the collision", err)
	} else {
		t.Log(err)
	}
	if _, err := os.Stat(ps.MapsDir); !os.IsNotExist(err) {
		t.Errorf("the maps folder was created: %v", err)
	}
	// Without --maps the same inputs pass the check.
	ps.MapsDir = ""
	ins, _ := listInputs(ps.Inputs)
	if err := checkOutputNames(ps, ins); err != nil {
		t.Errorf("without maps: %v", err)
	}
}

// TestHeatmapsAndMasksOneFolder: heatmaps and masks share their names, so
// one folder for both is refused.
func TestHeatmapsAndMasksOneFolder(t *testing.T) {
	dir := t.TempDir()
	ps := predictSettings{HeatmapDir: dir, MaskDir: dir + string(filepath.Separator) + "."}
	if err := checkOutputNames(ps, nil); err == nil {
		t.Error("one folder for heatmaps and masks passed")
	}
	ps.MaskDir = filepath.Join(dir, "masks")
	if err := checkOutputNames(ps, nil); err != nil {
		t.Error(err)
	}
}

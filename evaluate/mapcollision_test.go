package evaluate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/puad-go/puad/datasets"
)

// CheckMapPaths finds two images whose maps would be one file: the same
// class folder and stem under different parents, or the same stem with
// different extensions; one file listed twice, and different classes or
// stems, pass.
func TestCheckMapPaths(t *testing.T) {
	type img struct{ class, path string }
	for _, c := range []struct {
		imgs    []img
		clashes bool
	}{
		{[]img{{"good", "a/good/001.png"}, {"good", "b/good/001.png"}}, true},
		{[]img{{"good", "a/good/001.png"}, {"good", "a/good/001.jpg"}}, true},
		{[]img{{"good", "a/good/001.png"}, {"crack", "a/crack/001.png"}, {"good", "a/good/002.png"}}, false},
		{[]img{{"good", "a/good/001.png"}, {"good", "a/good/001.png"}}, false},
	} {
		err := CheckMapPaths("maps", "cat", len(c.imgs), func(i int) (string, string) { return c.imgs[i].class, c.imgs[i].path })
		var ce *MapCollisionError
		if errors.As(err, &ce) != c.clashes {
			t.Errorf("%v: %v", c.imgs, err)
			continue
		}
		if ce != nil && (ce.First != c.imgs[0].path || ce.Second != c.imgs[1].path ||
			ce.File != filepath.Join("maps", "cat", "test", "good", "001.tiff") || !strings.Contains(err.Error(), ce.Second)) {
			t.Errorf("collision %+v: %v", ce, err)
		}
	}
}

// Evaluate refuses a test set whose maps would overwrite each other before
// it does anything (no model is needed to get the error), and writes nothing.
func TestEvaluateRefusesMapCollisions(t *testing.T) {
	dir := t.TempDir()
	ds := &datasets.Dataset{Category: "plain", Dir: dir, Test: []datasets.TestItem{
		{Path: filepath.Join(dir, "test", "good", "001.png"), Class: "good"},
		{Path: filepath.Join(dir, "test", "good", "001.jpg"), Class: "good"},
	}}
	maps := filepath.Join(dir, "maps")
	var ce *MapCollisionError
	if _, err := Evaluate(context.Background(), ds, nil, Options{MapsDir: maps}); !errors.As(err, &ce) {
		t.Fatalf("Evaluate: %v, want a *MapCollisionError", err)
	}
	if _, err := os.Stat(maps); !os.IsNotExist(err) {
		t.Errorf("maps folder: %v", err)
	}
}

package models

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/puad-go/puad/internal/pyref"
	tb "github.com/puad-go/puad/torchbind"
)

// TestLoadTeacherLayouts loads the teachers gen_teachers.py writes in every
// published layout: each is recognised, and all of a size compute the same
// output, bit for bit, which is PyTorch's.
func TestLoadTeacherLayouts(t *testing.T) {
	dir := t.TempDir()
	pyref.Run(t, "testdata/gen_teachers.py", dir)
	layouts := map[string]TeacherLayout{"reference": ReferenceLayout, "anomalib": ReferenceLayout, "sequential": SequentialLayout}
	for _, size := range []Size{Small, Medium} {
		x, err := tb.LoadTensor(filepath.Join(dir, fmt.Sprintf("teacher_%s_in.pt", size)))
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		want, err := tb.LoadTensor(filepath.Join(dir, fmt.Sprintf("teacher_%s_out.pt", size)))
		if err != nil {
			t.Fatal(err)
		}
		defer want.Close()
		var first []float32
		for _, name := range []string{"reference", "anomalib", "sequential"} {
			path := filepath.Join(dir, fmt.Sprintf("teacher_%s_%s.pth", size, name))
			pdn, layout, err := LoadTeacher(path, size, tb.CPU)
			if err != nil {
				t.Fatalf("%s %s: %v", size, name, err)
			}
			if layout != layouts[name] {
				t.Errorf("%s %s: layout %s, want %s", size, name, layout, layouts[name])
			}
			y, err := pdn.Forward(x)
			Close(pdn)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxRelDiff(t, y, want); d > 1e-5 {
				t.Errorf("%s %s: max relative difference to PyTorch %g", size, name, d)
			}
			got, err := y.Float32s()
			y.Close()
			if err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first = got
			} else if !slices.Equal(got, first) {
				t.Errorf("%s %s: output differs from the reference layout's", size, name)
			}
		}
	}
}

// TestLoadTeacherErrors checks that a teacher of the other size, and a file
// of another network, are refused with the expected and found keys.
func TestLoadTeacherErrors(t *testing.T) {
	dir := t.TempDir()
	pyref.Run(t, "testdata/gen_teachers.py", dir)
	for _, c := range []struct {
		file   string
		size   Size
		reason string
	}{
		{"teacher_m_reference.pth", Small, "unknown key names"},
		{"teacher_m_sequential.pth", Small, "unknown key names"},
	} {
		_, _, err := LoadTeacher(filepath.Join(dir, c.file), c.size, tb.CPU)
		var ke *TeacherKeyError
		if !errors.As(err, &ke) {
			t.Fatalf("%s as %s: %v, want a *TeacherKeyError", c.file, c.size, err)
		}
		msg := err.Error()
		for _, s := range []string{c.reason, "conv4.bias[384]", "found", "[0 3 6 8]"} {
			if !strings.Contains(msg, s) {
				t.Errorf("%s: error %q does not mention %q", c.file, msg, s)
			}
		}
		if len(ke.Found) != 12 || len(ke.Expected) != 8 {
			t.Errorf("%s: %d found and %d expected keys, want 12 and 8", c.file, len(ke.Found), len(ke.Expected))
		}
	}
	// A state dict with the reference's names but other shapes.
	sd := tb.NewStateDict()
	ref, _ := NewPDN(Small, TeacherChannels, false)
	for _, p := range ref.NamedParams() {
		shape := slices.Clone(p.Shape)
		shape[0]++
		z, err := tb.Zeros(shape, tb.Float32, tb.CPU)
		if err != nil {
			t.Fatal(err)
		}
		sd.Set(p.Name, z)
	}
	path := filepath.Join(dir, "bad.pt")
	err := tb.SaveStateDict(path, sd)
	sd.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = LoadTeacher(path, Small, tb.CPU)
	var ke *TeacherKeyError
	if !errors.As(err, &ke) || !strings.Contains(err.Error(), "expected shape [128 3 4 4], found [129 3 4 4]") {
		t.Errorf("wrong shapes: %v", err)
	}
}

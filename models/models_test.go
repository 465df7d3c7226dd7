package models

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/puad-go/puad/internal/pyref"
	tb "github.com/puad-go/puad/torchbind"
)

func maxRelDiff(t *testing.T, got, want *tb.Tensor) float64 {
	t.Helper()
	g, err := got.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	w, err := want.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	if len(g) != len(w) {
		t.Fatalf("%d values, want %d", len(g), len(w))
	}
	var maxAbs, maxDiff float64
	for i := range w {
		maxAbs = math.Max(maxAbs, math.Abs(float64(w[i])))
		maxDiff = math.Max(maxDiff, math.Abs(float64(g[i])-float64(w[i])))
	}
	return maxDiff / maxAbs
}

// TestForwardMatchesPyTorch loads state dicts saved by PyTorch into the Go
// networks and compares their outputs with PyTorch's on the same inputs.
func TestForwardMatchesPyTorch(t *testing.T) {
	dir := t.TempDir()
	pyref.Run(t, "testdata/gen_outputs.py", dir)
	cases := []struct {
		name  string
		build func() (Module, func(*tb.Tensor) (*tb.Tensor, error))
	}{
		{"pdn_s", func() (Module, func(*tb.Tensor) (*tb.Tensor, error)) {
			n, _ := NewPDN(Small, 384, false)
			return n, n.Forward
		}},
		{"pdn_s_pad", func() (Module, func(*tb.Tensor) (*tb.Tensor, error)) {
			n, _ := NewPDN(Small, 384, true)
			return n, n.Forward
		}},
		{"pdn_m", func() (Module, func(*tb.Tensor) (*tb.Tensor, error)) {
			n, _ := NewPDN(Medium, 768, false)
			return n, n.Forward
		}},
		{"pdn_m_pad", func() (Module, func(*tb.Tensor) (*tb.Tensor, error)) {
			n, _ := NewPDN(Medium, 384, true)
			return n, n.Forward
		}},
		{"ae_256", func() (Module, func(*tb.Tensor) (*tb.Tensor, error)) {
			a := NewAutoEncoder(384, 256, false)
			return a, a.Forward
		}},
		{"ae_128", func() (Module, func(*tb.Tensor) (*tb.Tensor, error)) {
			a := NewAutoEncoder(384, 128, false)
			return a, a.Forward
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, forward := c.build()
			defer Close(m)
			sd, err := tb.LoadStateDict(filepath.Join(dir, c.name+".pt"))
			if err != nil {
				t.Fatal(err)
			}
			defer sd.Close()
			if err := LoadStateDict(m, sd, tb.CPU, c.name+".pt"); err != nil {
				t.Fatal(err)
			}
			x, err := tb.LoadTensor(filepath.Join(dir, c.name+"_in.pt"))
			if err != nil {
				t.Fatal(err)
			}
			defer x.Close()
			want, err := tb.LoadTensor(filepath.Join(dir, c.name+"_out.pt"))
			if err != nil {
				t.Fatal(err)
			}
			defer want.Close()
			var got *tb.Tensor
			if err := tb.NoGrad(func() error {
				var err error
				got, err = forward(x)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			if g, w := got.Shape(), want.Shape(); !slices.Equal(g, w) {
				t.Fatalf("output shape %v, want %v", g, w)
			}
			d := maxRelDiff(t, got, want)
			t.Logf("max |diff| / max |out| = %.2e", d)
			if d > 1e-4 {
				t.Errorf("output differs from PyTorch by %.2e (relative)", d)
			}
		})
	}
}

// TestLoadStateDictErrors checks that loading the wrong weights names the
// file, the key and both shapes.
func TestLoadStateDictErrors(t *testing.T) {
	small, _ := NewPDN(Small, 384, false)
	medium, _ := NewPDN(Medium, 384, false)
	g, err := tb.NewGenerator(1, tb.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := InitDefault(small, g, tb.CPU); err != nil {
		t.Fatal(err)
	}
	defer Close(small)
	sd, err := StateDict(small)
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	err = LoadStateDict(medium, sd, tb.CPU, "teacher.pt")
	if err == nil {
		t.Fatal("loading S weights into an M network succeeded")
	}
	for _, part := range []string{"teacher.pt", "conv1.weight", "[256 3 4 4]", "[128 3 4 4]"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not mention %s", err, part)
		}
	}
	student, _ := NewPDN(Small, 768, false)
	err = LoadStateDict(student, sd, tb.CPU, "student.pt")
	if err == nil || !strings.Contains(err.Error(), "conv4.weight") {
		t.Errorf("loading a teacher into a student: %v", err)
	}
	ae := NewAutoEncoder(384, 256, false)
	if err := LoadStateDict(ae, sd, tb.CPU, "autoencoder.pt"); err == nil || !strings.Contains(err.Error(), "unexpected keys") {
		t.Errorf("loading a PDN into the autoencoder: %v", err)
	}
}

func TestLoadEfficientADMissingFiles(t *testing.T) {
	_, err := LoadEfficientAD(t.TempDir(), Small, "mvtec_loco_anomaly_detection", "breakfast_box", 256, tb.CPU)
	if err == nil {
		t.Fatal("loading from an empty directory succeeded")
	}
	for _, part := range []string{"s_size/teacher/teacher.pt", "breakfast_box/student.pt", "quantile.pt"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error does not name %s: %v", part, err)
		}
	}
}

// TestShapeError checks that weights of another shape are a *ShapeError:
// an autoencoder built for 128-pixel images differs from one for 256 in a
// kernel (spatial), a PDN_S teacher from a PDN_M one in channels.
func TestShapeError(t *testing.T) {
	g, err := tb.NewGenerator(2, tb.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	small := NewAutoEncoder(TeacherChannels, 128, false)
	if err := InitDefault(small, g, tb.CPU); err != nil {
		t.Fatal(err)
	}
	defer Close(small)
	sd, err := StateDict(small)
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	large := NewAutoEncoder(TeacherChannels, 256, false)
	defer Close(large) // the layers loaded before the mismatch
	err = LoadStateDict(large, sd, tb.CPU, AutoEncoderFile)
	var se *ShapeError
	if !errors.As(fmt.Errorf("load: %w", err), &se) {
		t.Fatalf("autoencoder of another image size: %v, want a *ShapeError", err)
	}
	if se.File != AutoEncoderFile || se.Key != "encoder.enconv6.weight" || !se.Spatial() ||
		fmt.Sprint(se.Want) != "[64 64 8 8]" || fmt.Sprint(se.Got) != "[64 64 4 4]" {
		t.Errorf("shape error %+v, spatial %v", se, se.Spatial())
	}

	teacherS, _ := NewPDN(Small, TeacherChannels, false)
	if err := InitDefault(teacherS, g, tb.CPU); err != nil {
		t.Fatal(err)
	}
	defer Close(teacherS)
	tsd, err := StateDict(teacherS)
	if err != nil {
		t.Fatal(err)
	}
	defer tsd.Close()
	teacherM, _ := NewPDN(Medium, TeacherChannels, false)
	defer Close(teacherM)
	if err := LoadStateDict(teacherM, tsd, tb.CPU, TeacherFile); !errors.As(err, &se) || se.Spatial() {
		t.Errorf("teacher of another size: %v, want a channel *ShapeError", err)
	}
}

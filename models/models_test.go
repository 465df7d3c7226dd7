package models

import (
	"math"
	"path/filepath"
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
			if g, w := got.Shape(), want.Shape(); !sameShape(g, w) {
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

package defectmask

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// TestNew checks the rule of a mask (defect above the threshold, not at
// it), its size and the refusal of a map of another size.
func TestNew(t *testing.T) {
	amap := []float32{0.5, 0.6, 0.4, 0.5000001, -1, 0.5}
	m, err := New(amap, 3, 2, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	want := []uint8{Background, Defect, Background, Defect, Background, Background}
	if !bytes.Equal(m.Pix, want) || m.Bounds().Dx() != 3 || m.Bounds().Dy() != 2 {
		t.Errorf("mask %v (%v), want %v", m.Pix, m.Bounds(), want)
	}
	if _, err := New(amap, 4, 2, 0.5); err == nil {
		t.Error("6 values accepted for 4×2 pixels")
	}
}

// TestWriteFile writes a mask into a folder that does not exist yet and
// reads it back, and checks the layout of Path.
func TestWriteFile(t *testing.T) {
	m, err := New([]float32{1, 0, 0, 1}, 2, 2, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := Path(dir, "tray", "logical_anomalies", "/data/tray/test/logical_anomalies/007.png")
	if want := filepath.Join(dir, "tray", "test", "logical_anomalies", "007.png"); path != want {
		t.Errorf("path %s, want %s", path, want)
	}
	if err := WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	back, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []uint32{0xffff, 0, 0, 0xffff} {
		if r, _, _, _ := back.At(i%2, i/2).RGBA(); r != want {
			t.Errorf("pixel %d: %#x, want %#x", i, r, want)
		}
	}
}

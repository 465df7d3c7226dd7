package datasets

import (
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeGrey(t *testing.T, path string, w, h int, v uint8) {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		if i%3 == 0 {
			img.Pix[i] = v
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

// gtDataset is a category with one good and two anomalous test images of
// class "crack", without ground truth yet.
func gtDataset(t *testing.T) *Dataset {
	dir := t.TempDir()
	d := &Dataset{Dir: dir}
	for _, p := range []struct {
		class, name string
	}{{"crack", "000.png"}, {"crack", "001.png"}, {"good", "000.png"}} {
		d.Test = append(d.Test, TestItem{Path: filepath.Join(dir, "test", p.class, p.name), Class: p.class, Anomalous: p.class != NormalClass})
	}
	return d
}

func TestGroundTruthLayouts(t *testing.T) {
	d := gtDataset(t)
	if l, err := d.GroundTruthLayout(); l != NoGroundTruth || err != nil {
		t.Fatalf("without ground_truth: %v, %v", l, err)
	}
	gt := filepath.Join(d.Dir, GroundTruthDir)
	if err := os.MkdirAll(gt, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := d.GroundTruthLayout(); err == nil || !strings.Contains(err.Error(), gt) {
		t.Errorf("empty ground_truth: error %v, want one naming %s", err, gt)
	}

	writeGrey(t, filepath.Join(gt, "crack", "000_mask.png"), 6, 4, 255)
	l, err := d.GroundTruthLayout()
	if l != MVTecADMasks || err != nil {
		t.Fatalf("MVTec AD masks: %v, %v", l, err)
	}
	files, err := d.MaskFiles(d.Test[0], l)
	if err != nil || len(files) != 1 || filepath.Base(files[0]) != "000_mask.png" {
		t.Errorf("mask files %v, %v", files, err)
	}
	if files, err := d.MaskFiles(d.Test[2], l); files != nil || err != nil {
		t.Errorf("good image: %v, %v", files, err)
	}
	_, err = d.MaskFiles(d.Test[1], l)
	var me *MissingMaskError
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "001_mask.png") || !strings.Contains(err.Error(), d.Test[1].Path) {
		t.Errorf("missing mask: %v", err)
	}
	ms, err := LoadMasks(files, 6, 4)
	if err != nil || len(ms) != 1 || ms[0].Pix[0] != 255 || ms[0].Pix[1] != 0 {
		t.Errorf("masks %+v, %v", ms, err)
	}
	var se *MaskSizeError
	if _, err := LoadMasks(files, 4, 6); !errors.As(err, &se) || !strings.Contains(err.Error(), files[0]) {
		t.Errorf("wrong size: %v", err)
	}
	if w, h, err := ImageSize(files[0]); w != 6 || h != 4 || err != nil {
		t.Errorf("ImageSize = %d×%d, %v", w, h, err)
	}

	// LOCO: a folder per image, channels in name order, values kept.
	d = gtDataset(t)
	gt = filepath.Join(d.Dir, GroundTruthDir)
	writeGrey(t, filepath.Join(gt, "crack", "000", "001.png"), 6, 4, 9)
	writeGrey(t, filepath.Join(gt, "crack", "000", "000.png"), 6, 4, 7)
	if l, err = d.GroundTruthLayout(); l != LOCOChannels || err != nil {
		t.Fatalf("LOCO channels: %v, %v", l, err)
	}
	files, err = d.MaskFiles(d.Test[0], l)
	if err != nil || len(files) != 2 || filepath.Base(files[0]) != "000.png" {
		t.Fatalf("channel files %v, %v", files, err)
	}
	ms, err = LoadMasks(files, 6, 4)
	if err != nil || ms[0].Pix[0] != 7 || ms[1].Pix[0] != 9 {
		t.Errorf("channel values %v", err)
	}
	if _, err := d.MaskFiles(d.Test[1], l); !errors.As(err, &me) {
		t.Errorf("missing channel folder: %v", err)
	}
}

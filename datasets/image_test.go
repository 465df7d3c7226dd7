package datasets

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDecodeMatchesPillow(t *testing.T) {
	f := loadFixtures(t)
	n := 0
	for _, c := range f.Decode {
		if !c.Exact {
			continue
		}
		n++
		t.Run(filepath.Base(c.File), func(t *testing.T) {
			img, err := DecodeFile(testdata(c.File))
			if err != nil {
				t.Fatal(err)
			}
			if img.W != c.W || img.H != c.H {
				t.Fatalf("size %dx%d, Pillow %dx%d", img.W, img.H, c.W, c.H)
			}
			want := readGz(t, c.Expect)
			if d, m := byteDiff(img.Pix, want); d != 0 {
				t.Errorf("%s (Pillow mode %s): %d of %d bytes differ from Pillow's convert(\"RGB\"), max diff %d",
					c.File, c.PillowMode, d, len(want), m)
			}
		})
	}
	if n < 50 {
		t.Fatalf("only %d exact fixtures", n)
	}
}

// TestDecodeGrey16Clips pins down what Pillow 9.4 does with 16-bit greyscale
// PNGs: mode "I", and convert("RGB") saturates at 255 instead of keeping the
// high byte (grey16.png has values 0, 1, 254, 255, 256, 300, 65535, 255 first).
func TestDecodeGrey16Clips(t *testing.T) {
	img, err := DecodeFile(testdata("decode/grey16.png"))
	if err != nil {
		t.Fatal(err)
	}
	want := []uint8{0, 1, 254, 255, 255, 255, 255, 255}
	for x, w := range want {
		r, g, b := img.At(x, 0)
		if r != w || g != w || b != w {
			t.Errorf("pixel %d = (%d,%d,%d), want %d in every channel", x, r, g, b, w)
		}
	}
}

// TestDecodeJPEG measures how far Go's JPEG decoding is from Pillow's
// (libjpeg-turbo). The differences come from the IDCT; chroma upsampling and
// colour conversion follow libjpeg.
func TestDecodeJPEG(t *testing.T) {
	f := loadFixtures(t)
	n := 0
	for _, c := range f.Decode {
		if c.Exact {
			continue
		}
		n++
		t.Run(filepath.Base(c.File), func(t *testing.T) {
			img, err := DecodeFile(testdata(c.File))
			if err != nil {
				t.Fatal(err)
			}
			if img.W != c.W || img.H != c.H {
				t.Fatalf("size %dx%d, Pillow %dx%d", img.W, img.H, c.W, c.H)
			}
			want := readGz(t, c.Expect)
			d, m := byteDiff(img.Pix, want)
			share := float64(d) / float64(len(want))
			t.Logf("%s (Pillow mode %s): %d of %d bytes differ (%.2f%%), max diff %d",
				c.File, c.PillowMode, d, len(want), 100*share, m)
			if m > jpegMaxDiff || share > jpegMaxShare {
				t.Errorf("%s: %d bytes differ (%.2f%%), max diff %d; tolerance is max %d, %.0f%% of the bytes",
					c.File, d, 100*share, m, jpegMaxDiff, 100*jpegMaxShare)
			}
		})
	}
	if n == 0 {
		t.Fatal("no JPEG fixture")
	}
}

// Tolerances of TestDecodeJPEG.
const (
	jpegMaxDiff  = 3
	jpegMaxShare = 0.05
)

func TestDecodeErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "not_an_image.png")
	if err := os.WriteFile(bad, []byte("GIF89a....."), 0o644); err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.png")
	data, err := os.ReadFile(testdata("decode/pil_rgb.png"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(truncated, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		is   error
	}{
		{bad, ErrUnsupportedFormat},
		{truncated, nil},
		{filepath.Join(dir, "missing.png"), os.ErrNotExist},
	}
	for _, tc := range tests {
		_, err := DecodeFile(tc.path)
		if err == nil {
			t.Errorf("%s: no error", tc.path)
			continue
		}
		if !strings.HasPrefix(err.Error(), "decode "+tc.path+": ") {
			t.Errorf("error %q does not name the file", err)
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("error %q is not %v", err, tc.is)
		}
	}
}

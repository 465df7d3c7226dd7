package datasets

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestMeanStdMatchTorch(t *testing.T) {
	f := loadFixtures(t)
	for c := 0; c < 3; c++ {
		if got := math.Float32bits(ImageNetMean[c]); got != f.Tensor.MeanBits[c] {
			t.Errorf("mean[%d] bits %#x, torch %#x", c, got, f.Tensor.MeanBits[c])
		}
		if got := math.Float32bits(ImageNetStd[c]); got != f.Tensor.StdBits[c] {
			t.Errorf("std[%d] bits %#x, torch %#x", c, got, f.Tensor.StdBits[c])
		}
	}
}

// TestToTensorAndNormalizeEveryByte proves ToTensor and Normalize bit-exact
// for every possible input: all 256 byte values in each channel.
func TestToTensorAndNormalizeEveryByte(t *testing.T) {
	f := loadFixtures(t)
	img := NewRGB(256, 1)
	for b := 0; b < 256; b++ {
		img.Pix[3*b], img.Pix[3*b+1], img.Pix[3*b+2] = uint8(b), uint8(b), uint8(b)
	}
	unit := ToTensor(img)
	norm := append([]float32(nil), unit...)
	Normalize(norm, ImageNetMean, ImageNetStd)
	fused := ToNormalizedTensor(img)
	for c := 0; c < 3; c++ {
		for b := 0; b < 256; b++ {
			i := c*256 + b
			if got := math.Float32bits(unit[i]); got != f.Tensor.ToTensorBits[b] {
				t.Fatalf("ToTensor(%d) = %v, torch %v", b, unit[i], math.Float32frombits(f.Tensor.ToTensorBits[b]))
			}
			want := f.Tensor.NormalizeBits[c][b]
			if got := math.Float32bits(norm[i]); got != want {
				t.Fatalf("Normalize channel %d byte %d = %v, torch %v", c, b, norm[i], math.Float32frombits(want))
			}
			if got := math.Float32bits(fused[i]); got != want {
				t.Fatalf("ToNormalizedTensor channel %d byte %d = %v, torch %v", c, b, fused[i], math.Float32frombits(want))
			}
		}
	}
}

func TestToTensorLayout(t *testing.T) {
	img := NewRGB(2, 2)
	copy(img.Pix, []uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})
	got := ToTensor(img)
	// CHW: all R values first, in row-major order.
	order := []uint8{0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11}
	for i, b := range order {
		if got[i] != float32(b)/255 {
			t.Fatalf("element %d = %v, want %d/255", i, got[i], b)
		}
	}
}

// TestLoadImageMatchesTorchvision runs the whole evaluation transform
// (Image.open/convert, Resize, ToTensor, Normalize) against torchvision.
func TestLoadImageMatchesTorchvision(t *testing.T) {
	f := loadFixtures(t)
	for _, c := range f.Tensor.Pipelines {
		t.Run(fmt.Sprintf("%s_%d", c.Src, c.Size), func(t *testing.T) {
			got, err := LoadImage(testdata(c.Src), c.Size)
			if err != nil {
				t.Fatal(err)
			}
			want := readFloat32Gz(t, c.Expect)
			if len(got) != len(want) || len(got) != 3*c.Size*c.Size {
				t.Fatalf("length %d, torchvision %d", len(got), len(want))
			}
			var bad, exact int
			var maxRel, maxAbs float64
			for i := range got {
				if got[i] == want[i] {
					exact++
					continue
				}
				abs := math.Abs(float64(got[i]) - float64(want[i]))
				maxAbs = math.Max(maxAbs, abs)
				rel := abs / math.Max(math.Abs(float64(want[i])), 1e-6)
				maxRel = math.Max(maxRel, rel)
				if rel > 1e-6 {
					bad++
				}
			}
			if c.ExactDecode {
				if bad != 0 || exact != len(want) {
					t.Errorf("%d of %d values differ (%d beyond 1e-6 relative, max %.3g)", len(want)-exact, len(want), bad, maxRel)
				}
			} else {
				// JPEG: decoding is close, not exact; the tensor then differs
				// by a few multiples of 1/(255·std).
				t.Logf("JPEG pipeline: %d of %d values identical, max absolute difference %.3g", exact, len(want), maxAbs)
				if exact < len(want)*9/10 {
					t.Errorf("only %d of %d values identical", exact, len(want))
				}
			}
		})
	}
	unnorm, err := LoadImageUnnormalized(testdata(f.Tensor.Pipelines[0].Src), 64)
	if err != nil {
		t.Fatal(err)
	}
	Normalize(unnorm, ImageNetMean, ImageNetStd)
	want := readFloat32Gz(t, f.Tensor.Pipelines[0].Expect)
	for i := range want {
		if unnorm[i] != want[i] {
			t.Fatalf("LoadImageUnnormalized+Normalize differs at %d: %v vs %v", i, unnorm[i], want[i])
		}
	}
}

func TestLoadImageErrors(t *testing.T) {
	if _, err := LoadImage("testdata/nope.png", 64); err == nil || !strings.Contains(err.Error(), "testdata/nope.png") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := LoadImage(testdata("resize/src_1x1.png"), 0); err == nil || !strings.Contains(err.Error(), "src_1x1.png") {
		t.Errorf("size 0: %v", err)
	}
}

package datasets

import (
	"fmt"
	"hash/crc32"
	"math/rand"
	"testing"
)

func TestResizeMatchesPillow(t *testing.T) {
	f := loadFixtures(t)
	saw256 := false
	for _, c := range f.Resize {
		t.Run(fmt.Sprintf("%s_to_%dx%d", c.Src, c.W, c.H), func(t *testing.T) {
			src, err := DecodeFile(testdata(c.Src))
			if err != nil {
				t.Fatal(err)
			}
			got := Resize(src, c.W, c.H)
			if got.W != c.W || got.H != c.H || len(got.Pix) != 3*c.W*c.H {
				t.Fatalf("got %dx%d with %d bytes", got.W, got.H, len(got.Pix))
			}
			want := src.Pix
			if c.Expect != nil {
				want = readGz(t, *c.Expect)
			}
			if d, m := byteDiff(got.Pix, want); d != 0 {
				t.Errorf("%d of %d bytes differ from Pillow, max diff %d", d, len(want), m)
			}
		})
		saw256 = saw256 || (c.W == 256 && c.H == 256)
	}
	if !saw256 {
		t.Error("no 256x256 case in the fixtures")
	}
}

// synthetic returns the formula image of gen_fixtures.py's synthetic_rgb.
func synthetic(w, h int) RGB {
	img := NewRGB(w, h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				v := ((x * (3 + c)) ^ (y * (5 - c))) + ((x * y) >> 9)
				img.Pix[3*(y*w+x)+c] = uint8(v & 255)
			}
		}
	}
	return img
}

// TestResizeTypicalSizes checks full-size inputs (MVTec LOCO 1600x1100,
// MVTec AD 800x800 / 1024x1024 / 900x900, ImageNet-like 500x375) against
// Pillow through a CRC-32 of every output row.
func TestResizeTypicalSizes(t *testing.T) {
	f := loadFixtures(t)
	if len(f.ResizeSynthetic) == 0 {
		t.Fatal("no synthetic cases")
	}
	for _, c := range f.ResizeSynthetic {
		got := Resize(synthetic(c.W, c.H), c.OutW, c.OutH)
		bad := 0
		for y := 0; y < c.OutH; y++ {
			if crc32.ChecksumIEEE(got.Pix[3*y*c.OutW:3*(y+1)*c.OutW]) != c.RowCRC32[y] {
				bad++
			}
		}
		if bad != 0 {
			t.Errorf("%dx%d to %dx%d: %d of %d rows differ from Pillow", c.W, c.H, c.OutW, c.OutH, bad, c.OutH)
		}
	}
}

func TestResizeSameSizeCopies(t *testing.T) {
	src := NewRGB(4, 3)
	src.Pix[0] = 7
	out := Resize(src, 4, 3)
	out.Pix[0] = 9
	if src.Pix[0] != 7 {
		t.Fatal("Resize to the same size returned the source buffer")
	}
}

// TestResizeConstant checks a property that holds for Pillow too: a
// constant image stays constant at any size.
func TestResizeConstant(t *testing.T) {
	for _, sz := range [][4]int{{300, 217, 256, 256}, {97, 131, 256, 256}, {1600, 1100, 256, 256}, {5, 5, 1, 1}, {2, 9, 13, 1}} {
		src := NewRGB(sz[0], sz[1])
		for i := range src.Pix {
			src.Pix[i] = uint8(i%3*100 + 37)
		}
		out := Resize(src, sz[2], sz[3])
		for i, v := range out.Pix {
			if v != uint8(i%3*100+37) {
				t.Fatalf("%v: byte %d = %d", sz, i, v)
			}
		}
	}
}

func TestResizeCoeffsSum(t *testing.T) {
	for _, p := range [][2]int{{300, 256}, {217, 256}, {1600, 256}, {900, 256}, {3, 64}, {512, 33}} {
		c := newResampleCoeffs(p[0], p[1])
		for i := range c.start {
			var s int64
			for _, k := range c.k[i*c.ksize : i*c.ksize+c.n[i]] {
				s += int64(k)
			}
			if d := s - 1<<precisionBits; d < -int64(c.n[i]) || d > int64(c.n[i]) {
				t.Fatalf("%v: output %d: coefficients sum to %d", p, i, s)
			}
			if c.start[i] < 0 || c.start[i]+c.n[i] > p[0] {
				t.Fatalf("%v: output %d: window [%d,%d) outside the input", p, i, c.start[i], c.start[i]+c.n[i])
			}
		}
	}
}

func randomRGB(w, h int, seed int64) RGB {
	img := NewRGB(w, h)
	r := rand.New(rand.NewSource(seed))
	r.Read(img.Pix)
	return img
}

func BenchmarkResize(b *testing.B) {
	for _, sz := range [][2]int{{1024, 1024}, {900, 900}, {1600, 1100}, {800, 800}} {
		img := randomRGB(sz[0], sz[1], 1)
		b.Run(fmt.Sprintf("%dx%d_to_256x256", sz[0], sz[1]), func(b *testing.B) {
			b.SetBytes(int64(len(img.Pix)))
			for b.Loop() {
				Resize(img, 256, 256)
			}
		})
	}
}

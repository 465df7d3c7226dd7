package datasets

import (
	"encoding/binary"
	"encoding/json"
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

// scaledCases lists the 16-bit greyscale fixtures with what numpy gives for
// round(v·255/65535) (fixtures.json's expect_scaled).
func scaledCases(t *testing.T) []struct{ File, Expect string } {
	t.Helper()
	data, err := os.ReadFile(testdata("fixtures.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Decode []struct {
			File   string `json:"file"`
			Scaled string `json:"expect_scaled"`
		} `json:"decode"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	var out []struct{ File, Expect string }
	for _, c := range f.Decode {
		if c.Scaled != "" {
			out = append(out, struct{ File, Expect string }{c.File, c.Scaled})
		}
	}
	return out
}

func TestDecodeGrey16Scale(t *testing.T) {
	cases := scaledCases(t)
	if len(cases) < 5 {
		t.Fatalf("only %d 16-bit greyscale fixtures", len(cases))
	}
	for _, c := range cases {
		img, err := DecodeOptions{Grey16: Grey16Scale}.DecodeFile(testdata(c.File))
		if err != nil {
			t.Fatal(err)
		}
		want := readGz(t, c.Expect)
		if d, m := byteDiff(img.Pix, want); d != 0 || len(want) != len(img.Pix) {
			t.Errorf("%s: %d of %d bytes differ from numpy's rounding, max diff %d", c.File, d, len(want), m)
		}
	}
	table := readGz(t, "decode/grey16_scale_table.gz")
	for v := 0; v < 1<<16; v++ {
		if got := Grey16Scale.to8(uint8(v>>8), uint8(v)); got != table[v] {
			t.Fatalf("Grey16Scale(%d) = %d, numpy %d", v, got, table[v])
		}
	}
}

// TestDecodeErrorClasses checks that decoder failures come out as
// ErrUnsupportedFeature or ErrCorruptImage, without Go package prefixes.
func TestDecodeErrorClasses(t *testing.T) {
	read := func(name string) []byte {
		data, err := os.ReadFile(testdata(name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	patch := func(data []byte, off int, b ...byte) []byte {
		out := append([]byte(nil), data...)
		copy(out[off:], b)
		return out
	}
	png := read("decode/pil_rgb.png")
	bmpData := read("decode/bmp_rgb24.bmp")
	tif := read("decode/tiff_rgb8.tif")
	tests := []struct {
		name string
		data []byte
		is   error
	}{
		{"truncated PNG", png[:len(png)/2], ErrCorruptImage},
		{"PNG without IHDR", png[:12], ErrCorruptImage},
		{"bad PNG checksum", patch(png, len(png)-20, 0xde, 0xad), ErrCorruptImage},
		{"truncated JPEG", read("decode/jpeg_420.jpg")[:300], ErrCorruptImage},
		{"RLE BMP", patch(bmpData, 30, 1), ErrUnsupportedFeature},
		{"truncated BMP", bmpData[:200], ErrCorruptImage},
		{"JPEG-compressed TIFF", setTIFFTag(t, tif, tiffTagCompression, 7), ErrUnsupportedFeature},
		{"planar TIFF", setTIFFTag(t, tif, tiffTagPlanarConfig, 2), ErrUnsupportedFeature},
		{"truncated TIFF", tif[:len(tif)-100], ErrCorruptImage},
		{"GIF", []byte("GIF89a....."), ErrUnsupportedFormat},
		{"empty", nil, ErrUnsupportedFormat},
	}
	for _, tc := range tests {
		_, err := Decode(tc.data)
		if !errors.Is(err, tc.is) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.is)
			continue
		}
		for _, bad := range []string{"png:", "bmp:", "tiff:", "zlib:", "flate:", "unexpected EOF", "invalid JPEG format"} {
			if strings.Contains(err.Error(), bad) {
				t.Errorf("%s: error %q contains %q", tc.name, err, bad)
			}
		}
		t.Logf("%s: %v", tc.name, err)
	}
}

// setTIFFTag returns a copy of a little-endian TIFF whose first IFD has
// its entry for tag set to the SHORT value v.
func setTIFFTag(t *testing.T, data []byte, tag uint16, v uint16) []byte {
	t.Helper()
	out := append([]byte(nil), data...)
	off := int(binary.LittleEndian.Uint32(out[4:]))
	n := int(binary.LittleEndian.Uint16(out[off:]))
	for i := 0; i < n; i++ {
		e := out[off+2+12*i:]
		if binary.LittleEndian.Uint16(e) == tag {
			binary.LittleEndian.PutUint16(e[2:], 3)
			binary.LittleEndian.PutUint32(e[4:], 1)
			binary.LittleEndian.PutUint32(e[8:], uint32(v))
			return out
		}
	}
	t.Fatalf("tag %d not in the fixture", tag)
	return nil
}

func TestCheckTIFFLayout(t *testing.T) {
	tests := []struct {
		tags map[uint16]uint32
		ok   bool
	}{
		{map[uint16]uint32{tiffTagPlanarConfig: 2, tiffTagSamples: 3}, false},
		{map[uint16]uint32{tiffTagPlanarConfig: 2, tiffTagSamples: 1}, true},
		{map[uint16]uint32{tiffTagFillOrder: 2, tiffTagCompression: 1}, false},
		{map[uint16]uint32{tiffTagFillOrder: 2, tiffTagCompression: 5}, false},
		{map[uint16]uint32{tiffTagFillOrder: 2, tiffTagCompression: 4}, true},
		{map[uint16]uint32{tiffTagPhotometric: 3, tiffTagBitsPerSample: 16}, false},
		{map[uint16]uint32{tiffTagPhotometric: 3, tiffTagBitsPerSample: 8}, true},
		{map[uint16]uint32{}, true},
		{map[uint16]uint32{tiffTagTileWidth: 1024, tiffTagTileLength: 16}, true},
		{map[uint16]uint32{tiffTagTileWidth: 1040, tiffTagTileLength: 16}, false},
		{map[uint16]uint32{tiffTagTileWidth: 16, tiffTagTileLength: 1 << 31}, false},
	}
	for _, tc := range tests {
		err := checkTIFFLayout(tc.tags, 100, 100)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrUnsupportedFeature)) {
			t.Errorf("%v: %v", tc.tags, err)
		}
	}
}

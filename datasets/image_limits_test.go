package datasets

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// pngHeader returns a PNG signature and IHDR for a w×h 8-bit image of the
// given colour type.
func pngHeader(w, h uint32, colorType byte) []byte {
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, colorType
	return pngChunk(append([]byte(nil), pngSignature...), "IHDR", ihdr)
}

// pngChunk appends a chunk with its length and CRC to p.
func pngChunk(p []byte, typ string, body []byte) []byte {
	p = binary.BigEndian.AppendUint32(p, uint32(len(body)))
	start := len(p)
	p = append(p, typ...)
	p = append(p, body...)
	return binary.BigEndian.AppendUint32(p, crc32.ChecksumIEEE(p[start:]))
}

// bombPNG is a 74-byte PNG whose IHDR claims 60000×60000 RGB pixels.
func bombPNG(t testing.TB) []byte {
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.NoCompression)
	zw.Write([]byte{0})
	zw.Close()
	p := pngHeader(60000, 60000, 2)
	p = pngChunk(p, "IDAT", z.Bytes())
	p = pngChunk(p, "IEND", nil)
	if len(p) != 74 {
		t.Fatalf("bomb PNG has %d bytes, want 74", len(p))
	}
	return p
}

func TestDecodeRefusesBombBeforeAllocating(t *testing.T) {
	data := bombPNG(t)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Decode(data)
	runtime.ReadMemStats(&after)
	var big *ImageTooLargeError
	if !errors.As(err, &big) {
		t.Fatalf("error %v, want *ImageTooLargeError", err)
	}
	if big.Width != 60000 || big.Height != 60000 || big.Limit != 178_956_970 {
		t.Errorf("error fields %+v", *big)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("refusing the bomb allocated %d bytes", n)
	}
	path := filepath.Join(t.TempDir(), "bomb.png")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = DecodeFile(path)
	if !errors.As(err, &big) || big.Path != path {
		t.Fatalf("DecodeFile error %v does not carry the path", err)
	}
	want := "decode " + path + ": image of 60000x60000 = 3600000000 pixels is over the limit of 178956970 pixels"
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

// TestDecodeRefusesLargePNG: a 20000×20000 greyscale PNG of a few hundred
// kilobytes (400 million pixels, about 0.5 s to build) is over the default
// limit.
func TestDecodeRefusesLargePNG(t *testing.T) {
	const side = 20000
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestSpeed)
	row := make([]byte, 1+side)
	for y := 0; y < side; y++ {
		zw.Write(row)
	}
	zw.Close()
	data := pngChunk(pngChunk(pngHeader(side, side, 0), "IDAT", z.Bytes()), "IEND", nil)
	t.Logf("%d×%d PNG of %d bytes", side, side, len(data))
	var big *ImageTooLargeError
	if _, err := Decode(data); !errors.As(err, &big) {
		t.Fatalf("error %v, want *ImageTooLargeError", err)
	}
}

// TestDecodePixelLimitEveryFormat checks that every format's header is
// read and checked against the limit, from the option and from the
// package variable, and that a negative option disables the check.
func TestDecodePixelLimitEveryFormat(t *testing.T) {
	files := []string{"decode/pil_rgb.png", "decode/jpeg_420.jpg", "decode/bmp_rgb24.bmp", "decode/tiff_rgb8_lzw.TIF"}
	for _, name := range files {
		var big *ImageTooLargeError
		_, err := DecodeOptions{MaxPixels: 100}.DecodeFile(testdata(name))
		if !errors.As(err, &big) || big.Limit != 100 || big.Width*big.Height <= 100 {
			t.Errorf("%s: error %v, want *ImageTooLargeError with limit 100", name, err)
		}
	}
	defer func(v int64) { MaxImagePixels = v }(MaxImagePixels)
	MaxImagePixels = 100
	for _, name := range files {
		var big *ImageTooLargeError
		if _, err := DecodeFile(testdata(name)); !errors.As(err, &big) {
			t.Errorf("%s: error %v with MaxImagePixels = 100", name, err)
		}
		if _, err := (DecodeOptions{MaxPixels: -1}).DecodeFile(testdata(name)); err != nil {
			t.Errorf("%s: %v without a limit", name, err)
		}
	}
}

func TestCheckPixels(t *testing.T) {
	const limit = 178_956_970
	tests := []struct {
		w, h    int
		refused bool
	}{
		{limit, 1, false}, // Pillow refuses only more than the limit
		{1, limit, false},
		{limit + 1, 1, true},
		{13377, 13377, false}, // 178,944,129 pixels
		{13377, 13378, true},  // 178,957,506 pixels
		{1<<32 - 1, 1<<32 - 1, true},
		{0, 1 << 40, false},
	}
	for _, tc := range tests {
		err := checkPixels(tc.w, tc.h, limit)
		if (err != nil) != tc.refused {
			t.Errorf("checkPixels(%d, %d) = %v, refused %v", tc.w, tc.h, err, tc.refused)
		}
	}
	if err := checkPixels(1<<32-1, 1<<32-1, 0); err != nil {
		t.Errorf("no limit: %v", err)
	}
}

package datasets

import (
	"bytes"
	"image"
	"image/png"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// BenchmarkDecode1024 decodes a 1024×1024 RGB image (a smooth pattern with
// some texture) in each format.
func BenchmarkDecode1024(b *testing.B) {
	const side = 1024
	src := image.NewNRGBA(image.Rect(0, 0, side, side))
	for y := 0; y < side; y++ {
		for x := 0; x < side; x++ {
			i := src.PixOffset(x, y)
			src.Pix[i], src.Pix[i+1], src.Pix[i+2], src.Pix[i+3] = uint8(x), uint8(y), uint8(x*y>>7), 255
		}
	}
	encoders := []struct {
		name string
		enc  func(*bytes.Buffer) error
	}{
		{"BMP", func(w *bytes.Buffer) error { return bmp.Encode(w, src) }},
		{"TIFF", func(w *bytes.Buffer) error { return tiff.Encode(w, src, nil) }},
		{"TIFF-Deflate", func(w *bytes.Buffer) error {
			return tiff.Encode(w, src, &tiff.Options{Compression: tiff.Deflate})
		}},
		{"PNG", func(w *bytes.Buffer) error { return png.Encode(w, src) }},
	}
	for _, e := range encoders {
		var buf bytes.Buffer
		if err := e.enc(&buf); err != nil {
			b.Fatal(err)
		}
		data := buf.Bytes()
		b.Run(e.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				if _, err := Decode(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package datasets

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"testing"
)

// TestFromImageMatchesDecode checks that an image in memory converts as
// the PNG file of the same image decodes.
func TestFromImageMatchesDecode(t *testing.T) {
	rect := image.Rect(0, 0, 5, 4)
	nrgba := image.NewNRGBA(rect)
	gray := image.NewGray(rect)
	pal := image.NewPaletted(rect, color.Palette{color.RGBA{1, 2, 3, 255}, color.RGBA{200, 100, 50, 255}})
	for i := range nrgba.Pix {
		nrgba.Pix[i] = uint8(37 * i)
	}
	for i := range gray.Pix {
		gray.Pix[i] = uint8(11 * i)
		pal.Pix[i] = uint8(i % 2)
	}
	// Translucent RGBA pixels would be rounded differently by Go's PNG
	// encoder (Decode and FromImage both truncate as Pillow does), so this
	// one is opaque.
	rgba := image.NewRGBA(rect)
	for y := range 4 {
		for x := range 5 {
			c := nrgba.NRGBAAt(x, y)
			rgba.Set(x, y, color.RGBA{c.R, c.G, c.B, 255})
		}
	}
	for name, img := range map[string]image.Image{"nrgba": nrgba, "rgba": rgba, "gray": gray, "paletted": pal} {
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		want, err := Decode(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		got := FromImage(img)
		if got.W != want.W || got.H != want.H || !bytes.Equal(got.Pix, want.Pix) {
			t.Errorf("%s: FromImage %v, Decode of its PNG %v", name, got.Pix[:12], want.Pix[:12])
		}
	}
}

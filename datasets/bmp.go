package datasets

import (
	"bytes"
	"image"

	"golang.org/x/image/bmp"
)

// bmpSize returns the dimensions the BMP headers announce.
func bmpSize(data []byte) (w, h int, err error) {
	if hd, is16, err := readBMP16Header(data); is16 {
		return hd.width, hd.height, err
	}
	c, err := bmp.DecodeConfig(bytes.NewReader(data))
	return c.Width, c.Height, err
}

// decodeBMP decodes a BMP as described in Decode.
func decodeBMP(data []byte, _ DecodeOptions) (RGB, error) {
	if hd, is16, err := readBMP16Header(data); is16 {
		if err != nil {
			return RGB{}, err
		}
		return decodeBMP16(data, hd)
	}
	img, err := bmp.Decode(bytes.NewReader(data))
	if err != nil {
		return RGB{}, err
	}
	if m, ok := img.(*image.Paletted); ok {
		return palettedToRGB(m, len(m.Palette)), nil
	}
	// 24-bit data arrives as opaque RGBA, 32-bit data as NRGBA holding the
	// stored colour values.
	return fromGeneric(img), nil
}

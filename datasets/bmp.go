package datasets

import (
	"bytes"
	"image"

	"golang.org/x/image/bmp"
)

// decodeBMP decodes a BMP as described in Decode.
func decodeBMP(data []byte, _ DecodeOptions) (RGB, error) {
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

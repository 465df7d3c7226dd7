package datasets

import "image"

// FromImage converts an image already in memory to 8-bit RGB with the rules
// Decode applies to decoded files: stored colour values are kept,
// premultiplied ones are divided by their alpha, alpha is dropped and never
// composited, 16-bit samples keep their high byte (16-bit grey is clipped
// as Grey16Clip says), and YCbCr is converted with libjpeg's tables.
func FromImage(img image.Image) RGB {
	switch m := img.(type) {
	case *image.RGBA:
		return rgbaPremulToRGB(m)
	case *image.RGBA64:
		return rgba64ToRGB(m)
	case *image.NRGBA64:
		return nrgba64ToRGB(m)
	case *image.Gray16:
		return grey16ToRGB(m, Grey16Clip)
	case *image.Paletted:
		return palettedToRGB(m, len(m.Palette))
	case *image.YCbCr:
		return ycbcrToRGB(m)
	}
	return fromGeneric(img)
}

package datasets

import (
	"image"
	"image/color"
)

// paletteRGB returns the stored (non-premultiplied) colour of a palette entry.
func paletteRGB(c color.Color) [3]uint8 {
	switch v := c.(type) {
	case color.NRGBA:
		return [3]uint8{v.R, v.G, v.B}
	case color.RGBA:
		if v.A == 0xff {
			return [3]uint8{v.R, v.G, v.B}
		}
	}
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	return [3]uint8{n.R, n.G, n.B}
}

// fromGeneric converts the 8-bit image types Go's decoders return, reading
// stored values directly (no premultiplication, no compositing).
func fromGeneric(img image.Image) RGB {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	switch m := img.(type) {
	case *image.Gray:
		return convertRows(w, h, m.Stride, 1, m.Pix, func(dst, s []uint8) { dst[0], dst[1], dst[2] = s[0], s[0], s[0] })
	case *image.NRGBA:
		return dropAlpha(w, h, m.Pix, m.Stride)
	case *image.RGBA:
		// Go returns RGBA only for opaque data (RGB without tRNS, Adobe RGB
		// JPEG), where premultiplied and straight values coincide.
		return dropAlpha(w, h, m.Pix, m.Stride)
	case *image.CMYK:
		return convertRows(w, h, m.Stride, 4, m.Pix, func(dst, s []uint8) {
			nk := 255 - int(s[3])
			for c := 0; c < 3; c++ {
				dst[c] = clampU8(nk - mulDiv255(int(s[c]), nk))
			}
		})
	}
	out := NewRGB(w, h)
	for y := 0; y < h; y++ {
		o := out.Pix[3*y*w:]
		for x := 0; x < w; x++ {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			o[3*x], o[3*x+1], o[3*x+2] = c.R, c.G, c.B
		}
	}
	return out
}

// mulDiv255 is Pillow's rounded a*b/255.
func mulDiv255(a, b int) int {
	t := a*b + 128
	return ((t >> 8) + t) >> 8
}

// clampU8 limits v to 0..255.
func clampU8[T int | int32](v T) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// dropAlpha converts w×h 8-bit RGBA rows (pix with the given stride) to
// RGB, leaving alpha out, as Pillow's convert("RGB") does.
func dropAlpha(w, h int, pix []uint8, stride int) RGB {
	return convertRows(w, h, stride, 4, pix, func(dst, s []uint8) { copy(dst, s[:3]) })
}

// to8 turns the 16-bit grey sample hi<<8|lo into 8 bits.
func (m Grey16Mode) to8(hi, lo uint8) uint8 {
	if m == Grey16Scale {
		return uint8((int(hi)<<8 | int(lo) + 128) / 257)
	}
	if hi != 0 {
		return 255
	}
	return lo
}

// convertRows makes an RGB image of w×h pixels from rows of pix (stride
// bytes apart, bpp bytes a pixel): pixel calls one for each pixel with the
// 3 output bytes and the pixel's bytes.
func convertRows(w, h, stride, bpp int, pix []uint8, pixel func(dst, src []uint8)) RGB {
	out := NewRGB(w, h)
	for y := 0; y < h; y++ {
		row := pix[y*stride : y*stride+bpp*w]
		dst := out.Pix[3*y*w:]
		for x := 0; x < w; x++ {
			pixel(dst[3*x:3*x+3], row[bpp*x:bpp*x+bpp])
		}
	}
	return out
}

// grey16ToRGB converts 16-bit greyscale (big-endian samples) with mode.
func grey16ToRGB(m *image.Gray16, mode Grey16Mode) RGB {
	return convertRows(m.Rect.Dx(), m.Rect.Dy(), m.Stride, 2, m.Pix, func(dst, s []uint8) {
		v := mode.to8(s[0], s[1])
		dst[0], dst[1], dst[2] = v, v, v
	})
}

// greyNRGBA64ToRGB converts 16-bit grey held in an NRGBA64 image (R = G =
// B) with mode, dropping alpha.
func greyNRGBA64ToRGB(m *image.NRGBA64, mode Grey16Mode) RGB {
	return convertRows(m.Rect.Dx(), m.Rect.Dy(), m.Stride, 8, m.Pix, func(dst, s []uint8) {
		v := mode.to8(s[0], s[1])
		dst[0], dst[1], dst[2] = v, v, v
	})
}

// nrgba64ToRGB keeps the high byte of each colour sample and drops alpha.
func nrgba64ToRGB(m *image.NRGBA64) RGB {
	return convertRows(m.Rect.Dx(), m.Rect.Dy(), m.Stride, 8, m.Pix, func(dst, s []uint8) {
		dst[0], dst[1], dst[2] = s[0], s[2], s[4]
	})
}

// rgba64ToRGB converts premultiplied 16-bit RGBA on high bytes, dividing
// alpha out as Pillow's "RGBa;16" unpacker does (see unpremultiply). Opaque
// images (alpha 0xffff) just keep the high bytes.
func rgba64ToRGB(m *image.RGBA64) RGB {
	return convertRows(m.Rect.Dx(), m.Rect.Dy(), m.Stride, 8, m.Pix, func(dst, s []uint8) {
		unpremultiply(dst, s[0], s[2], s[4], s[6])
	})
}

// rgbaPremulToRGB converts premultiplied 8-bit RGBA, dividing alpha out
// (see unpremultiply).
func rgbaPremulToRGB(m *image.RGBA) RGB {
	return convertRows(m.Rect.Dx(), m.Rect.Dy(), m.Stride, 4, m.Pix, func(dst, s []uint8) {
		unpremultiply(dst, s[0], s[1], s[2], s[3])
	})
}

// unpremultiply writes the straight colour of the premultiplied 8-bit
// sample (r, g, b, a) to dst the way Pillow's "RGBa" unpackers do: black
// where a is 0, unchanged where a is 255, min(v·255/a, 255) truncated
// otherwise.
func unpremultiply(dst []uint8, r, g, b, a uint8) {
	switch a {
	case 0:
		dst[0], dst[1], dst[2] = 0, 0, 0
	case 255:
		dst[0], dst[1], dst[2] = r, g, b
	default:
		d := int(a)
		dst[0] = clampU8(int(r) * 255 / d)
		dst[1] = clampU8(int(g) * 255 / d)
		dst[2] = clampU8(int(b) * 255 / d)
	}
}

// palettedToRGB maps palette indices through the first n palette entries;
// other indices i become (i, i, i), the grey ramp Pillow initialises its
// palettes with.
func palettedToRGB(m *image.Paletted, n int) RGB {
	var lut [256][3]uint8
	for i := range lut {
		lut[i] = [3]uint8{uint8(i), uint8(i), uint8(i)}
	}
	for i := 0; i < n && i < len(m.Palette) && i < 256; i++ {
		lut[i] = paletteRGB(m.Palette[i])
	}
	out := NewRGB(m.Rect.Dx(), m.Rect.Dy())
	for y := 0; y < out.H; y++ {
		row := m.Pix[y*m.Stride : y*m.Stride+out.W]
		dst := out.Pix[3*y*out.W:]
		for x, idx := range row {
			c := lut[idx]
			dst[3*x], dst[3*x+1], dst[3*x+2] = c[0], c[1], c[2]
		}
	}
	return out
}

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
	out := NewRGB(b.Dx(), b.Dy())
	w := out.W
	switch m := img.(type) {
	case *image.Gray:
		for y := 0; y < out.H; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			o := out.Pix[3*y*w:]
			for x, v := range row {
				o[3*x], o[3*x+1], o[3*x+2] = v, v, v
			}
		}
	case *image.NRGBA:
		dropAlpha(out, m.Pix, m.Stride)
	case *image.RGBA:
		// Go returns RGBA only for opaque data (RGB without tRNS, Adobe RGB
		// JPEG), where premultiplied and straight values coincide.
		dropAlpha(out, m.Pix, m.Stride)
	case *image.CMYK:
		for y := 0; y < out.H; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			o := out.Pix[3*y*w:]
			for x := 0; x < w; x++ {
				s := row[4*x:]
				nk := 255 - int(s[3])
				for c := 0; c < 3; c++ {
					o[3*x+c] = clampU8(nk - mulDiv255(int(s[c]), nk))
				}
			}
		}
	default:
		for y := 0; y < out.H; y++ {
			o := out.Pix[3*y*w:]
			for x := 0; x < w; x++ {
				c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				o[3*x], o[3*x+1], o[3*x+2] = c.R, c.G, c.B
			}
		}
	}
	return out
}

// mulDiv255 is Pillow's rounded a*b/255.
func mulDiv255(a, b int) int {
	t := a*b + 128
	return ((t >> 8) + t) >> 8
}

func clampU8(v int) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// dropAlpha copies the RGB bytes of 8-bit RGBA rows (pix with the given
// stride) into out, leaving alpha out, as Pillow's convert("RGB") does.
func dropAlpha(out RGB, pix []uint8, stride int) {
	w := out.W
	for y := 0; y < out.H; y++ {
		row := pix[y*stride : y*stride+4*w]
		o := out.Pix[3*y*w:]
		for x := 0; x < w; x++ {
			o[3*x], o[3*x+1], o[3*x+2] = row[4*x], row[4*x+1], row[4*x+2]
		}
	}
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

// grey16ToRGB converts 16-bit greyscale (big-endian samples) with mode.
func grey16ToRGB(m *image.Gray16, mode Grey16Mode) RGB {
	out := NewRGB(m.Rect.Dx(), m.Rect.Dy())
	for y := 0; y < out.H; y++ {
		row := m.Pix[y*m.Stride : y*m.Stride+2*out.W]
		dst := out.Pix[3*y*out.W:]
		for x := 0; x < out.W; x++ {
			v := mode.to8(row[2*x], row[2*x+1])
			dst[3*x], dst[3*x+1], dst[3*x+2] = v, v, v
		}
	}
	return out
}

// greyNRGBA64ToRGB converts 16-bit grey held in an NRGBA64 image (R = G =
// B) with mode, dropping alpha.
func greyNRGBA64ToRGB(m *image.NRGBA64, mode Grey16Mode) RGB {
	out := NewRGB(m.Rect.Dx(), m.Rect.Dy())
	for y := 0; y < out.H; y++ {
		row := m.Pix[y*m.Stride : y*m.Stride+8*out.W]
		dst := out.Pix[3*y*out.W:]
		for x := 0; x < out.W; x++ {
			v := mode.to8(row[8*x], row[8*x+1])
			dst[3*x], dst[3*x+1], dst[3*x+2] = v, v, v
		}
	}
	return out
}

// nrgba64ToRGB keeps the high byte of each colour sample and drops alpha.
func nrgba64ToRGB(m *image.NRGBA64) RGB {
	out := NewRGB(m.Rect.Dx(), m.Rect.Dy())
	for y := 0; y < out.H; y++ {
		row := m.Pix[y*m.Stride : y*m.Stride+8*out.W]
		dst := out.Pix[3*y*out.W:]
		for x := 0; x < out.W; x++ {
			s := row[8*x:]
			dst[3*x], dst[3*x+1], dst[3*x+2] = s[0], s[2], s[4]
		}
	}
	return out
}

// rgba64ToRGB converts premultiplied 16-bit RGBA on high bytes, dividing
// alpha out as Pillow's "RGBa;16" unpacker does (see unpremultiply). Opaque
// images (alpha 0xffff) just keep the high bytes.
func rgba64ToRGB(m *image.RGBA64) RGB {
	out := NewRGB(m.Rect.Dx(), m.Rect.Dy())
	for y := 0; y < out.H; y++ {
		row := m.Pix[y*m.Stride : y*m.Stride+8*out.W]
		dst := out.Pix[3*y*out.W:]
		for x := 0; x < out.W; x++ {
			s := row[8*x:]
			unpremultiply(dst[3*x:3*x+3], s[0], s[2], s[4], s[6])
		}
	}
	return out
}

// rgbaPremulToRGB converts premultiplied 8-bit RGBA, dividing alpha out
// (see unpremultiply).
func rgbaPremulToRGB(m *image.RGBA) RGB {
	out := NewRGB(m.Rect.Dx(), m.Rect.Dy())
	for y := 0; y < out.H; y++ {
		row := m.Pix[y*m.Stride : y*m.Stride+4*out.W]
		dst := out.Pix[3*y*out.W:]
		for x := 0; x < out.W; x++ {
			s := row[4*x:]
			unpremultiply(dst[3*x:3*x+3], s[0], s[1], s[2], s[3])
		}
	}
	return out
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

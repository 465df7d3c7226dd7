// Package datasets reads anomaly-detection image datasets laid out like
// MVTec AD and MVTec LOCO AD and turns their images into the float32 CHW
// tensors the PUAD / EfficientAD networks consume.
//
// Every step reproduces the Python reference pipeline
// (Pillow 9.4 + torchvision 0.14):
//
//	Image.open(p).convert("RGB")          -> Decode, DecodeFile
//	transforms.Resize((size, size))       -> Resize (Pillow BILINEAR, antialiased)
//	transforms.ToTensor()                 -> ToTensor
//	transforms.Normalize(mean, std)       -> Normalize
//
// PNG decoding, resizing, ToTensor and Normalize agree bit for bit with the
// reference; JPEG decoding agrees to within a few levels (see Decode).
package datasets

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"os"
)

// RGB is an 8-bit RGB image stored as interleaved R, G, B bytes, row by row,
// without padding: the pixel (x, y) starts at Pix[3*(y*W+x)].
type RGB struct {
	W, H int
	Pix  []uint8
}

// NewRGB returns a black w×h image.
func NewRGB(w, h int) RGB {
	return RGB{W: w, H: h, Pix: make([]uint8, 3*w*h)}
}

// At returns the colour of the pixel (x, y).
func (m RGB) At(x, y int) (r, g, b uint8) {
	i := 3 * (y*m.W + x)
	return m.Pix[i], m.Pix[i+1], m.Pix[i+2]
}

// ErrUnsupportedFormat is returned (wrapped) for data that is neither PNG nor
// JPEG.
var ErrUnsupportedFormat = errors.New("unsupported image format (only PNG and JPEG are decoded)")

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// DecodeFile reads and decodes the PNG or JPEG file at path like Pillow's
// Image.open(path).convert("RGB"). Errors name the file.
func DecodeFile(path string) (RGB, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return RGB{}, fmt.Errorf("decode %s: %w", path, err)
	}
	img, err := Decode(data)
	if err != nil {
		return RGB{}, fmt.Errorf("decode %s: %w", path, err)
	}
	return img, nil
}

// Decode decodes a PNG or JPEG image held in data into 8-bit RGB the way
// Pillow 9.4's Image.open(...).convert("RGB") does.
//
// PNG (exact, every colour type and bit depth):
//   - 8-bit RGB, RGBA, grey, grey+alpha, paletted (1/2/4/8-bit) images keep
//     their stored colour values; alpha and tRNS transparency are dropped,
//     never composited (the non-premultiplied values are used).
//   - 16-bit RGB, RGBA and grey+alpha keep the high byte of each sample.
//   - 16-bit greyscale is clipped, not scaled: Pillow opens it in mode "I"
//     and its I→RGB conversion saturates, so a sample v becomes min(v, 255)
//     in all three channels.
//   - 1, 2 and 4-bit grey are scaled to 0..255 (0x00/0xff, ×0x55, ×0x11).
//   - Palette indices past the end of the PLTE chunk map to (i, i, i), the
//     grey ramp Pillow initialises its palettes with.
//
// JPEG (close, not exact): the coefficients are decoded by Go's image/jpeg,
// then chroma is upsampled with libjpeg's "fancy" triangular filter (h2v1,
// h2v2, h1v2) and converted with libjpeg's fixed-point YCbCr→RGB tables, as
// libjpeg-turbo does for Pillow. Go's integer IDCT is not libjpeg's
// JDCT_ISLOW, so some samples differ slightly: on the test fixtures (121×89,
// quality 85-95) 1.4-3.6% of the bytes differ, by at most 1 level for grey
// and CMYK JPEGs and at most 3 levels for colour ones (the colour conversion
// amplifies ±1 chroma errors); see TestDecodeJPEG. Go's own YCbCr→RGB path,
// which replicates chroma instead, would differ by up to 118 levels. Grey JPEGs are replicated to three
// channels, CMYK JPEGs are converted with Pillow's cmyk2rgb formula.
func Decode(data []byte) (RGB, error) {
	switch {
	case bytes.HasPrefix(data, pngSignature):
		return decodePNG(data)
	case len(data) >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff:
		return decodeJPEG(data)
	}
	return RGB{}, ErrUnsupportedFormat
}

// pngInfo is what Pillow's conversion needs from the PNG header that Go's
// decoder does not report.
type pngInfo struct {
	depth, colorType int
	paletteLen       int // entries in PLTE, -1 when absent
}

// readPNGInfo reads IHDR and the length of PLTE.
func readPNGInfo(data []byte) (pngInfo, error) {
	info := pngInfo{paletteLen: -1}
	p := data[len(pngSignature):]
	first := true
	for len(p) >= 8 {
		n := int(binary.BigEndian.Uint32(p[:4]))
		typ := string(p[4:8])
		if n < 0 || len(p) < 12+n {
			break
		}
		body := p[8 : 8+n]
		switch {
		case first && typ != "IHDR":
			return info, errors.New("png: first chunk is not IHDR")
		case typ == "IHDR":
			if n < 13 {
				return info, errors.New("png: short IHDR chunk")
			}
			info.depth = int(body[8])
			info.colorType = int(body[9])
		case typ == "PLTE":
			info.paletteLen = n / 3
		case typ == "IDAT" || typ == "IEND":
			return info, nil
		}
		first = false
		p = p[12+n:]
	}
	if first {
		return info, io.ErrUnexpectedEOF
	}
	return info, nil
}

func decodePNG(data []byte) (RGB, error) {
	info, err := readPNGInfo(data)
	if err != nil {
		return RGB{}, err
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return RGB{}, err
	}
	grey16 := info.colorType == 0 && info.depth == 16
	b := img.Bounds()
	out := NewRGB(b.Dx(), b.Dy())
	switch m := img.(type) {
	case *image.Gray16:
		if !grey16 {
			return fromGeneric(img), nil
		}
		for y := 0; y < out.H; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+2*out.W]
			o := out.Pix[3*y*out.W:]
			for x := 0; x < out.W; x++ {
				v := uint8(255)
				if row[2*x] == 0 {
					v = row[2*x+1]
				}
				o[3*x], o[3*x+1], o[3*x+2] = v, v, v
			}
		}
	case *image.NRGBA64:
		// 16-bit grey with tRNS arrives here too, with R = G = B.
		for y := 0; y < out.H; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+8*out.W]
			o := out.Pix[3*y*out.W:]
			for x := 0; x < out.W; x++ {
				s := row[8*x:]
				if grey16 {
					v := uint8(255)
					if s[0] == 0 {
						v = s[1]
					}
					o[3*x], o[3*x+1], o[3*x+2] = v, v, v
				} else {
					o[3*x], o[3*x+1], o[3*x+2] = s[0], s[2], s[4]
				}
			}
		}
	case *image.RGBA64:
		for y := 0; y < out.H; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+8*out.W]
			o := out.Pix[3*y*out.W:]
			for x := 0; x < out.W; x++ {
				o[3*x], o[3*x+1], o[3*x+2] = row[8*x], row[8*x+2], row[8*x+4]
			}
		}
	case *image.Paletted:
		var lut [256][3]uint8
		for i := range lut {
			lut[i] = [3]uint8{uint8(i), uint8(i), uint8(i)}
		}
		n := len(m.Palette)
		if info.paletteLen >= 0 && info.paletteLen < n {
			n = info.paletteLen
		}
		for i := 0; i < n && i < 256; i++ {
			lut[i] = paletteRGB(m.Palette[i])
		}
		for y := 0; y < out.H; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+out.W]
			o := out.Pix[3*y*out.W:]
			for x, idx := range row {
				c := lut[idx]
				o[3*x], o[3*x+1], o[3*x+2] = c[0], c[1], c[2]
			}
		}
	default:
		return fromGeneric(img), nil
	}
	return out, nil
}

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

func decodeJPEG(data []byte) (RGB, error) {
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return RGB{}, err
	}
	if m, ok := img.(*image.YCbCr); ok {
		return ycbcrToRGB(m), nil
	}
	return fromGeneric(img), nil
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

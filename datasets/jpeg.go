package datasets

import (
	"bytes"
	"image"
	"image/jpeg"
)

// isJPEG reports whether data starts with a JPEG SOI marker and another
// marker.
func isJPEG(data []byte) bool {
	return len(data) >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff
}

// jpegSize returns the dimensions the frame header (SOF) announces.
func jpegSize(data []byte) (w, h int, err error) {
	c, err := jpeg.DecodeConfig(bytes.NewReader(data))
	return c.Width, c.Height, err
}

// decodeJPEG decodes a JPEG as described in Decode.
func decodeJPEG(data []byte, _ DecodeOptions) (RGB, error) {
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return RGB{}, err
	}
	if m, ok := img.(*image.YCbCr); ok {
		return ycbcrToRGB(m), nil
	}
	return fromGeneric(img), nil
}

// libjpeg's YCbCr→RGB conversion (jdcolor.c) in 16-bit fixed point.
var (
	jpegCrR, jpegCbB [256]int32
	jpegCrG, jpegCbG [256]int32
)

func init() {
	const scaleBits = 16
	const half = 1 << (scaleBits - 1)
	fix := func(x float64) int32 { return int32(x*(1<<scaleBits) + 0.5) }
	for i := 0; i < 256; i++ {
		x := int32(i - 128)
		jpegCrR[i] = (fix(1.40200)*x + half) >> scaleBits
		jpegCbB[i] = (fix(1.77200)*x + half) >> scaleBits
		jpegCrG[i] = -fix(0.71414) * x
		jpegCbG[i] = -fix(0.34414)*x + half
	}
}

// ycbcrToRGB upsamples the chroma planes of a decoded JPEG the way
// libjpeg-turbo does with do_fancy_upsampling (Pillow's default) and converts
// to RGB with libjpeg's tables.
func ycbcrToRGB(m *image.YCbCr) RGB {
	b := m.Rect
	w, h := b.Dx(), b.Dy()
	out := NewRGB(w, h)
	if w == 0 || h == 0 {
		return out
	}
	hs, vs := 1, 1 // chroma subsampling factors
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		hs = 2
	case image.YCbCrSubsampleRatio420:
		hs, vs = 2, 2
	case image.YCbCrSubsampleRatio440:
		vs = 2
	case image.YCbCrSubsampleRatio411:
		hs = 4
	case image.YCbCrSubsampleRatio410:
		hs, vs = 4, 2
	}
	cb := upsampleChroma(m.Cb, m.CStride, w, h, hs, vs)
	cr := upsampleChroma(m.Cr, m.CStride, w, h, hs, vs)
	for y := 0; y < h; y++ {
		yrow := m.Y[y*m.YStride : y*m.YStride+w]
		o := out.Pix[3*y*w : 3*(y+1)*w]
		crow := cb[y*w : (y+1)*w]
		rrow := cr[y*w : (y+1)*w]
		for x, yv := range yrow {
			Y := int32(yv)
			u, v := crow[x], rrow[x]
			o[3*x] = clampU8(Y + jpegCrR[v])
			o[3*x+1] = clampU8(Y + (jpegCbG[u]+jpegCrG[v])>>16)
			o[3*x+2] = clampU8(Y + jpegCbB[u])
		}
	}
	return out
}

// upsampleChroma returns a w×h plane from a subsampled chroma plane (stride
// bytes per row, starting at the image origin).
//
// It follows libjpeg-turbo's jdsample.c: h2v1 and h2v2 use the triangular
// "fancy" filter when the downsampled width exceeds 2 (plain replication
// otherwise), h1v2 always uses it, other factors replicate. At the image
// borders the nearest real sample is repeated, as libjpeg's context rows and
// edge cases do.
func upsampleChroma(c []uint8, stride, w, h, hs, vs int) []uint8 {
	out := make([]uint8, w*h)
	dw := (w + hs - 1) / hs // libjpeg's downsampled_width
	dh := (h + vs - 1) / vs // downsampled_height
	at := func(x, y int) int32 {
		if x < 0 {
			x = 0
		} else if x >= dw {
			x = dw - 1
		}
		if y < 0 {
			y = 0
		} else if y >= dh {
			y = dh - 1
		}
		return int32(c[y*stride+x])
	}
	fancy := (hs == 2 && vs == 1 && dw > 2) || (hs == 2 && vs == 2 && dw > 2) || (hs == 1 && vs == 2)
	if !fancy {
		for y := 0; y < h; y++ {
			row := c[(y/vs)*stride:]
			o := out[y*w : (y+1)*w]
			for x := range o {
				o[x] = row[x/hs]
			}
		}
		return out
	}
	switch {
	case hs == 2 && vs == 1:
		for y := 0; y < h; y++ {
			o := out[y*w : (y+1)*w]
			for x := range o {
				cx := x >> 1
				if x&1 == 0 {
					o[x] = uint8((3*at(cx, y) + at(cx-1, y) + 1) >> 2)
				} else {
					o[x] = uint8((3*at(cx, y) + at(cx+1, y) + 2) >> 2)
				}
			}
		}
	case hs == 1 && vs == 2:
		for y := 0; y < h; y++ {
			cy := y >> 1
			ny, bias := cy-1, int32(1)
			if y&1 == 1 {
				ny, bias = cy+1, 2
			}
			o := out[y*w : (y+1)*w]
			for x := range o {
				o[x] = uint8((3*at(x, cy) + at(x, ny) + bias) >> 2)
			}
		}
	default: // h2v2
		colsum := make([]int32, dw+2) // with one clamped column either side
		for y := 0; y < h; y++ {
			cy := y >> 1
			ny := cy - 1
			if y&1 == 1 {
				ny = cy + 1
			}
			for cx := -1; cx <= dw; cx++ {
				colsum[cx+1] = 3*at(cx, cy) + at(cx, ny)
			}
			o := out[y*w : (y+1)*w]
			for x := range o {
				cx := x>>1 + 1
				if x&1 == 0 {
					o[x] = uint8((3*colsum[cx] + colsum[cx-1] + 8) >> 4)
				} else {
					o[x] = uint8((3*colsum[cx] + colsum[cx+1] + 7) >> 4)
				}
			}
		}
	}
	return out
}

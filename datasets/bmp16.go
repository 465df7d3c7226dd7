package datasets

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// bmp16Header is what decoding a 16-bit BMP needs from its headers.
type bmp16Header struct {
	width, height int
	topDown       bool
	offset        int  // of the pixel rows
	green6        bool // 5-6-5 bits per pixel; otherwise 5-5-5
}

// BMP header lengths and compressions Pillow reads 16-bit pixels with.
const (
	bmpFileHeaderLen = 14
	bmpBIRGB         = 0
	bmpBIBitFields   = 3
)

// readBMP16Header reports whether data is a BMP with 16-bit pixels (which
// golang.org/x/image/bmp does not read) and, if so, reads its headers.
// Pillow reads these as 5-5-5 RGB without bit fields, and with bit fields
// only the 5-5-5 and 5-6-5 masks.
func readBMP16Header(data []byte) (hd bmp16Header, is16 bool, err error) {
	const minLen = bmpFileHeaderLen + 40
	if len(data) < minLen || binary.LittleEndian.Uint16(data[28:]) != 16 {
		return hd, false, nil
	}
	switch binary.LittleEndian.Uint32(data[14:]) { // info header length
	case 40, 52, 56, 108, 124:
	default:
		return hd, false, nil // left to x/image/bmp, which refuses it
	}
	w := int(int32(binary.LittleEndian.Uint32(data[18:])))
	h := int(int32(binary.LittleEndian.Uint32(data[22:])))
	if h < 0 {
		h, hd.topDown = -h, true
	}
	if w < 0 {
		return hd, true, errors.New("negative width")
	}
	hd.width, hd.height = w, h
	hd.offset = int(binary.LittleEndian.Uint32(data[10:]))
	switch c := binary.LittleEndian.Uint32(data[30:]); c {
	case bmpBIRGB:
	case bmpBIBitFields:
		// The masks follow a 40-byte header and start longer ones: either
		// way they sit right after the first 40 bytes.
		if len(data) < minLen+12 {
			return hd, true, io.ErrUnexpectedEOF
		}
		m := data[minLen:]
		r, g, b := binary.LittleEndian.Uint32(m), binary.LittleEndian.Uint32(m[4:]), binary.LittleEndian.Uint32(m[8:])
		switch {
		case r == 0xf800 && g == 0x7e0 && b == 0x1f:
			hd.green6 = true
		case r == 0x7c00 && g == 0x3e0 && b == 0x1f:
		default:
			return hd, true, fmt.Errorf("%w (BMP): 16-bit masks %#x, %#x, %#x", ErrUnsupportedFeature, r, g, b)
		}
	default:
		return hd, true, fmt.Errorf("%w (BMP): compression %d", ErrUnsupportedFeature, c)
	}
	return hd, true, nil
}

// decodeBMP16 converts 16-bit BMP pixels the way Pillow's "BGR;15" and
// "BGR;16" unpackers do: each 5 or 6-bit field f becomes f·255/31 or
// f·255/63, truncated.
func decodeBMP16(data []byte, hd bmp16Header) (RGB, error) {
	out := NewRGB(hd.width, hd.height)
	if hd.width == 0 || hd.height == 0 {
		return out, nil
	}
	stride := (2*hd.width + 3) &^ 3
	if hd.offset < 0 || hd.offset > len(data) || (len(data)-hd.offset)/stride < hd.height {
		return RGB{}, io.ErrUnexpectedEOF
	}
	gShift, gMax, rShift := 5, 31, 10
	if hd.green6 {
		gMax, rShift = 63, 11
	}
	for y := 0; y < hd.height; y++ {
		row := hd.height - 1 - y
		if hd.topDown {
			row = y
		}
		src := data[hd.offset+row*stride:]
		dst := out.Pix[3*y*hd.width:]
		for x := 0; x < hd.width; x++ {
			v := int(binary.LittleEndian.Uint16(src[2*x:]))
			dst[3*x] = uint8((v >> rShift & 31) * 255 / 31)
			dst[3*x+1] = uint8((v >> gShift & gMax) * 255 / gMax)
			dst[3*x+2] = uint8((v & 31) * 255 / 31)
		}
	}
	return out, nil
}

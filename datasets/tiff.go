package datasets

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"

	"golang.org/x/image/tiff"
)

// TIFF tags and values the checks below read.
const (
	tiffTagBitsPerSample = 258
	tiffTagCompression   = 259
	tiffTagPhotometric   = 262
	tiffTagFillOrder     = 266
	tiffTagSamples       = 277
	tiffTagPlanarConfig  = 284

	tiffPhotometricWhiteIsZero = 0
	tiffPhotometricBlackIsZero = 1
	tiffPhotometricPalette     = 3
	tiffPlanarSeparate         = 2
	tiffFillOrderReversed      = 2
	tiffCompressionCCITTRLE    = 2
	tiffCompressionGroup3      = 3
	tiffCompressionGroup4      = 4
)

// TIFF tags of the block layout.
const (
	tiffTagRowsPerStrip = 278
	tiffTagTileWidth    = 322
	tiffTagTileLength   = 323
)

// tiffSize returns the dimensions of the first page and refuses the layouts
// Go's decoder would misread or inflate beyond the image (see
// checkTIFFLayout).
func tiffSize(data []byte) (w, h int, err error) {
	c, err := tiff.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return 0, 0, err
	}
	if err := checkTIFFLayout(readTIFFIFD(data).values, c.Width, c.Height); err != nil {
		return 0, 0, err
	}
	return c.Width, c.Height, nil
}

// checkTIFFLayout refuses, from the first IFD's inline values, what
// golang.org/x/image/tiff ignores: separate sample planes, reversed bit
// order outside CCITT data, and 16-bit palette indices (which it would
// truncate to 8 bits). It also refuses tiles much larger than the w×h
// image: Go inflates each tile up to 8 bytes per tile pixel, so a small
// compressed tile could otherwise take gigabytes.
func checkTIFFLayout(tags map[uint16]uint32, w, h int) error {
	switch {
	case tags[tiffTagPlanarConfig] == tiffPlanarSeparate && tags[tiffTagSamples] > 1:
		return fmt.Errorf("%w (TIFF): separate sample planes", ErrUnsupportedFeature)
	case tags[tiffTagFillOrder] == tiffFillOrderReversed &&
		(tags[tiffTagCompression] < tiffCompressionCCITTRLE || tags[tiffTagCompression] > tiffCompressionGroup4):
		return fmt.Errorf("%w (TIFF): reversed bit fill order", ErrUnsupportedFeature)
	case tags[tiffTagPhotometric] == tiffPhotometricPalette && tags[tiffTagBitsPerSample] > 8:
		return fmt.Errorf("%w (TIFF): palette indices over 8 bits", ErrUnsupportedFeature)
	case int64(tags[tiffTagTileWidth]) > tileBound(w) || int64(tags[tiffTagTileLength]) > tileBound(h):
		return fmt.Errorf("%w (TIFF): %dx%d tiles on a %dx%d image", ErrUnsupportedFeature,
			tags[tiffTagTileWidth], tags[tiffTagTileLength], w, h)
	}
	return nil
}

// tileBound is the largest tile side accepted for an image side of n
// pixels: n rounded up to the 16 pixels TIFF tiles are multiples of, or
// 1024 for small images.
func tileBound(n int) int64 {
	return max(int64(n+15)&^15, 1024)
}

// tiffIFD holds the SHORT and LONG entries of a TIFF's first IFD whose
// value is stored inline.
type tiffIFD struct {
	order  binary.ByteOrder
	values map[uint16]uint32 // the first value
	at     map[uint16]int    // where the 12-byte entry starts in the data
}

// readTIFFIFD reads the inline entries of the first IFD. It only reads what
// exists: a malformed file yields fewer entries (tiff.DecodeConfig has
// checked it).
func readTIFFIFD(data []byte) tiffIFD {
	ifd := tiffIFD{order: binary.LittleEndian, values: map[uint16]uint32{}, at: map[uint16]int{}}
	if len(data) < 8 {
		return ifd
	}
	if data[0] == 'M' {
		ifd.order = binary.BigEndian
	}
	bo := ifd.order
	off := uint64(bo.Uint32(data[4:8]))
	if off+2 > uint64(len(data)) {
		return ifd
	}
	n := uint64(bo.Uint16(data[off:]))
	for i := uint64(0); i < n; i++ {
		e := off + 2 + 12*i
		if e+12 > uint64(len(data)) {
			break
		}
		entry := data[e : e+12]
		tag, typ, count := bo.Uint16(entry), bo.Uint16(entry[2:]), bo.Uint32(entry[4:])
		switch {
		case typ == 3 && count <= 2: // SHORT, inline
			ifd.values[tag] = uint32(bo.Uint16(entry[8:]))
		case typ == 4 && count == 1: // LONG
			ifd.values[tag] = bo.Uint32(entry[8:])
		default:
			continue
		}
		ifd.at[tag] = int(e)
	}
	return ifd
}

// boundStrips returns data, or a copy of it whose RowsPerStrip is lowered
// to the image height h when it is larger (2³²-1, the TIFF default, means
// one strip). Go's decoder inflates each strip up to 8 bytes per pixel of
// width × RowsPerStrip, so a small compressed strip could otherwise take
// gigabytes; with the bound a strip holds at most what the image needs.
func boundStrips(data []byte, ifd tiffIFD, h int) []byte {
	at, ok := ifd.at[tiffTagRowsPerStrip]
	if !ok || h <= 0 || int64(ifd.values[tiffTagRowsPerStrip]) <= int64(h) {
		return data
	}
	out := append([]byte(nil), data...)
	entry := out[at : at+12]
	ifd.order.PutUint16(entry[2:], 4) // LONG
	ifd.order.PutUint32(entry[4:], 1)
	ifd.order.PutUint32(entry[8:], uint32(h))
	return out
}

// decodeTIFF decodes the first page of a TIFF as described in Decode.
func decodeTIFF(data []byte, o DecodeOptions) (RGB, error) {
	ifd := readTIFFIFD(data)
	c, err := tiff.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return RGB{}, err
	}
	img, err := tiff.Decode(bytes.NewReader(boundStrips(data, ifd, c.Height)))
	if err != nil {
		return RGB{}, err
	}
	tags := ifd.values
	switch m := img.(type) {
	case *image.Gray:
		if c := tags[tiffTagCompression]; tags[tiffTagPhotometric] == tiffPhotometricBlackIsZero &&
			(c == tiffCompressionGroup3 || c == tiffCompressionGroup4) {
			// libtiff hands over CCITT data as coded (white runs are 0
			// bits) and Pillow applies the photometric interpretation to
			// those bits; Go's decoder makes white runs white instead.
			invertGrey(m.Pix)
		}
		return fromGeneric(m), nil
	case *image.Gray16:
		if tags[tiffTagPhotometric] == tiffPhotometricWhiteIsZero {
			// Pillow opens 16-bit "white is zero" grey as plain "I;16",
			// without inverting it; Go's decoder inverted it.
			invertGrey(m.Pix)
		}
		return grey16ToRGB(m, o.Grey16), nil
	case *image.Paletted:
		return palettedToRGB(m, len(m.Palette)), nil
	case *image.RGBA:
		// Associated alpha, or opaque RGB (alpha 255) where dividing it out
		// changes nothing.
		return rgbaPremulToRGB(m), nil
	case *image.RGBA64:
		return rgba64ToRGB(m), nil
	case *image.NRGBA64:
		return nrgba64ToRGB(m), nil
	}
	return fromGeneric(img), nil
}

// invertGrey inverts every bit of pix: v becomes 255 - v for 8-bit
// samples, 65535 - v for 16-bit ones.
func invertGrey(pix []uint8) {
	for i := range pix {
		pix[i] = ^pix[i]
	}
}

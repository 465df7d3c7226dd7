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

// tiffSize returns the dimensions of the first page and refuses the layouts
// Go's decoder would misread instead of rejecting.
func tiffSize(data []byte) (w, h int, err error) {
	c, err := tiff.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return 0, 0, err
	}
	if err := checkTIFFLayout(tiffShortTags(data)); err != nil {
		return 0, 0, err
	}
	return c.Width, c.Height, nil
}

// checkTIFFLayout refuses, from the first IFD's inline values (see
// tiffShortTags), what golang.org/x/image/tiff ignores: separate sample
// planes, reversed bit order outside CCITT data, and 16-bit palette indices
// (which it would truncate to 8 bits).
func checkTIFFLayout(tags map[uint16]uint32) error {
	switch {
	case tags[tiffTagPlanarConfig] == tiffPlanarSeparate && tags[tiffTagSamples] > 1:
		return fmt.Errorf("%w (TIFF): separate sample planes", ErrUnsupportedFeature)
	case tags[tiffTagFillOrder] == tiffFillOrderReversed &&
		(tags[tiffTagCompression] < tiffCompressionCCITTRLE || tags[tiffTagCompression] > tiffCompressionGroup4):
		return fmt.Errorf("%w (TIFF): reversed bit fill order", ErrUnsupportedFeature)
	case tags[tiffTagPhotometric] == tiffPhotometricPalette && tags[tiffTagBitsPerSample] > 8:
		return fmt.Errorf("%w (TIFF): palette indices over 8 bits", ErrUnsupportedFeature)
	}
	return nil
}

// tiffShortTags returns the first value of the SHORT or LONG entries of the
// first IFD whose value is stored inline. It only reads what exists: a
// malformed file yields fewer entries (tiff.DecodeConfig has checked it).
func tiffShortTags(data []byte) map[uint16]uint32 {
	tags := map[uint16]uint32{}
	if len(data) < 8 {
		return tags
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if data[0] == 'M' {
		bo = binary.BigEndian
	}
	off := uint64(bo.Uint32(data[4:8]))
	if off+2 > uint64(len(data)) {
		return tags
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
			tags[tag] = uint32(bo.Uint16(entry[8:]))
		case typ == 4 && count == 1: // LONG
			tags[tag] = bo.Uint32(entry[8:])
		}
	}
	return tags
}

// decodeTIFF decodes the first page of a TIFF as described in Decode.
func decodeTIFF(data []byte, o DecodeOptions) (RGB, error) {
	img, err := tiff.Decode(bytes.NewReader(data))
	if err != nil {
		return RGB{}, err
	}
	tags := tiffShortTags(data)
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

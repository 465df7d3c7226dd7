// Package floattiff writes anomaly maps as single-channel 32-bit float TIFF
// images, the format MVTec's official evaluation scripts read anomaly maps
// from (and Pillow opens as mode "F").
//
// The files are minimal baseline TIFFs: little-endian, uncompressed, one
// strip, one sample per pixel of SampleFormat 3 (IEEE float) and
// BitsPerSample 32, black is zero.
package floattiff

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/puad-go/puad/internal/atomicfile"
)

// TIFF tags written, in ascending order as the format requires.
const (
	tagImageWidth      = 256
	tagImageLength     = 257
	tagBitsPerSample   = 258
	tagCompression     = 259
	tagPhotometric     = 262
	tagStripOffsets    = 273
	tagSamplesPerPixel = 277
	tagRowsPerStrip    = 278
	tagStripByteCounts = 279
	tagSampleFormat    = 339
)

// Field types.
const (
	typeShort = 3
	typeLong  = 4
)

const (
	headerSize = 8
	numEntries = 10
	ifdSize    = 2 + numEntries*12 + 4
	// dataOffset is where the pixels start: after the header and the IFD,
	// rounded up to a multiple of 4.
	dataOffset = (headerSize + ifdSize + 3) &^ 3
)

// Encode writes the w×h map pix (row-major) as a float TIFF to out.
func Encode(out io.Writer, pix []float32, w, h int) error {
	if w <= 0 || h <= 0 || len(pix) != w*h {
		return fmt.Errorf("float TIFF: %d values for a %d×%d image", len(pix), w, h)
	}
	if uint64(len(pix))*4+dataOffset > math.MaxUint32 {
		return fmt.Errorf("float TIFF: a %d×%d image does not fit in a TIFF file", w, h)
	}
	bw := bufio.NewWriter(out)
	le := binary.LittleEndian
	var head [dataOffset]byte
	copy(head[:4], "II*\x00")
	le.PutUint32(head[4:], headerSize)
	le.PutUint16(head[headerSize:], numEntries)
	entries := []struct {
		tag, typ uint16
		value    uint32
	}{
		{tagImageWidth, typeLong, uint32(w)},
		{tagImageLength, typeLong, uint32(h)},
		{tagBitsPerSample, typeShort, 32},
		{tagCompression, typeShort, 1},
		{tagPhotometric, typeShort, 1},
		{tagStripOffsets, typeLong, dataOffset},
		{tagSamplesPerPixel, typeShort, 1},
		{tagRowsPerStrip, typeLong, uint32(h)},
		{tagStripByteCounts, typeLong, uint32(4 * len(pix))},
		{tagSampleFormat, typeShort, 3},
	}
	for i, e := range entries {
		b := head[headerSize+2+12*i:]
		le.PutUint16(b, e.tag)
		le.PutUint16(b[2:], e.typ)
		le.PutUint32(b[4:], 1)
		if e.typ == typeShort {
			le.PutUint16(b[8:], uint16(e.value))
		} else {
			le.PutUint32(b[8:], e.value)
		}
	}
	// The next-IFD offset (0: none) and the padding are already zero.
	if _, err := bw.Write(head[:]); err != nil {
		return err
	}
	var buf [4]byte
	for _, v := range pix {
		le.PutUint32(buf[:], math.Float32bits(v))
		if _, err := bw.Write(buf[:]); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// WriteFile writes the w×h map pix as a float TIFF file at path,
// atomically (internal/atomicfile).
func WriteFile(path string, pix []float32, w, h int) error {
	if err := atomicfile.Write(path, atomicfile.DefaultPerm, func(out io.Writer) error {
		return Encode(out, pix, w, h)
	}); err != nil {
		return fmt.Errorf("write anomaly map %s: %w", path, err)
	}
	return nil
}

// Decode reads a TIFF that Encode wrote (little-endian, one uncompressed
// strip of 32-bit floats) and returns its values and size. It is meant for
// reading such files back, not for TIFFs from elsewhere.
func Decode(data []byte) (pix []float32, w, h int, err error) {
	le := binary.LittleEndian
	if len(data) < headerSize || string(data[:4]) != "II*\x00" {
		return nil, 0, 0, fmt.Errorf("float TIFF: not a little-endian TIFF")
	}
	off := int(le.Uint32(data[4:]))
	if off+2 > len(data) {
		return nil, 0, 0, fmt.Errorf("float TIFF: IFD offset %d past the end", off)
	}
	n := int(le.Uint16(data[off:]))
	if off+2+12*n > len(data) {
		return nil, 0, 0, fmt.Errorf("float TIFF: IFD of %d entries past the end", n)
	}
	tags := map[uint16]uint32{}
	for i := range n {
		b := data[off+2+12*i:]
		if le.Uint16(b[2:]) == typeShort {
			tags[le.Uint16(b)] = uint32(le.Uint16(b[8:]))
		} else {
			tags[le.Uint16(b)] = le.Uint32(b[8:])
		}
	}
	w, h = int(tags[tagImageWidth]), int(tags[tagImageLength])
	if tags[tagBitsPerSample] != 32 || tags[tagSampleFormat] != 3 || tags[tagCompression] != 1 || w <= 0 || h <= 0 {
		return nil, 0, 0, fmt.Errorf("float TIFF: not an uncompressed 32-bit float image")
	}
	start := int(tags[tagStripOffsets])
	if start < 0 || start+4*w*h > len(data) {
		return nil, 0, 0, fmt.Errorf("float TIFF: strip past the end")
	}
	pix = make([]float32, w*h)
	for i := range pix {
		pix[i] = math.Float32frombits(le.Uint32(data[start+4*i:]))
	}
	return pix, w, h, nil
}

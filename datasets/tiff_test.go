package datasets

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"runtime"
	"sort"
	"testing"
)

// tiffEntry is one IFD entry of buildTIFF: a LONG value.
type tiffEntry struct {
	tag uint16
	val uint32
}

// buildTIFF writes a little-endian TIFF with one IFD of LONG entries and
// the block data after it; the value of offsetTag is set to the data's
// offset.
func buildTIFF(entries []tiffEntry, offsetTag uint16, block []byte) []byte {
	sort.Slice(entries, func(i, j int) bool { return entries[i].tag < entries[j].tag })
	dataOff := uint32(8 + 2 + 12*len(entries) + 4)
	p := append([]byte("II*\x00"), 8, 0, 0, 0)
	p = binary.LittleEndian.AppendUint16(p, uint16(len(entries)))
	for _, e := range entries {
		if e.tag == offsetTag {
			e.val = dataOff
		}
		p = binary.LittleEndian.AppendUint16(p, e.tag)
		p = binary.LittleEndian.AppendUint16(p, 4)
		p = binary.LittleEndian.AppendUint32(p, 1)
		p = binary.LittleEndian.AppendUint32(p, e.val)
	}
	p = append(p, 0, 0, 0, 0)
	return append(p, block...)
}

// zeroDeflate is the zlib stream of n zero bytes.
func zeroDeflate(n int) []byte {
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
	zw.Write(make([]byte, n))
	zw.Close()
	return z.Bytes()
}

// TestDecodeTIFFStripBomb: an 8×8 image whose single Deflate strip holds
// 32 MiB of zeros and whose RowsPerStrip is the TIFF default 2³²-1 (one
// strip, however tall) is decoded without inflating more than the image
// needs.
func TestDecodeTIFFStripBomb(t *testing.T) {
	strip := zeroDeflate(32 << 20)
	data := buildTIFF([]tiffEntry{
		{256, 8}, {257, 8}, {258, 8}, {259, 8}, {262, 1}, {273, 0}, {277, 1},
		{278, 1<<32 - 1}, {279, uint32(len(strip))},
	}, 273, strip)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	img, err := Decode(data)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if img.W != 8 || img.H != 8 {
		t.Fatalf("%dx%d image", img.W, img.H)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 4<<20 {
		t.Errorf("decoding an 8×8 TIFF of %d bytes allocated %d bytes", len(data), n)
	}
}

// TestDecodeTIFFTileBomb: tiles far larger than the image are refused.
func TestDecodeTIFFTileBomb(t *testing.T) {
	tile := zeroDeflate(1 << 20)
	data := buildTIFF([]tiffEntry{
		{256, 8}, {257, 8}, {258, 8}, {259, 8}, {262, 1}, {277, 1},
		{322, 1 << 15}, {323, 1 << 15}, {324, 0}, {325, uint32(len(tile))},
	}, 324, tile)
	if _, err := Decode(data); !errors.Is(err, ErrUnsupportedFeature) {
		t.Fatalf("error %v, want ErrUnsupportedFeature", err)
	}
	ok := buildTIFF([]tiffEntry{
		{256, 8}, {257, 8}, {258, 8}, {259, 8}, {262, 1}, {277, 1},
		{322, 256}, {323, 256}, {324, 0}, {325, uint32(len(tile))},
	}, 324, tile)
	if _, err := Decode(ok); err != nil {
		t.Fatalf("256×256 tiles on an 8×8 image: %v", err)
	}
}

package ptfile

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"
)

// Generators of crafted inputs that probe the loader's bounds. Each builds
// its bytes from scratch so that the regression tests and the fuzz corpus
// (TestGenerateFuzzCorpus) use the same inputs.

// long4Pickle returns a pickle that pushes an int encoded by LONG4 with an
// n-byte payload.
func long4Pickle(n int) []byte {
	p := []byte("\x80\x02\x8b")
	p = binary.LittleEndian.AppendUint32(p, uint32(n))
	p = append(p, bytes.Repeat([]byte{0x5a}, n)...)
	return append(p, '.')
}

// longTextPickle returns a pickle that pushes an int written as n decimal
// digits by the text opcode LONG.
func longTextPickle(n int) []byte {
	p := []byte("\x80\x02L")
	p = append(p, bytes.Repeat([]byte{'7'}, n)...)
	return append(p, "L\n."...)
}

// nestedFramesPickle returns a protocol 4 pickle of n FRAME opcodes, each
// claiming the rest of the pickle.
func nestedFramesPickle(n int) []byte {
	p := []byte("\x80\x04")
	for i := 0; i < n; i++ {
		rest := uint64(9*(n-i-1) + 2)
		p = append(p, 0x95)
		p = binary.LittleEndian.AppendUint64(p, rest)
	}
	return append(p, 'N', '.')
}

// expandedMu returns a file like mu.pt (one float32 tensor of shape
// (1, 384, 1, 1)) whose tensor instead claims shape (1, 384, 928, 928)
// with zero strides on the last two dimensions: 1.5 KB of storage that
// expands to 1.3 GB when made contiguous.
func expandedMu() []byte {
	storage := make([]byte, 384*4)
	for i := range 384 {
		binary.LittleEndian.PutUint32(storage[4*i:], uint32(0x3f800000+i))
	}
	pkl := tensorPickle("FloatStorage", 384, 0, []int64{1, 384, 928, 928}, []int64{384, 1, 0, 0})
	return testArchiveBytes(map[string][]byte{"data.pkl": pkl, "data/0": storage, "version": []byte("3\n")})
}

// deflatedZeros returns an archive whose storage entry is n zero bytes,
// deflate-compressed (about 1000 to 1).
func deflatedZeros(t testing.TB, n int) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	pkl := tensorPickle("FloatStorage", int64(n/4), 0, []int64{int64(n / 4)}, []int64{1})
	for _, f := range []struct {
		name   string
		data   []byte
		method uint16
	}{{"d/data.pkl", pkl, zip.Store}, {"d/data/0", make([]byte, n), zip.Deflate}, {"d/version", []byte("3\n"), zip.Store}} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: f.method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(f.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// deepMarksPickle returns a pickle of n nested MARKs.
func deepMarksPickle(n int) []byte {
	p := append([]byte("\x80\x02"), bytes.Repeat([]byte{'('}, n)...)
	return append(p, 'N', '.')
}

// overlappingArchive returns an archive whose pickle is a list of three
// tensors on storages "0", "1" and "2" of n float32 each, where the
// central directory points all three storage records at the data of the
// first: n*4 bytes in the file that read as 3*n*4.
func overlappingArchive(n int) []byte {
	p := newTestPickler()
	p.op(']', '(')
	for i := range 3 {
		tensorOn(p, "FloatStorage", fmt.Sprint(i), int64(n), 0, []int64{int64(n)}, []int64{1})
	}
	p.op('e', '.')
	storage := make([]byte, 4*n)
	for i := range storage {
		storage[i] = byte(i)
	}
	data := testArchiveBytes(map[string][]byte{"data.pkl": p.buf.Bytes(), "data/0": storage, "data/1": nil, "data/2": nil})
	// Central directory headers: CRC-32 at 16, sizes at 20 and 24, name
	// length at 28, local header offset at 42, name at 46.
	var first uint32
	for i := bytes.Index(data, []byte("PK\x01\x02")); i >= 0; {
		nameLen := int(binary.LittleEndian.Uint16(data[i+28:]))
		switch string(data[i+46 : i+46+nameLen]) {
		case "x/data/0":
			first = binary.LittleEndian.Uint32(data[i+42:])
		case "x/data/1", "x/data/2":
			binary.LittleEndian.PutUint32(data[i+16:], crc32.ChecksumIEEE(storage))
			binary.LittleEndian.PutUint32(data[i+20:], uint32(len(storage)))
			binary.LittleEndian.PutUint32(data[i+24:], uint32(len(storage)))
			binary.LittleEndian.PutUint32(data[i+42:], first)
		}
		j := bytes.Index(data[i+4:], []byte("PK\x01\x02"))
		if j < 0 {
			break
		}
		i += 4 + j
	}
	return data
}

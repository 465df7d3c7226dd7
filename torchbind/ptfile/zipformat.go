package ptfile

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
)

// The zip format that torch.save writes by default.

type zipArchive struct {
	data  []byte
	top   string
	files map[string]*zip.File // by name inside the top folder
}

func loadZip(data []byte) (any, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, fmt.Errorf("corrupt or truncated zip archive: %w", err)
	}
	if len(zr.File) == 0 {
		return nil, fmt.Errorf("%w: the zip archive holds no files", errNotPTFile)
	}
	first := zr.File[0].Name
	slash := strings.IndexByte(first, '/')
	if slash <= 0 {
		return nil, fmt.Errorf("%w: file %q in the zip archive is not in a folder", errNotPTFile, first)
	}
	a := &zipArchive{data: data, top: first[:slash], files: map[string]*zip.File{}}
	for _, f := range zr.File {
		if rest, ok := strings.CutPrefix(f.Name, a.top+"/"); ok {
			if _, dup := a.files[rest]; !dup {
				a.files[rest] = f
			}
		}
	}
	if _, ok := a.files["constants.pkl"]; ok {
		return nil, fmt.Errorf("this is a TorchScript archive (torch.jit.save), not a torch.save file")
	}
	if _, ok := a.files["data.pkl"]; !ok {
		return nil, fmt.Errorf("%w: the zip archive has no %s/data.pkl", errNotPTFile, a.top)
	}
	l := &loader{storages: map[string]*storageRec{}, zip: a}
	if _, ok := a.files["byteorder"]; ok {
		b, err := a.record("byteorder")
		if err != nil {
			return nil, err
		}
		switch strings.TrimSpace(string(b)) {
		case "little":
		case "big":
			l.bigEndian = true
		default:
			return nil, fmt.Errorf("unknown byte order %q in %s/byteorder", b, a.top)
		}
	}
	pkl, err := a.record("data.pkl")
	if err != nil {
		return nil, err
	}
	v, err := l.unpickle(pkl)
	if err != nil {
		return nil, fmt.Errorf("%s/data.pkl: %w", a.top, err)
	}
	return l.finish(v)
}

// record returns the content of the file name inside the top folder.
func (a *zipArchive) record(name string) ([]byte, error) {
	f, ok := a.files[name]
	if !ok {
		return nil, fmt.Errorf("%s/%s is missing from the archive", a.top, name)
	}
	fail := func(format string, args ...any) ([]byte, error) {
		return nil, fmt.Errorf("%s/%s: %s", a.top, name, fmt.Sprintf(format, args...))
	}
	switch f.Method {
	case zip.Store:
		off, err := f.DataOffset()
		if err != nil {
			return fail("corrupt zip entry: %v", err)
		}
		size := f.UncompressedSize64
		if f.CompressedSize64 != size || off < 0 || size > uint64(len(a.data)) || uint64(off) > uint64(len(a.data))-size {
			return fail("entry runs past the end of the archive (truncated file?)")
		}
		b := a.data[off : off+int64(size) : off+int64(size)]
		if crc32.ChecksumIEEE(b) != f.CRC32 {
			return fail("checksum mismatch (corrupt file)")
		}
		return b, nil
	case zip.Deflate:
		// Deflate expands at most about 1032 times.
		if f.UncompressedSize64 > 1100*f.CompressedSize64+1024 || f.CompressedSize64 > uint64(len(a.data)) {
			return fail("implausible compressed sizes (corrupt file)")
		}
		rc, err := f.Open()
		if err != nil {
			return fail("%v", err)
		}
		defer rc.Close()
		b := make([]byte, f.UncompressedSize64)
		if _, err := io.ReadFull(rc, b); err != nil {
			return fail("%v", err)
		}
		// Reading to the end makes archive/zip verify the checksum.
		if n, err := rc.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			if err == nil || err == io.EOF {
				err = errors.New("more data than the declared size")
			}
			return fail("%v", err)
		}
		return b, nil
	}
	return fail("unsupported zip compression method %d", f.Method)
}

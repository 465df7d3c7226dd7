package ptfile

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
)

// The zip format that torch.save writes by default. torch.save stores every
// record uncompressed; records compressed by another zip tool are accepted
// up to maxInflateRatio.

// maxInflateRatio bounds how many times a compressed record may expand (on
// top of inflateSlack bytes, so that small records of zeros still load).
// Tensor data hardly compresses; a ratio beyond this means a crafted file.
const (
	maxInflateRatio = 16
	inflateSlack    = 64 << 10
)

type zipArchive struct {
	ctx   context.Context
	data  []byte
	top   string
	files map[string]*zip.File // by name inside the top folder
	read  uint64               // bytes of the archive read as records so far
}

func (l *loader) loadZip(data []byte) (any, error) {
	a, err := openZip(l.ctx, data)
	if err != nil {
		return nil, err
	}
	l.zip = a
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

// openZip reads the central directory of the archive data and checks that
// it is a torch.save archive.
func openZip(ctx context.Context, data []byte) (*zipArchive, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, fmt.Errorf("corrupt or truncated zip archive: %w", err)
	}
	if len(zr.File) == 0 {
		return nil, fmt.Errorf("%w: the zip archive holds no files", ErrNotPTFile)
	}
	first := zr.File[0].Name
	slash := strings.IndexByte(first, '/')
	if slash <= 0 {
		return nil, fmt.Errorf("%w: file %q in the zip archive is not in a folder", ErrNotPTFile, first)
	}
	a := &zipArchive{ctx: ctx, data: data, top: first[:slash], files: map[string]*zip.File{}}
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
		return nil, fmt.Errorf("%w: the zip archive has no %s/data.pkl", ErrNotPTFile, a.top)
	}
	return a, nil
}

// record returns the content of the file name inside the top folder. The
// records read from one archive may not overlap, so that together they read
// each byte of the archive at most once.
func (a *zipArchive) record(name string) ([]byte, error) {
	if err := a.ctx.Err(); err != nil {
		return nil, err
	}
	f, ok := a.files[name]
	if !ok {
		return nil, fmt.Errorf("%s/%s is missing from the archive", a.top, name)
	}
	fail := func(format string, args ...any) ([]byte, error) {
		return nil, fmt.Errorf("%s/%s: %s", a.top, name, fmt.Sprintf(format, args...))
	}
	size := f.CompressedSize64
	if size > uint64(len(a.data)) || a.read > uint64(len(a.data))-size {
		return fail("entry overlaps other entries or runs past the end of the archive (corrupt file)")
	}
	a.read += size
	switch f.Method {
	case zip.Store:
		off, err := f.DataOffset()
		if err != nil {
			return fail("corrupt zip entry: %v", err)
		}
		if f.UncompressedSize64 != size || off < 0 || uint64(off) > uint64(len(a.data))-size {
			return fail("entry runs past the end of the archive (truncated file?)")
		}
		b := a.data[off : off+int64(size) : off+int64(size)]
		if crc32.ChecksumIEEE(b) != f.CRC32 {
			return fail("checksum mismatch (corrupt file)")
		}
		return b, nil
	case zip.Deflate:
		if f.UncompressedSize64 > maxInflateRatio*size+inflateSlack {
			return fail("compressed %d bytes expand to %d, more than %d times (torch.save stores records uncompressed; a crafted file?)",
				size, f.UncompressedSize64, maxInflateRatio)
		}
		return a.inflate(f, fail)
	}
	return fail("unsupported zip compression method %d (torch.save stores records uncompressed)", f.Method)
}

// inflate reads the deflate-compressed record f, whose declared sizes have
// been checked.
func (a *zipArchive) inflate(f *zip.File, fail func(string, ...any) ([]byte, error)) ([]byte, error) {
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

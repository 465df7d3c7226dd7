package datasets

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
)

// MaxImagePixels is the default largest image, in pixels (width × height),
// that Decode and DecodeFile accept. It is Pillow's decompression-bomb error
// threshold (twice Image.MAX_IMAGE_PIXELS): Pillow refuses images with more
// pixels than this, and so does this package. The dimensions are read from
// the header before anything is decoded. A value <= 0 disables the check.
// Set it before decoding starts; DecodeOptions.MaxPixels overrides it per
// call.
var MaxImagePixels int64 = 178_956_970

// MaxFileBytes is the default largest file, in bytes, that DecodeFile reads
// (1 GiB). A value <= 0 disables the check. Set it before decoding starts;
// DecodeOptions.MaxFileBytes overrides it per call.
var MaxFileBytes int64 = 1 << 30

// ErrNotRegularFile is returned (wrapped, naming the kind of file) by
// DecodeFile for directories, named pipes, devices and sockets, which it
// refuses without opening them for reading.
var ErrNotRegularFile = errors.New("not a regular file")

// ImageTooLargeError reports an image whose header announces more pixels
// than the limit in force. Its message leaves the file out: DecodeFile's
// error, which wraps it, names the file.
type ImageTooLargeError struct {
	Path          string // the file, when decoding a file
	Width, Height int    // as announced by the header
	Limit         int64  // the largest number of pixels accepted
}

func (e *ImageTooLargeError) Error() string {
	return fmt.Sprintf("image of %dx%d = %d pixels is over the limit of %d pixels",
		e.Width, e.Height, uint64(e.Width)*uint64(e.Height), e.Limit)
}

// FileTooLargeError reports a file longer than the byte limit in force. Its
// message leaves the file out, as ImageTooLargeError's does.
type FileTooLargeError struct {
	Path  string
	Limit int64 // the largest number of bytes read
}

func (e *FileTooLargeError) Error() string {
	return fmt.Sprintf("file is over the limit of %d bytes", e.Limit)
}

// checkPixels returns an *ImageTooLargeError when w×h exceeds limit
// (limit <= 0: no limit).
func checkPixels(w, h int, limit int64) error {
	// w·h > limit, without overflowing: for h > 0 it is w > limit/h.
	if limit > 0 && w > 0 && h > 0 && int64(w) > limit/int64(h) {
		return &ImageTooLargeError{Width: w, Height: h, Limit: limit}
	}
	return nil
}

// fileKind names the kind of a file that is not regular.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	}
	return "irregular file"
}

func checkRegular(fi fs.FileInfo) error {
	if fi.Mode().IsRegular() {
		return nil
	}
	return fmt.Errorf("%w (%s)", ErrNotRegularFile, fileKind(fi.Mode()))
}

// readRegularFile reads the regular file at path (links followed), at most
// limit bytes (limit <= 0: no limit). The file is checked before it is
// opened, opened without blocking (a pipe swapped in after the check cannot
// stall the caller) and checked again once open.
func readRegularFile(path string, limit int64) ([]byte, error) {
	if limit <= 0 || limit == math.MaxInt64 {
		limit = math.MaxInt64 - 1
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := checkRegular(fi); err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, &FileTooLargeError{Path: path, Limit: limit}
	}
	f, err := os.OpenFile(path, os.O_RDONLY|openNoBlock, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := checkRegular(fi); err != nil {
		return nil, err
	}
	size := fi.Size()
	if size > limit {
		return nil, &FileTooLargeError{Path: path, Limit: limit}
	}
	// Room for the whole file and the final empty read, so a file of the
	// size announced is read without growing the buffer.
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(f, limit+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > limit {
		return nil, &FileTooLargeError{Path: path, Limit: limit}
	}
	return buf.Bytes(), nil
}

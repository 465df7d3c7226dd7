//go:build unix

package datasets

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/puad-go/puad/internal/pyref"
)

// TestDecodeFileRefusesNonRegular: directories, named pipes and devices are
// refused at once, whatever they are called; the pipe has no writer, so
// opening it for reading would block.
func TestDecodeFileRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe.png")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		pyref.Unavailable(t, "mkfifo: "+err.Error())
	}
	folder := filepath.Join(dir, "folder.png")
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, kind string }{
		{fifo, "named pipe"},
		{folder, "directory"},
		{"/dev/zero", "character device"},
	}
	for _, tc := range tests {
		if _, err := os.Stat(tc.path); err != nil {
			t.Logf("skipping %s: %v", tc.path, err)
			continue
		}
		done := make(chan error, 1)
		go func() {
			_, err := DecodeFile(tc.path)
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrNotRegularFile) {
				t.Errorf("%s: error %v, want ErrNotRegularFile", tc.path, err)
			} else if want := "decode " + tc.path + ": not a regular file (" + tc.kind + ")"; err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: DecodeFile blocked", tc.path)
		}
	}
}

// TestDecodeFileSizeLimit: the byte limit holds both for files whose size
// is known beforehand and for files that report no size (/proc).
func TestDecodeFileSizeLimit(t *testing.T) {
	var tooLarge *FileTooLargeError
	_, err := DecodeOptions{MaxFileBytes: 100}.DecodeFile(testdata("decode/pil_rgb.png"))
	if !errors.As(err, &tooLarge) || tooLarge.Limit != 100 {
		t.Fatalf("error %v, want *FileTooLargeError", err)
	}
	if !strings.HasSuffix(err.Error(), ": file is over the limit of 100 bytes") {
		t.Errorf("error %q", err)
	}
	const proc = "/proc/self/status" // a regular file of size 0 and about 1 kB
	if fi, err := os.Stat(proc); err != nil || fi.Size() != 0 {
		pyref.Unavailable(t, "no size-less "+proc)
	}
	_, err = DecodeOptions{MaxFileBytes: 100}.DecodeFile(proc)
	if !errors.As(err, &tooLarge) {
		t.Errorf("%s: error %v, want *FileTooLargeError", proc, err)
	}
	if _, err := DecodeFile(proc); !errors.Is(err, ErrUnsupportedFormat) {
		t.Errorf("%s: error %v, want ErrUnsupportedFormat once read", proc, err)
	}
}

// TestDecodeFileFollowsLinks: a link to an image is read like the image.
func TestDecodeFileFollowsLinks(t *testing.T) {
	abs, err := filepath.Abs(testdata("decode/pil_rgb.png"))
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link.png")
	if err := os.Symlink(abs, link); err != nil {
		pyref.Unavailable(t, "symlink: "+err.Error())
	}
	a, err := DecodeFile(link)
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeFile(abs)
	if err != nil || string(a.Pix) != string(b.Pix) {
		t.Fatalf("link decodes differently (%v)", err)
	}
}

package datasets

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// corpusInput reads the []byte of a file of a fuzz seed corpus.
func corpusInput(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[1], "[]byte(") {
		t.Fatalf("%s: not a []byte corpus entry", path)
	}
	data, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(data)
}

// An image 0 pixels wide (here 808464432 or 813201456 rows high, which
// once took seconds to walk) is refused as corrupt at once, as Pillow
// refuses it.
func TestZeroSizeImage(t *testing.T) {
	for _, name := range []string{"FuzzDecodeBMP", "FuzzDecodeTIFF"} {
		data := corpusInput(t, filepath.Join("testdata", "fuzz", name, "regress-zero-width"))
		start := time.Now()
		_, err := DecodeOptions{}.Decode(data)
		if !errors.Is(err, ErrCorruptImage) || !strings.Contains(err.Error(), "0x") {
			t.Errorf("%s: %v, want ErrCorruptImage for a 0-pixel-wide image", name, err)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("%s: took %v", name, took)
		}
	}
}

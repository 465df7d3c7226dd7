package floattiff

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/puad-go/puad/internal/pyref"
)

// testMap is a 5×3 map with negative, tiny, large and non-integral values.
func testMap() ([]float32, int, int) {
	w, h := 5, 3
	pix := make([]float32, w*h)
	for i := range pix {
		pix[i] = float32(i)*0.37 - 1.5
	}
	pix[3] = math.SmallestNonzeroFloat32
	pix[7] = 3.4e38
	return pix, w, h
}

func TestRoundTrip(t *testing.T) {
	pix, w, h := testMap()
	var buf bytes.Buffer
	if err := Encode(&buf, pix, w, h); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.Len(), dataOffset+4*w*h; got != want {
		t.Errorf("file is %d bytes, want %d", got, want)
	}
	got, gw, gh, err := Decode(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if gw != w || gh != h {
		t.Fatalf("size %d×%d, want %d×%d", gw, gh, w, h)
	}
	for i := range pix {
		if math.Float32bits(got[i]) != math.Float32bits(pix[i]) {
			t.Fatalf("value %d: %v, want %v", i, got[i], pix[i])
		}
	}
}

func TestEncodeRejectsWrongLength(t *testing.T) {
	if err := Encode(&bytes.Buffer{}, make([]float32, 5), 2, 3); err == nil {
		t.Fatal("no error for 5 values of a 2×3 image")
	}
}

// Pillow opens the file as mode "F" with the size and the float32 values
// written.
func TestPillowReadsBack(t *testing.T) {
	pyref.Require(t)
	pix, w, h := testMap()
	path := filepath.Join(t.TempDir(), "map.tiff")
	if err := WriteFile(path, pix, w, h); err != nil {
		t.Fatal(err)
	}
	script := `
import sys
import numpy as np
from PIL import Image
im = Image.open(sys.argv[1])
a = np.asarray(im, dtype=np.float32)
print(im.mode, im.size[0], im.size[1], a.astype("<f4").tobytes().hex())
`
	out, err := exec.Command(pyref.Python, "-c", script, path).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	f := strings.Fields(string(out))
	if len(f) != 4 || f[0] != "F" || f[1] != "5" || f[2] != "3" {
		t.Fatalf("Pillow read %q, want mode F, size 5×3", out)
	}
	raw := make([]byte, 4*len(pix))
	for i, v := range pix {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	if f[3] != hex.EncodeToString(raw) {
		t.Errorf("Pillow's values differ:\n got %s\nwant %s", f[3], hex.EncodeToString(raw))
	}
}

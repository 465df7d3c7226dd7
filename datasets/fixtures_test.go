package datasets

import (
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// fixtures mirrors testdata/fixtures.json, written by
// testdata/gen_fixtures.py from Pillow 9.4 / torch 1.13 / torchvision 0.14.
type fixtures struct {
	Versions map[string]string `json:"versions"`
	Decode   []struct {
		File       string `json:"file"`
		Exact      bool   `json:"exact"`
		PillowMode string `json:"pillow_mode"`
		W          int    `json:"w"`
		H          int    `json:"h"`
		Expect     string `json:"expect"`
	} `json:"decode"`
	Resize []struct {
		Src    string  `json:"src"`
		W      int     `json:"w"`
		H      int     `json:"h"`
		Expect *string `json:"expect"` // nil: same size, expect the source
	} `json:"resize"`
	ResizeSynthetic []struct {
		W        int      `json:"w"`
		H        int      `json:"h"`
		OutW     int      `json:"out_w"`
		OutH     int      `json:"out_h"`
		RowCRC32 []uint32 `json:"row_crc32"`
	} `json:"resize_synthetic"`
	Tensor struct {
		ToTensorBits  []uint32   `json:"to_tensor_bits"`
		NormalizeBits [][]uint32 `json:"normalize_bits"`
		MeanBits      []uint32   `json:"mean_bits"`
		StdBits       []uint32   `json:"std_bits"`
		Pipelines     []struct {
			Src         string `json:"src"`
			Size        int    `json:"size"`
			Expect      string `json:"expect"`
			ExactDecode bool   `json:"exact_decode"`
		} `json:"pipelines"`
	} `json:"tensor"`
	MVTec struct {
		Entries []struct {
			Kind   string `json:"kind"`
			Path   string `json:"path"`
			Target string `json:"target"`
		} `json:"entries"`
		DatasetName string   `json:"dataset_name"`
		Category    string   `json:"category"`
		Train       []string `json:"train"`
		Valid       []string `json:"valid"`
		Classes     []string `json:"classes"`
		Test        [][2]any `json:"test"`
		Split       struct {
			Names []string `json:"names"`
			Perm  []int64  `json:"perm"`
			Train []string `json:"train"`
			Valid []string `json:"valid"`
		} `json:"split"`
	} `json:"mvtec"`
}

var (
	fixOnce sync.Once
	fix     fixtures
	fixErr  error
)

func loadFixtures(t testing.TB) *fixtures {
	t.Helper()
	fixOnce.Do(func() {
		var data []byte
		data, fixErr = os.ReadFile(filepath.Join("testdata", "fixtures.json"))
		if fixErr == nil {
			fixErr = json.Unmarshal(data, &fix)
		}
	})
	if fixErr != nil {
		t.Fatalf("fixtures: %v", fixErr)
	}
	return &fix
}

// testdata returns the path of a fixture file.
func testdata(name string) string { return filepath.Join("testdata", filepath.FromSlash(name)) }

func readGz(t testing.TB, name string) []byte {
	t.Helper()
	f, err := os.Open(testdata(name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	data, err := io.ReadAll(z)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return data
}

func readFloat32Gz(t testing.TB, name string) []float32 {
	t.Helper()
	data := readGz(t, name)
	out := make([]float32, len(data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return out
}

// byteDiff counts differing bytes and the largest absolute difference.
func byteDiff(a, b []uint8) (n, maxDiff int) {
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < 0 {
			d = -d
		}
		if d != 0 {
			n++
			if d > maxDiff {
				maxDiff = d
			}
		}
	}
	return n, maxDiff
}

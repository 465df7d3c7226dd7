package evaluate

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"testing"
)

// fullMapCase is one case of testdata/fullmap_fixtures.json
// (gen_fullmap_fixtures.py: PyTorch's bilinear interpolate).
type fullMapCase struct {
	Size int    `json:"size"`
	W    int    `json:"w"`
	H    int    `json:"h"`
	Map  string `json:"map"`
	Want string `json:"want"`
}

func float32sHex(t *testing.T, s string) []float32 {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// FullMap agrees bit for bit with torch.nn.functional.interpolate(...,
// mode="bilinear") (align_corners false), up- and downsampling.
func TestFullMapMatchesPyTorch(t *testing.T) {
	data, err := os.ReadFile("testdata/fullmap_fixtures.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx struct{ Cases []fullMapCase }
	if err := json.Unmarshal(data, &fx); err != nil {
		t.Fatal(err)
	}
	for _, c := range fx.Cases {
		got, err := FullMap(float32sHex(t, c.Map), c.Size, c.W, c.H)
		if err != nil {
			t.Fatal(err)
		}
		want := float32sHex(t, c.Want)
		if len(got) != c.W*c.H || len(want) != len(got) {
			t.Fatalf("%d→%d×%d: %d values, want %d", c.Size, c.W, c.H, len(got), len(want))
		}
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%d→%d×%d: value %d (x %d, y %d) is %v, PyTorch %v", c.Size, c.W, c.H, i, i%c.W, i/c.W, got[i], want[i])
			}
		}
	}
}

func TestFullMapRejectsWrongLength(t *testing.T) {
	if _, err := FullMap(make([]float32, 10), 4, 8, 8); err == nil {
		t.Fatal("no error for 10 values of a 4×4 map")
	}
}

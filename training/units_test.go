package training

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

func TestOutputSizes(t *testing.T) {
	for _, s := range []int{256, 128, 64, 100} {
		if p, e := paddedPDNOutputSize(s), extractorOutputSize(2*s); p != e {
			t.Errorf("size %d: padded PDN %d, extractor %d", s, p, e)
		}
	}
	if paddedPDNOutputSize(256) != 64 || pdnOutputSize(256) != 56 || aeOutputSize(256) != 56 || pdnOutputSize(128) != 24 {
		t.Error("output sizes differ from the reference's (64 padded, 56 unpadded at 256)")
	}
}

func TestLearningRateSchedule(t *testing.T) {
	// The reference lowers the rate after iteration 66500 (counting from 0) of 70000.
	for _, c := range []struct {
		it, total int
		want      float64
	}{{0, 70000, 1e-4}, {66500, 70000, 1e-4}, {66501, 70000, 1e-5}, {69999, 70000, 1e-5}, {47, 50, 1e-4}, {48, 50, 1e-5}} {
		if got := lrAt(c.it, c.total); got != c.want {
			t.Errorf("lrAt(%d, %d) = %g, want %g", c.it, c.total, got, c.want)
		}
	}
}

func TestCenterCrop(t *testing.T) {
	img := datasets.NewRGB(5, 4)
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	// (5-2)/2 = 1.5 rounds to 2 (half to even), (4-2)/2 = 1.
	c := CenterCrop(img, 2, 2)
	if r, _, _ := c.At(0, 0); r != img.Pix[3*(1*5+2)] {
		t.Errorf("crop starts at the wrong pixel: %v", c.Pix)
	}
	// Padding: 3 columns of black on the left, 4 on the right.
	p := CenterCrop(img, 4, 12)
	if p.W != 12 || p.H != 4 {
		t.Fatalf("padded crop %dx%d", p.W, p.H)
	}
	if r, _, _ := p.At(3, 0); r != img.Pix[0] {
		t.Errorf("image not at column 3: %v", p.Pix[:36])
	}
	if r, g, b := p.At(2, 0); r|g|b != 0 {
		t.Error("padding is not black")
	}
}

func TestSampleDistinct(t *testing.T) {
	g, err := tb.NewGenerator(1, tb.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for _, c := range []struct{ n, k int }{{1000000, 16}, {5, 5}, {3, 16}} {
		idx, err := sampleDistinct(g, c.n, c.k)
		if err != nil {
			t.Fatal(err)
		}
		if len(idx) != min(c.n, c.k) {
			t.Fatalf("%d indices, want %d", len(idx), min(c.n, c.k))
		}
		seen := map[int]bool{}
		for _, i := range idx {
			if i < 0 || i >= c.n || seen[i] {
				t.Fatalf("bad sample %v of %d", idx, c.n)
			}
			seen[i] = true
		}
	}
	// Uniform: every index of 0..9 is drawn first about as often.
	counts := make([]int, 10)
	for i := 0; i < 2000; i++ {
		idx, _ := sampleDistinct(g, 10, 3)
		counts[idx[0]]++
	}
	for i, c := range counts {
		if math.Abs(float64(c)-200) > 60 {
			t.Errorf("index %d drawn first %d times of 2000", i, c)
		}
	}
}

// TestCheckpointBytesRepeat saves the same state several times: the files
// must be equal byte for byte (no key order left to map iteration).
func TestCheckpointBytesRepeat(t *testing.T) {
	pdn, err := models.NewPDN(models.Small, models.TeacherChannels, false)
	if err != nil {
		t.Fatal(err)
	}
	defer models.Close(pdn)
	if err := initModules(1, pdn); err != nil {
		t.Fatal(err)
	}
	params := models.Parameters(pdn)
	opt := tb.NewAdam(params, learningRate, weightDecay)
	defer opt.Close()
	state := make([]tb.AdamState, len(params))
	for i := range state[:2] {
		info, err := params[i].Info()
		if err != nil {
			t.Fatal(err)
		}
		avg, err1 := tb.Zeros(info.Shape, info.DType, tb.CPU)
		sq, err2 := tb.Zeros(info.Shape, info.DType, tb.CPU)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		state[i] = tb.AdamState{Step: 3, ExpAvg: avg, ExpAvgSq: sq}
	}
	if err := opt.SetState(state); err != nil {
		t.Fatal(err)
	}
	s := tb.NewScope()
	defer s.Close()
	mu, sigma := s.T(tb.FromSlice([]float32{1, 2})), s.T(tb.FromSlice([]float32{3, 4}))
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	st := checkpointState{
		Iteration: 7, LogOffset: 12, LastLoss: 0.5, Config: `{"a":1}`,
		RNG:   map[string][]byte{streamData: {1, 2, 3}, streamDropout: {4, 5}, streamStats: {6}},
		Extra: map[string]*tb.Tensor{"mu": mu, "sigma": sigma},
	}
	dir := t.TempDir()
	var first []byte
	for i := 0; i < 6; i++ {
		// The archive inside a .pt file is named after the file: same name, other folders.
		path := filepath.Join(dir, fmt.Sprint(i), CheckpointFile)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := saveCheckpoint(path, st, []namedModule{{"teacher", pdn}}, opt); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = b
		} else if !bytes.Equal(b, first) {
			t.Fatalf("checkpoint %d differs from the first", i)
		}
	}
}

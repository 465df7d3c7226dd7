package testtree

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// FillWRN gives w's parameters and buffers seeded random values of sane
// scale: convolutions uniform in ±sqrt(3/fan-in), batch-norm weights and
// running variances in [0.75, 1.25), the other vectors in [-0.1, 0.1), and
// zero batch counters; the same values as fill_wrn in
// training/testdata/gen_fixtures.py, which the parity fixtures use.
func FillWRN(t testing.TB, w *models.WRNExtractor, seed uint64) {
	t.Helper()
	g, err := tb.NewGenerator(seed, tb.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for _, p := range w.NamedParams() {
		s := tb.NewScope()
		var v *tb.Tensor
		switch ext := filepath.Ext(p.Name); {
		case ext == ".num_batches_tracked":
			v = s.T(tb.Zeros(p.Shape, tb.Int64, tb.CPU))
		case len(p.Shape) == 4:
			u := s.T(tb.Rand(g, p.Shape, tb.Float32, tb.CPU))
			fanIn := p.Shape[1] * p.Shape[2] * p.Shape[3]
			v = s.T(tb.MulScalar(s.T(tb.SubScalar(s.T(tb.MulScalar(u, 2)), 1)), math.Sqrt(3/float64(fanIn))))
		case ext == ".weight" || ext == ".running_var":
			u := s.T(tb.Rand(g, p.Shape, tb.Float32, tb.CPU))
			v = s.T(tb.AddScalar(s.T(tb.MulScalar(u, 0.5)), 0.75))
		default:
			u := s.T(tb.Rand(g, p.Shape, tb.Float32, tb.CPU))
			v = s.T(tb.SubScalar(s.T(tb.MulScalar(u, 0.2)), 0.1))
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		(*p.Tensor).Close()
		*p.Tensor = s.Keep(v)
		s.Close()
	}
}

// WriteTinyWRN writes to path a wide ResNet extractor with one block per
// layer, filled by FillWRN with seed: a stand-in for torchvision's
// WideResNet101-2 weights that distils in seconds.
func WriteTinyWRN(t testing.TB, path string, seed uint64) {
	t.Helper()
	w, err := models.NewWRNExtractor([3]int{1, 1, 1}, models.TeacherChannels)
	if err != nil {
		t.Fatal(err)
	}
	defer models.Close(w)
	FillWRN(t, w, seed)
	sd, err := models.StateDict(w)
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	if err := tb.SaveStateDict(path, sd); err != nil {
		t.Fatal(err)
	}
}

package evaluate

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// randomModel is an EfficientAD model with default-initialised networks and
// random statistics and quantiles.
func randomModel(t testing.TB, imgSize int64) *models.EfficientAD {
	t.Helper()
	m, err := models.NewEfficientAD(models.Small, imgSize, tb.CPU)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	g, err := tb.NewGenerator(5, tb.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for _, mod := range []models.Module{m.Teacher, m.Student, m.AutoEncoder} {
		if err := models.InitDefault(mod, g, tb.CPU); err != nil {
			t.Fatal(err)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	vec := func(lo, hi float32) *tb.Tensor {
		v := make([]float32, models.TeacherChannels)
		for i := range v {
			v[i] = lo + (hi-lo)*r.Float32()
		}
		x, err := tb.FromSlice(v)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	m.Mu, m.Sigma = vec(-0.1, 0.1), vec(0.05, 0.2)
	for i, k := range models.QuantileKeys {
		q, err := tb.FromSlice([]float32{0.1 * float32(i+1)}, []int64{}...)
		if err != nil {
			t.Fatal(err)
		}
		m.Quantiles[k] = q
	}
	return m
}

// TestScorerUsesModelsMap requires the scorer's map and score to be those
// of models.EfficientAD's map functions (which training's quantiles use),
// bit for bit.
func TestScorerUsesModelsMap(t *testing.T) {
	const size = 128
	m := randomModel(t, size)
	r := rand.New(rand.NewPCG(1, 2))
	v := make([]float32, 3*size*size)
	for i := range v {
		v[i] = 2*r.Float32() - 1
	}
	s := tb.NewScope()
	defer s.Close()
	x := s.T(tb.FromSlice(v, 1, 3, size, size))
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	sc := &Scorer{Model: m, Extractor: StudentExtractor}
	outs, err := sc.Run(x, Need{Score: true, Map: true})
	if err != nil {
		t.Fatal(err)
	}
	var want []float32
	err = tb.InferenceMode(func() error {
		c := int64(models.TeacherChannels)
		tn := s.T(m.NormalizeTeacher(s.T(m.Teacher.Forward(x))))
		so := s.T(m.Student.Forward(x))
		ae := s.T(m.AutoEncoder.Forward(x))
		sST, sAE := s.T(tb.Narrow(so, 1, 0, c)), s.T(tb.Narrow(so, 1, c, c))
		if err := s.Err(); err != nil {
			return err
		}
		st, aeMap, err := m.Maps(tn, sST, sAE, ae)
		if err != nil {
			return err
		}
		s.Own(st)
		s.Own(aeMap)
		amap := s.T(m.AnomalyMap(st, aeMap))
		if err := s.Err(); err != nil {
			return err
		}
		want, err = amap.Float32s()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got := outs[0].Map
	if len(got) != size*size || len(want) != size*size {
		t.Fatalf("map of %d values, models' of %d; want %d", len(got), len(want), size*size)
	}
	mx := float32(math.Inf(-1))
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("map [%d] = %v, models' %v", i, got[i], want[i])
		}
		mx = max(mx, want[i])
	}
	if outs[0].Score != float64(mx) {
		t.Errorf("score %v, max of the map %v", outs[0].Score, mx)
	}
}

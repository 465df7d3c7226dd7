package models

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	tb "github.com/puad-go/puad/torchbind"
)

// randomTensor returns a tensor of the given shape with values drawn
// uniformly from [lo, hi), and the values.
func randomTensor(t *testing.T, r *rand.Rand, lo, hi float32, shape ...int64) (*tb.Tensor, []float32) {
	t.Helper()
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*r.Float32()
	}
	x, err := tb.FromSlice(v, shape...)
	if err != nil {
		t.Fatal(err)
	}
	return x, v
}

func values(t *testing.T, x *tb.Tensor) []float32 {
	t.Helper()
	v, err := x.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// mapModel is a model with random statistics and quantiles (no networks;
// the test frees them).
func mapModel(t *testing.T, r *rand.Rand, c, imgSize int64) (*EfficientAD, []float32, []float32) {
	t.Helper()
	m := &EfficientAD{ImgSize: imgSize, Device: tb.CPU, Quantiles: map[string]*tb.Tensor{}}
	t.Cleanup(func() {
		m.Mu.Close()
		m.Sigma.Close()
		for _, q := range m.Quantiles {
			q.Close()
		}
	})
	var mu, sigma []float32
	m.Mu, mu = randomTensor(t, r, -1, 1, c)
	m.Sigma, sigma = randomTensor(t, r, 0.5, 2, c)
	for i, k := range QuantileKeys {
		q, err := tb.FromSlice([]float32{0.01 + 0.1*float32(i) + 0.05*r.Float32()}, []int64{}...)
		if err != nil {
			t.Fatal(err)
		}
		m.Quantiles[k] = q
	}
	return m, mu, sigma
}

// TestAnomalyMapFromItsParts recomputes the teacher normalisation, the two
// maps and their combination from their definitions on random tensors.
func TestAnomalyMapFromItsParts(t *testing.T) {
	const c, h = 384, 6
	r := rand.New(rand.NewPCG(7, 8))
	m, mu, sigma := mapModel(t, r, c, h) // ImgSize h: the upsampling keeps the values
	s := tb.NewScope()
	defer s.Close()
	teacher, tv := randomTensor(t, r, -3, 3, 1, c, h, h)
	sST, sv := randomTensor(t, r, -3, 3, 1, c, h, h)
	sAE, av := randomTensor(t, r, -3, 3, 1, c, h, h)
	ae, ev := randomTensor(t, r, -3, 3, 1, c, h, h)
	for _, x := range []*tb.Tensor{teacher, sST, sAE, ae} {
		s.Own(x)
	}
	tn := s.T(m.NormalizeTeacher(teacher))
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	tnv := values(t, tn)
	for i, x := range tv {
		ch := i / (h * h)
		if want := (x - mu[ch]) / sigma[ch]; math.Float32bits(tnv[i]) != math.Float32bits(want) {
			t.Fatalf("normalised teacher [%d] = %v, want (t − mu)/sigma = %v", i, tnv[i], want)
		}
	}
	st, aeMap, err := m.Maps(tn, sST, sAE, ae)
	if err != nil {
		t.Fatal(err)
	}
	s.Own(st)
	s.Own(aeMap)
	if !slices.Equal(st.Shape(), []int64{1, 1, h, h}) || !slices.Equal(aeMap.Shape(), []int64{1, 1, h, h}) {
		t.Fatalf("map shapes %v, %v", st.Shape(), aeMap.Shape())
	}
	channelMean := func(a, b []float32, p int) float64 {
		var sum float64
		for ch := 0; ch < c; ch++ {
			d := float64(a[ch*h*h+p]) - float64(b[ch*h*h+p])
			sum += d * d
		}
		return sum / c
	}
	stv, aev := values(t, st), values(t, aeMap)
	for p := 0; p < h*h; p++ {
		for _, e := range []struct {
			name string
			got  float32
			want float64
		}{{"student-teacher", stv[p], channelMean(tnv, sv, p)}, {"autoencoder-student", aev[p], channelMean(ev, av, p)}} {
			if math.Abs(float64(e.got)-e.want) > 1e-5*e.want {
				t.Fatalf("%s map [%d] = %v, want %v", e.name, p, e.got, e.want)
			}
		}
	}
	amap := s.T(m.AnomalyMap(st, aeMap))
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(amap.Shape(), []int64{h, h}) {
		t.Fatalf("anomaly map shape %v", amap.Shape())
	}
	q := map[string]float64{}
	for k, v := range m.Quantiles {
		q[k] = float64(values(t, v)[0])
	}
	norm := func(x float32, a, b string) float64 { return 0.1 * (float64(x) - q[a]) / (q[b] - q[a]) }
	for p, got := range values(t, amap) {
		want := 0.5*norm(stv[p], QuantileStudentA, QuantileStudentB) + 0.5*norm(aev[p], QuantileAutoEncoderA, QuantileAutoEncoderB)
		if math.Abs(float64(got)-want) > 1e-5*math.Abs(want)+1e-7 {
			t.Fatalf("anomaly map [%d] = %v, want %v", p, got, want)
		}
	}
}

// TestMapsUpsample checks the upsampling of the maps against libtorch's
// bilinear interpolation applied to the channel means, bit for bit.
func TestMapsUpsample(t *testing.T) {
	const c, h, size = 384, 5, 16
	r := rand.New(rand.NewPCG(9, 10))
	m, _, _ := mapModel(t, r, c, size)
	s := tb.NewScope()
	defer s.Close()
	a, _ := randomTensor(t, r, -3, 3, 1, c, h, h)
	b, _ := randomTensor(t, r, -3, 3, 1, c, h, h)
	s.Own(a)
	s.Own(b)
	st, ae, err := m.Maps(a, b, b, a)
	if err != nil {
		t.Fatal(err)
	}
	s.Own(st)
	s.Own(ae)
	mean := s.T(tb.Mean(s.T(tb.PowScalar(s.T(tb.Sub(a, b)), 2)), []int64{1}, true))
	want := s.T(tb.UpsampleBilinear(mean, size, size, false))
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	wv, sv, av := values(t, want), values(t, st), values(t, ae)
	if len(sv) != size*size {
		t.Fatalf("%d values, want %d", len(sv), size*size)
	}
	for i := range wv {
		if math.Float32bits(sv[i]) != math.Float32bits(wv[i]) || math.Float32bits(av[i]) != math.Float32bits(wv[i]) {
			t.Fatalf("[%d]: maps %v, %v; upsampled channel mean %v", i, sv[i], av[i], wv[i])
		}
	}
}

package torchbind

import (
	"math"
	"slices"
	"testing"

	"github.com/puad-go/puad/internal/pyref"
)

// splitmix64 is a small deterministic hash for building large test inputs.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// lerp32 is torch's float32 lerp: start + w·(end − start) for w < 0.5,
// end − (end − start)·(1 − w) otherwise.
func lerp32(start, end, w float32) float32 {
	if w < 0.5 {
		return start + w*(end-start)
	}
	return end - (end-start)*(1-w)
}

// exactQuantile is the linear-interpolation quantile of sorted values, with
// the rank q·(n−1) computed in float64 and the interpolation done in float32
// as torch does it.
func exactQuantile(sorted []float32, q float64) float32 {
	rank := q * float64(len(sorted)-1)
	lo, hi := math.Floor(rank), math.Ceil(rank)
	return lerp32(sorted[int(lo)], sorted[int(hi)], float32(rank-lo))
}

// Above 2^24 elements torch.quantile refuses; Quantile finds the two order
// statistics with kthvalue instead. Checked against sorting in Go.
func TestQuantileAbove2p24(t *testing.T) {
	m := musts(t)
	const n = 1<<24 + 5
	// Values k/2^22 − 1 for pseudo-random 24-bit keys k: exact in float32,
	// in [-1, 3), with many ties (as in anomaly maps).
	key := func(i int) uint32 { return uint32(splitmix64(uint64(i)) >> 40) }
	value := func(k uint32) float32 { return float32(k)/(1<<22) - 1 }
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = value(key(i))
	}
	x := m(FromSlice(vals))
	defer x.Close()
	// The values are a monotone function of the keys, so a counting sort of
	// the keys sorts them.
	counts := make([]uint32, 1<<24)
	for i := range vals {
		counts[key(i)]++
	}
	vals = vals[:0]
	for k, c := range counts {
		for ; c > 0; c-- {
			vals = append(vals, value(uint32(k)))
		}
	}
	if !slices.IsSorted(vals) || len(vals) != n {
		t.Fatal("counting sort failed")
	}
	for _, q := range []float64{0.5, 0.9, 0.995, 0.999} {
		r := m(Quantile(x, q, nil, false))
		got, err := r.Item()
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := exactQuantile(vals, q)
		if e := math.Abs(got-float64(want)) / math.Max(math.Abs(float64(want)), 1e-30); e > tolElementwise {
			t.Errorf("q=%g: got %.9g, want %.9g (rel %.2g)", q, got, want, e)
		}
		rank := q * float64(n-1)
		lo, hi := vals[int(math.Floor(rank))], vals[int(math.Ceil(rank))]
		if float32(got) < lo || float32(got) > hi {
			t.Errorf("q=%g: %.9g outside [%.9g, %.9g]", q, got, lo, hi)
		}
	}

	// A NaN anywhere gives NaN, as torch.quantile does.
	idx := m(Arange(0, n, 1, Int64, CPU))
	defer idx.Close()
	mask := m(EqScalar(idx, 12345))
	defer mask.Close()
	nan := m(Scalar(math.NaN(), Float32, CPU))
	defer nan.Close()
	xn := m(Where(mask, nan, x))
	defer xn.Close()
	r := m(Quantile(xn, 0.9, nil, false))
	defer r.Close()
	if v, err := r.Item(); err != nil || !math.IsNaN(v) {
		t.Errorf("quantile with a NaN: %v %v", v, err)
	}
	if _, err := Quantile(x, 1.5, nil, false); err == nil {
		t.Error("q=1.5: no error")
	}
}

// At exactly 2^24 elements (the largest torch accepts) Quantile is
// torch.quantile itself: compare with the value torch computed on the same
// formula-built input.
func TestQuantileAt2p24(t *testing.T) {
	pyref.SkipShort(t, "sorts 2^24 values")
	m := musts(t)
	ref := fixtures(t).Quantile224
	if ref.N != 1<<24 || len(ref.Q) == 0 {
		t.Fatalf("fixture quantile_2_24: %+v", ref)
	}
	vals := make([]float32, ref.N)
	for i := range vals {
		vals[i] = float32((uint64(i)*ref.Mult)%uint64(ref.N)) / float32(ref.N)
	}
	x := m(FromSlice(vals))
	defer x.Close()
	for i, q := range ref.Q {
		r := m(Quantile(x, q, nil, false))
		got, err := r.Item()
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got != ref.Out[i] {
			t.Errorf("q=%g: got %.9g, torch %.9g", q, got, ref.Out[i])
		}
	}
}

package synth

import (
	"math"
	"math/rand/v2"
)

// rng is a small deterministic random source. It draws raw 64-bit words from
// a math/rand/v2 PCG generator (whose algorithm is fixed by its
// documentation) and derives floats and integers itself, so the sequence of
// values depends only on the seeds and not on the implementation of the
// convenience methods of rand.Rand.
type rng struct {
	src *rand.PCG
}

// newRNG returns a generator for the given seed and stream.
func newRNG(seed, stream uint64) *rng {
	return &rng{src: rand.NewPCG(seed, stream)}
}

// u64 returns a uniformly distributed 64-bit word.
func (r *rng) u64() uint64 { return r.src.Uint64() }

// float returns a value uniformly distributed in [0, 1).
func (r *rng) float() float64 {
	return float64(r.src.Uint64()>>11) * 0x1p-53
}

// uniform returns a value uniformly distributed in [lo, hi).
func (r *rng) uniform(lo, hi float64) float64 {
	return lo + (hi-lo)*r.float()
}

// sym returns a value uniformly distributed in [-a, a).
func (r *rng) sym(a float64) float64 { return r.uniform(-a, a) }

// intn returns a value in [0, n). It panics if n <= 0. The modulo bias is
// negligible for the small n used here.
func (r *rng) intn(n int) int {
	if n <= 0 {
		panic("synth: intn with n <= 0")
	}
	return int(r.src.Uint64() % uint64(n))
}

// angle returns a random angle in [0, 2π).
func (r *rng) angle() float64 { return r.uniform(0, 2*math.Pi) }

// mix64 is the SplitMix64 finaliser; it turns structured inputs (indices,
// pixel coordinates) into well-distributed words.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// streamID identifies the random stream of one image of one set of one
// variant, so that every image can be rendered independently of the others.
func streamID(v Variant, set Set, index int) uint64 {
	h := uint64(14695981039346656037) // FNV-1a offset basis
	for i := 0; i < len(v); i++ {
		h ^= uint64(v[i])
		h *= 1099511628211
	}
	return mix64(h ^ mix64(uint64(set)<<40^uint64(index)))
}

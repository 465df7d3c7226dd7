package training

import (
	"hash/fnv"

	tb "github.com/puad-go/puad/torchbind"
)

// Random streams. Every random decision of a run comes from a libtorch
// generator seeded from the run's seed, one generator per purpose, so that a
// run is a function of its seed and a checkpoint can store each stream's
// state:
//
//	init     initial weights (PyTorch's default Conv2d distribution)
//	data     which images, augmentations and grayscale conversions
//	dropout  the autoencoder's dropout masks (on the training device)
//	stats    grayscale conversions while computing the teacher statistics
const (
	streamInit    = "init"
	streamData    = "data"
	streamDropout = "dropout"
	streamStats   = "stats"
)

// subSeed derives the seed of one stream from the run's seed (FNV-1a of the
// stream name mixed in with SplitMix64's finaliser, since libtorch's CPU
// generator only uses the low 32 bits of its seed).
func subSeed(seed uint64, stream string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(stream))
	x := seed ^ h.Sum64()
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func newStream(seed uint64, stream string, dev tb.Device) (*tb.Generator, error) {
	return tb.NewGenerator(subSeed(seed, stream), dev)
}

// randInt draws one integer uniformly from [lo, hi).
func randInt(g *tb.Generator, lo, hi int64) (int64, error) {
	t, err := tb.RandInt(g, lo, hi, []int64{1}, tb.CPU)
	if err != nil {
		return 0, err
	}
	defer t.Close()
	v, err := tb.Values[int64](t)
	if err != nil {
		return 0, err
	}
	return v[0], nil
}

// randUniform draws one float32 uniformly from [0, 1), as torch.rand(1).
func randUniform(g *tb.Generator) (float32, error) {
	t, err := tb.Rand(g, []int64{1}, tb.Float32, tb.CPU)
	if err != nil {
		return 0, err
	}
	defer t.Close()
	v, err := tb.Values[float32](t)
	if err != nil {
		return 0, err
	}
	return v[0], nil
}

// sampleDistinct draws min(k, n) distinct indices of 0..n-1, uniformly and
// in random order, as the first k entries of a random permutation (the
// reference takes the first batch of a freshly shuffled loader): a partial
// Fisher–Yates shuffle over a virtual array, so it costs O(k) whatever n is.
func sampleDistinct(g *tb.Generator, n, k int) ([]int, error) {
	k = min(k, n)
	swapped := map[int]int{}
	at := func(i int) int {
		if v, ok := swapped[i]; ok {
			return v
		}
		return i
	}
	out := make([]int, k)
	for i := 0; i < k; i++ {
		j64, err := randInt(g, int64(i), int64(n))
		if err != nil {
			return nil, err
		}
		j := int(j64)
		vi, vj := at(i), at(j)
		swapped[i], swapped[j] = vj, vi
		out[i] = vj
	}
	return out, nil
}

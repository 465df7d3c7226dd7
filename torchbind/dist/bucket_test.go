package dist

import (
	"fmt"
	"testing"

	"github.com/puad-go/puad/torchbind"
)

// TestMakeBuckets: tensors go into buckets by dtype, in order of first
// appearance, and a bucket full to BucketBytes starts a new one.
func TestMakeBuckets(t *testing.T) {
	const quarter = BucketBytes / 4 / 4 // float32 elements in a quarter bucket
	specs := []struct {
		dt torchbind.DType
		n  int64
	}{
		{torchbind.Float32, quarter}, {torchbind.Float64, 3}, {torchbind.Float32, 2 * quarter},
		{torchbind.Float32, quarter}, {torchbind.Float32, 1}, {torchbind.Int64, 2}, {torchbind.Float32, 5 * quarter},
	}
	ts := make([]*torchbind.Tensor, len(specs))
	for i, s := range specs {
		x, err := torchbind.Zeros([]int64{s.n}, s.dt, torchbind.CPU)
		if err != nil {
			t.Fatal(err)
		}
		ts[i] = x
	}
	defer closeAll(ts)
	bs, err := makeBuckets(ts, false)
	if err != nil {
		t.Fatal(err)
	}
	index := map[*torchbind.Tensor]int{}
	for i, x := range ts {
		index[x] = i
	}
	var got [][]int
	for _, b := range bs {
		var ids []int
		for _, x := range b.ts {
			ids = append(ids, index[x])
		}
		got = append(got, ids)
	}
	// float32: 0, 2 and 3 fill a bucket exactly; 4 starts the next one,
	// and 6 does not fit beside it, so it gets a bucket of its own.
	want := "[[0 2 3] [1] [4] [5] [6]]"
	if fmt.Sprint(got) != want {
		t.Errorf("buckets %v, want %s", got, want)
	}
	if _, err := makeBuckets(ts, true); err == nil {
		t.Error("an int64 tensor in a float-only bucket list was accepted")
	}
}

package dist

import (
	"fmt"

	"github.com/puad-go/puad/torchbind"
)

// BucketBytes is the most bytes one collective carries (as
// DistributedDataParallel's default bucket of 25 MiB); a larger tensor gets
// a bucket of its own.
const BucketBytes = 25 << 20

// bucket is a run of tensors of one dtype and device that travel together
// as one flat tensor.
type bucket struct {
	ts     []*torchbind.Tensor
	shapes [][]int64
	bytes  int64
}

// makeBuckets groups ts by dtype and device, in order of first appearance,
// and splits each group into buckets of at most BucketBytes.
func makeBuckets(ts []*torchbind.Tensor, floatOnly bool) ([]bucket, error) {
	type key struct {
		dt  torchbind.DType
		dev torchbind.Device
	}
	open := map[key]int{} // key -> index in out of its bucket being filled
	var out []bucket
	for i, t := range ts {
		info, err := t.Info()
		if err != nil {
			return nil, fmt.Errorf("tensor %d: %w", i, err)
		}
		if floatOnly && !isFloat(info.DType) {
			return nil, fmt.Errorf("tensor %d: average of %v values", i, info.DType)
		}
		k := key{info.DType, info.Device}
		n := numel(info.Shape) * int64(info.DType.Size())
		j, ok := open[k]
		if !ok || (out[j].bytes > 0 && out[j].bytes+n > BucketBytes) {
			out = append(out, bucket{})
			j = len(out) - 1
			open[k] = j
		}
		out[j].ts = append(out[j].ts, t)
		out[j].shapes = append(out[j].shapes, info.Shape)
		out[j].bytes += n
	}
	return out, nil
}

func isFloat(dt torchbind.DType) bool {
	switch dt {
	case torchbind.Float32, torchbind.Float64, torchbind.Float16, torchbind.BFloat16:
		return true
	}
	return false
}

func numel(shape []int64) int64 {
	n := int64(1)
	for _, s := range shape {
		n *= s
	}
	return n
}

// flatten returns a new one-dimensional tensor holding the bucket's tensors
// one after another.
func (b bucket) flatten() (*torchbind.Tensor, error) {
	flats := make([]*torchbind.Tensor, 0, len(b.ts))
	defer func() { closeAll(flats) }()
	for _, t := range b.ts {
		f, err := torchbind.Flatten(t)
		if err != nil {
			return nil, err
		}
		flats = append(flats, f)
	}
	return torchbind.Cat(flats, 0)
}

// unflatten copies consecutive slices of buf back into the bucket's tensors.
func (b bucket) unflatten(buf *torchbind.Tensor) error {
	var off int64
	for i, t := range b.ts {
		n := numel(b.shapes[i])
		if err := copySlice(t, buf, off, n, b.shapes[i]); err != nil {
			return fmt.Errorf("copy back tensor %d: %w", i, err)
		}
		off += n
	}
	return nil
}

// copySlice copies buf[off:off+n], viewed with shape, into dst.
func copySlice(dst, buf *torchbind.Tensor, off, n int64, shape []int64) error {
	part, err := torchbind.Narrow(buf, 0, off, n)
	if err != nil {
		return err
	}
	defer part.Close()
	view, err := torchbind.View(part, shape...)
	if err != nil {
		return err
	}
	defer view.Close()
	return torchbind.CopyInto(dst, view)
}

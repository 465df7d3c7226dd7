package datasets

import (
	"context"

	"github.com/puad-go/puad/internal/prefetch"
)

// Item is one loaded image delivered by Stream.
type Item struct {
	Index int       // position in the input path list
	Path  string    // the file
	Data  []float32 // the loaded tensor; nil when Err is set
	Err   error     // load error, naming the file
}

// LoadFunc loads the tensor of one image file.
type LoadFunc func(path string) ([]float32, error)

// Stream loads paths with LoadImage(path, size) (decode, resize, ToTensor,
// ImageNet Normalize) in parallel and delivers the results in input order.
// See StreamFunc for the meaning of workers and ahead.
func Stream(ctx context.Context, paths []string, size, workers, ahead int) <-chan Item {
	return DecodeOptions{}.Stream(ctx, paths, size, workers, ahead)
}

// Stream is the package-level Stream decoding with o.
func (o DecodeOptions) Stream(ctx context.Context, paths []string, size, workers, ahead int) <-chan Item {
	return StreamFunc(ctx, paths, workers, ahead, func(p string) ([]float32, error) {
		return o.LoadImage(p, size)
	})
}

// StreamFunc runs load on every path in workers goroutines (runtime.NumCPU()
// when workers <= 0) and sends one Item per path, in input order, on the
// returned channel, which is closed at the end.
//
// At most ahead items (2·workers when ahead <= 0) are loaded or being loaded
// beyond the one the consumer is receiving, so memory stays bounded however
// long the list is. A failed load is delivered as an Item with Err set and
// the stream goes on; a consumer that wants to stop cancels ctx. When ctx is
// cancelled the stream stops early: the channel is closed, possibly before
// all items were sent, and every goroutine exits. The consumer should
// therefore check ctx.Err() after the channel is closed, or drain it.
func StreamFunc(ctx context.Context, paths []string, workers, ahead int, load LoadFunc) <-chan Item {
	i := 0
	next := func() (int, bool, error) {
		if i == len(paths) {
			return 0, false, nil
		}
		i++
		return i - 1, true, nil
	}
	work := func(i int) Item {
		it := Item{Index: i, Path: paths[i]}
		if it.Data, it.Err = load(it.Path); it.Err != nil {
			it.Data = nil
		}
		return it
	}
	fail := func(i int, err error) Item { return Item{Index: i, Path: paths[i], Err: err} }
	return prefetch.Map(ctx, workers, ahead, next, work, fail)
}

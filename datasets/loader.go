package datasets

import (
	"context"
	"runtime"
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
	return StreamFunc(ctx, paths, workers, ahead, func(p string) ([]float32, error) {
		return LoadImage(p, size)
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
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	if ahead <= 0 {
		ahead = 2 * workers
	}
	if workers > ahead {
		workers = ahead
	}
	out := make(chan Item)

	type job struct {
		index  int
		result chan Item // capacity 1, receives exactly one Item
	}
	jobs := make(chan job)
	// pending carries the result slots in input order. Its capacity bounds
	// how far production runs ahead of delivery.
	pending := make(chan chan Item, ahead)

	// Producer: hands out jobs in order, blocking when ahead slots are taken.
	go func() {
		defer close(jobs)
		defer close(pending)
		for i := range paths {
			slot := make(chan Item, 1)
			select {
			case pending <- slot:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- job{index: i, result: slot}:
			case <-ctx.Done():
				return
			}
		}
	}()

	for w := 0; w < workers; w++ {
		go func() {
			for j := range jobs {
				it := Item{Index: j.index, Path: paths[j.index]}
				if ctx.Err() != nil {
					it.Err = ctx.Err()
				} else {
					it.Data, it.Err = load(it.Path)
					if it.Err != nil {
						it.Data = nil
					}
				}
				j.result <- it // never blocks: capacity 1, one send
			}
		}()
	}

	// Deliverer: waits for each slot in order and forwards it.
	go func() {
		defer close(out)
		for slot := range pending {
			var it Item
			select {
			case it = <-slot:
			case <-ctx.Done():
				return
			}
			if ctx.Err() != nil {
				return
			}
			select {
			case out <- it:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

package training

import (
	"context"
	"runtime"
)

// fetched is one prepared input: the job that described it, the work's
// result, or the error of either.
type fetched[J, R any] struct {
	Job J
	Out R
	Err error
}

// prefetch prepares training inputs ahead of the training step. It calls
// next from a single goroutine, in sequence, until next reports that there
// is no more work (so random draws made in next happen in a fixed order,
// independent of timing); it runs work on the jobs in workers goroutines
// (runtime.NumCPU() when workers <= 0) and delivers the results on the
// returned channel in job order. At most ahead jobs are prepared beyond the
// one being delivered, which bounds memory.
//
// An error from next is delivered as a last item. When ctx is cancelled
// every goroutine exits and the channel is closed, possibly before all
// items were delivered. Results should be plain Go values: an undelivered
// result is dropped.
func prefetch[J, R any](ctx context.Context, workers, ahead int, next func() (J, bool, error), work func(J) (R, error)) <-chan fetched[J, R] {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	if ahead <= 0 {
		ahead = 2 * workers
	}
	workers = min(workers, ahead)
	type job struct {
		j    J
		slot chan fetched[J, R]
	}
	out := make(chan fetched[J, R])
	jobs := make(chan job)
	pending := make(chan chan fetched[J, R], ahead)

	go func() {
		defer close(jobs)
		defer close(pending)
		for {
			j, ok, err := next()
			if !ok && err == nil {
				return
			}
			slot := make(chan fetched[J, R], 1)
			if err != nil {
				slot <- fetched[J, R]{Job: j, Err: err}
			}
			select {
			case pending <- slot:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
			select {
			case jobs <- job{j: j, slot: slot}:
			case <-ctx.Done():
				return
			}
		}
	}()

	for w := 0; w < workers; w++ {
		go func() {
			for jb := range jobs {
				f := fetched[J, R]{Job: jb.j}
				if err := ctx.Err(); err != nil {
					f.Err = err
				} else {
					f.Out, f.Err = work(jb.j)
				}
				jb.slot <- f // capacity 1, one send: never blocks
			}
		}()
	}

	go func() {
		defer close(out)
		for slot := range pending {
			var f fetched[J, R]
			select {
			case f = <-slot:
			case <-ctx.Done():
				return
			}
			select {
			case out <- f:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

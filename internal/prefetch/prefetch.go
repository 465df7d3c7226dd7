// Package prefetch is puad's one ordered, bounded, parallel pipeline: it
// prepares inputs (decoded images, augmented batches) in worker goroutines
// ahead of the consumer and delivers them in the order the jobs were drawn.
package prefetch

import (
	"context"
	"runtime"
)

// Result is one prepared input: the job that described it, the work's
// result, or the error of either.
type Result[J, R any] struct {
	Job J
	Out R
	Err error
}

// Ordered calls next from a single goroutine, in sequence, until next
// reports that there is no more work (so random draws made in next happen
// in a fixed order, independent of timing); it runs work on the jobs in
// workers goroutines (runtime.NumCPU() when workers <= 0) and delivers the
// results on the returned channel in job order. At most ahead jobs (2·workers
// when ahead <= 0) are prepared beyond the one being delivered, which
// bounds memory.
//
// An error from next is delivered as a last item; an error from work is
// delivered in its place and the pipeline goes on. When ctx is cancelled
// every goroutine exits and the channel is closed, possibly before all
// items were delivered: a consumer checks ctx.Err() after the channel is
// closed. Results should be plain Go values: an undelivered result is
// dropped.
func Ordered[J, R any](ctx context.Context, workers, ahead int, next func() (J, bool, error), work func(J) (R, error)) <-chan Result[J, R] {
	return Map(ctx, workers, ahead, next, func(j J) Result[J, R] {
		out, err := work(j)
		return Result[J, R]{Job: j, Out: out, Err: err}
	}, func(j J, err error) Result[J, R] {
		return Result[J, R]{Job: j, Err: err}
	})
}

// Map is Ordered for work that folds its own errors into its result type
// T: fail makes the item for a job that failed before work ran (an error
// from next, or a cancelled ctx). Ordered is Map with T = Result[J, R].
func Map[J, T any](ctx context.Context, workers, ahead int, next func() (J, bool, error), work func(J) T, fail func(J, error) T) <-chan T {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	if ahead <= 0 {
		ahead = 2 * workers
	}
	workers = min(workers, ahead)
	type job struct {
		j    J
		slot chan T
	}
	out := make(chan T)
	jobs := make(chan job)
	// pending carries the result slots in job order; its capacity bounds
	// how far production runs ahead of delivery.
	pending := make(chan chan T, ahead)

	go func() {
		defer close(jobs)
		defer close(pending)
		for {
			j, ok, err := next()
			if !ok && err == nil {
				return
			}
			slot := make(chan T, 1)
			if err != nil {
				slot <- fail(j, err)
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
				if err := ctx.Err(); err != nil {
					jb.slot <- fail(jb.j, err)
				} else {
					jb.slot <- work(jb.j) // capacity 1, one send: never blocks
				}
			}
		}()
	}

	go func() {
		defer close(out)
		for slot := range pending {
			var f T
			select {
			case f = <-slot:
			case <-ctx.Done():
				return
			}
			if ctx.Err() != nil {
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

package torchbind

import (
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"testing"
)

// onThreads runs phases on n goroutines, each locked to its own OS thread
// for the whole run (so they are n distinct threads), with every goroutine
// finishing a phase before between(phase) runs and the next phase starts.
// It returns the thread ids and the first error.
func onThreads(n, phases int, phase func(g, p int) error, between func(p int)) ([]int, error) {
	tids := make([]int, n)
	errs := make([]error, n)
	start := make([]chan struct{}, phases)
	for p := range start {
		start[p] = make(chan struct{})
	}
	var done sync.WaitGroup
	var wg sync.WaitGroup
	wg.Add(n)
	for g := 0; g < n; g++ {
		go func(g int) {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			tids[g] = syscall.Gettid()
			for p := 0; p < phases; p++ {
				<-start[p]
				if err := phase(g, p); err != nil && errs[g] == nil {
					errs[g] = fmt.Errorf("goroutine %d (thread %d), phase %d: %w", g, tids[g], p, err)
				}
				done.Done()
			}
		}(g)
	}
	for p := 0; p < phases; p++ {
		between(p)
		done.Add(n)
		close(start[p])
		done.Wait()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return tids, err
		}
	}
	return tids, nil
}

// SetNumThreads reaches every OS thread, including threads that already ran
// libtorch code with another count.
func TestNumThreadsOnEveryThread(t *testing.T) {
	prev := NumThreads()
	defer SetNumThreads(prev)
	x := floats32(t, []float32{1, 2, 3, 4}, 2, 2)
	defer x.Close()

	// Phase 0 runs with whatever count is set, so that every thread has run
	// libtorch code before the count changes.
	counts := []int{0, 1, 2, 1}
	tids, err := onThreads(8, len(counts), func(g, p int) error {
		y, err := MulScalar(x, 2) // some libtorch work on this thread
		if err != nil {
			return err
		}
		y.Close()
		if want := counts[p]; want > 0 {
			if got := NumThreads(); got != want {
				return fmt.Errorf("NumThreads() = %d after SetNumThreads(%d)", got, want)
			}
		}
		return nil
	}, func(p int) {
		if counts[p] > 0 {
			SetNumThreads(counts[p])
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, id := range tids {
		seen[id] = true
	}
	if len(seen) != len(tids) {
		t.Errorf("goroutines shared OS threads: %v", tids)
	}
	// Unlocked goroutines, wherever they land, agree too.
	SetNumThreads(2)
	var wg sync.WaitGroup
	bad := make(chan int, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n := NumThreads(); n != 2 {
				bad <- n
			}
		}()
	}
	wg.Wait()
	close(bad)
	for n := range bad {
		t.Errorf("a goroutine saw NumThreads() = %d, want 2", n)
	}
}

// NoGrad switches autograd off for the goroutine that runs it, on whatever
// thread it is, and restores it after; other goroutines are unaffected.
func TestNoGradInGoroutines(t *testing.T) {
	p := floats32(t, []float32{1, 2, 3}, 3)
	defer p.Close()
	if err := p.SetRequiresGrad(true); err != nil {
		t.Fatal(err)
	}
	// forward returns whether sum(p·p) requires grad, and whether Backward on it fails.
	forward := func() (requiresGrad, backwardFails bool, err error) {
		s := NewScope()
		defer s.Close()
		loss := s.T(Sum(s.T(Mul(p, p)), nil, false))
		if err := s.Err(); err != nil {
			return false, false, err
		}
		info, err := loss.Info()
		if err != nil {
			return false, false, err
		}
		return info.RequiresGrad, loss.Backward() != nil, nil
	}

	const n = 16
	_, err := onThreads(n, 2, func(g, phase int) error {
		if phase == 0 {
			// Half the goroutines run a forward inside NoGrad while the other
			// half run one with autograd on, at the same time.
			if g%2 == 0 {
				err := NoGrad(func() error {
					if GradEnabled() {
						return fmt.Errorf("GradEnabled inside NoGrad")
					}
					rg, fails, err := forward()
					if err != nil {
						return err
					}
					if rg || !fails {
						return fmt.Errorf("forward inside NoGrad: requires grad %v, backward fails %v", rg, fails)
					}
					// WithGrad nested inside NoGrad turns it back on.
					return WithGrad(func() error {
						if !GradEnabled() {
							return fmt.Errorf("GradEnabled false inside WithGrad")
						}
						return nil
					})
				})
				if err != nil {
					return err
				}
				if !GradEnabled() {
					return fmt.Errorf("GradEnabled false after NoGrad")
				}
				return nil
			}
			rg, fails, err := forward()
			if err != nil {
				return err
			}
			if !rg || fails {
				return fmt.Errorf("forward with grad: requires grad %v, backward fails %v", rg, fails)
			}
			return nil
		}
		if !GradEnabled() {
			return fmt.Errorf("GradEnabled false in a later phase")
		}
		return nil
	}, func(int) {})
	if err != nil {
		t.Fatal(err)
	}

	// InferenceMode: results need no grad and grad mode is restored after.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err = InferenceMode(func() error {
		rg, _, err := forward()
		if err != nil {
			return err
		}
		if rg || GradEnabled() {
			return fmt.Errorf("inside InferenceMode: requires grad %v, grad enabled %v", rg, GradEnabled())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !GradEnabled() {
		t.Error("GradEnabled false after InferenceMode")
	}
	// An error from the function comes back.
	if err := NoGrad(func() error { return fmt.Errorf("boom") }); err == nil || err.Error() != "boom" {
		t.Errorf("NoGrad error: %v", err)
	}
}

// Package fuzzguard holds the fuzz targets to the project's limits on the
// cost of one input: no input under MaxInput bytes may take longer than
// Time or allocate more than Alloc bytes in total. Go's fuzzer checks
// neither, so every fuzz target runs its body through Check.
//
// The allocation count is the runtime's cumulative heap allocation counter
// (runtime/metrics "/gc/heap/allocs:bytes"), read before and after the
// input without stopping the world. A fuzz worker is a process of its own
// that runs one input at a time, so the difference belongs to that input.
package fuzzguard

import (
	"fmt"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Limits bounds the cost of one input.
type Limits struct {
	// Time is the most wall time one input may take.
	Time time.Duration
	// Alloc is the most bytes one input may allocate, freed or not.
	Alloc uint64
	// MaxInput is the input size from which the limits no longer apply
	// (the input still runs).
	MaxInput int
	// Hang, when positive, is the wall time after which an input under
	// MaxInput bytes that has not returned is taken to hang: the process dies with every
	// goroutine's stack, which the fuzzer records as a crash of that input.
	Hang time.Duration
}

// Default is the project's requirement: under 1 MiB of input, at most 5 s
// and 1 GiB of allocation per input; an input still running after 30 s
// hangs.
var Default = Limits{Time: 5 * time.Second, Alloc: 1 << 30, MaxInput: 1 << 20, Hang: 30 * time.Second}

// ExceededError reports an input that went over a limit.
type ExceededError struct {
	Size  int           // input bytes
	Took  time.Duration // wall time of the input
	Bytes uint64        // bytes allocated during the input
	Limit Limits
}

func (e *ExceededError) Error() string {
	return fmt.Sprintf("input of %d bytes took %v and allocated %d bytes (limits: %v, %d bytes)",
		e.Size, e.Took, e.Bytes, e.Limit.Time, e.Limit.Alloc)
}

// TB is the part of testing.TB that Check uses.
type TB interface {
	Helper()
	Fatal(args ...any)
}

// Check runs fn, the body of a fuzz target, on an input of size bytes and
// fails t when it went over Default.
func Check(t TB, size int, fn func()) {
	t.Helper()
	if err := Default.Measure(size, fn); err != nil {
		t.Fatal(err)
	}
}

const allocsMetric = "/gc/heap/allocs:bytes"

// Measure runs fn on an input of size bytes and returns an
// *ExceededError when it went over l (nil for inputs of MaxInput bytes or
// more).
func (l Limits) Measure(size int, fn func()) error {
	sample := []metrics.Sample{{Name: allocsMetric}}
	if l.Hang > 0 && size < l.MaxInput {
		watchdog := time.AfterFunc(l.Hang, func() { hang(size, l.Hang) })
		defer watchdog.Stop()
	}
	metrics.Read(sample)
	before := sample[0].Value.Uint64()
	start := time.Now()
	fn()
	took := time.Since(start)
	metrics.Read(sample)
	allocated := sample[0].Value.Uint64() - before
	if size >= l.MaxInput || (took <= l.Time && allocated <= l.Alloc) {
		return nil
	}
	return &ExceededError{Size: size, Took: took, Bytes: allocated, Limit: l}
}

// hang ends the process with every goroutine's stack.
func hang(size int, after time.Duration) {
	fmt.Fprintf(os.Stderr, "fuzzguard: input of %d bytes still running after %v\n", size, after)
	debug.SetTraceback("all")
	panic(fmt.Sprintf("fuzzguard: input of %d bytes hangs", size))
}

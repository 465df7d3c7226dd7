package fuzzguard

import (
	"errors"
	"testing"
	"time"
)

var sink []byte

// An input that allocates 1.1 GiB in 1 MiB pieces, none of them live for
// long, goes over the default allocation limit.
func TestAllocationInPieces(t *testing.T) {
	l := Default
	l.Time = time.Minute
	err := l.Measure(100, func() {
		for i := 0; i < 1126; i++ {
			sink = make([]byte, 1<<20)
		}
		sink = nil
	})
	var e *ExceededError
	if !errors.As(err, &e) {
		t.Fatalf("1.1 GiB passed: %v", err)
	}
	if e.Bytes < 1126<<20 {
		t.Errorf("counted %d bytes, want at least %d", e.Bytes, 1126<<20)
	}
}

// A sleep longer than the time limit fails; the limits are scaled down
// (5.1 s against 5 s becomes 51 ms against 50 ms).
func TestSlowInput(t *testing.T) {
	l := Limits{Time: 50 * time.Millisecond, Alloc: 1 << 30, MaxInput: 1 << 20}
	err := l.Measure(100, func() { time.Sleep(51 * time.Millisecond) })
	var e *ExceededError
	if !errors.As(err, &e) || e.Took < 51*time.Millisecond {
		t.Fatalf("51 ms passed a 50 ms limit: %v", err)
	}
}

// Inputs within the limits pass, and so do inputs of MaxInput bytes or
// more whatever they cost.
func TestWithinLimits(t *testing.T) {
	l := Limits{Time: time.Second, Alloc: 1 << 20, MaxInput: 1000}
	if err := l.Measure(999, func() { sink = make([]byte, 1000) }); err != nil {
		t.Errorf("small input: %v", err)
	}
	if err := l.Measure(1000, func() { sink = make([]byte, 2<<20) }); err != nil {
		t.Errorf("input at MaxInput: %v", err)
	}
	if err := l.Measure(999, func() { sink = make([]byte, 2<<20) }); err == nil {
		t.Error("2 MiB passed a 1 MiB limit")
	}
	sink = nil
}

type recorder struct{ failed bool }

func (r *recorder) Helper()      {}
func (r *recorder) Fatal(...any) { r.failed = true }

// Check fails the test only for an input over the default limits.
func TestCheck(t *testing.T) {
	var r recorder
	Check(&r, 10, func() {})
	if r.failed {
		t.Fatal("a cheap input failed")
	}
	Check(&r, 10, func() {
		for i := 0; i < 1100; i++ {
			sink = make([]byte, 1<<20)
		}
		sink = nil
	})
	if !r.failed {
		t.Fatal("1.1 GB passed Check")
	}
}

// BenchmarkMeasure is the cost the guard adds to each input.
func BenchmarkMeasure(b *testing.B) {
	for i := 0; i < b.N; i++ {
		_ = Default.Measure(10, func() {})
	}
}

package gcsettle

import (
	"runtime"
	"sync/atomic"
	"testing"
)

// TestSettleRunsFinalizers checks that a finalizer of an unreachable
// object has run when Settle returns.
func TestSettleRunsFinalizers(t *testing.T) {
	var ran atomic.Int32
	func() {
		obj := new([64]byte)
		runtime.SetFinalizer(obj, func(*[64]byte) { ran.Add(1) })
	}()
	Settle()
	if ran.Load() != 1 {
		t.Fatalf("finalizer ran %d times before Settle returned, want 1", ran.Load())
	}
}

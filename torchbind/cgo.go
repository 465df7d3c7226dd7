package torchbind

/*
#cgo CFLAGS: -I${SRCDIR}
#cgo LDFLAGS: -L${SRCDIR}/../build -ltorchbind -Wl,-rpath,${SRCDIR}/../build -Wl,-rpath,$ORIGIN/lib -Wl,-rpath,$ORIGIN/../lib
#include <stdlib.h>
#include "torchbind.h"
*/
import "C"

import (
	"fmt"
	"runtime"
)

func init() {
	// One thread count for every OS thread, from the start: libtorch would
	// otherwise give each new thread its own default, and results of
	// multi-threaded kernels depend (in the last bits) on the thread count.
	SetNumThreads(DefaultNumThreads())
	// TF32 off (libtorch allows it in cuDNN by default): CUDA float32 then
	// means float32, as on the CPU. The call cannot fail without CUDA either.
	_ = SetCUDAMath(CUDAMath{})
}

// DefaultNumThreads is libtorch's default intra-op thread count, the one
// PyTorch uses in Python: $OMP_NUM_THREADS (or $MKL_NUM_THREADS) when set,
// else the number of physical cores. Using the same count as the reference
// run gives the same floating-point results. Without setting it explicitly,
// kernels that use OpenMP directly (oneDNN convolutions) would run with
// OpenMP's own default on threads libtorch has not initialised yet.
func DefaultNumThreads() int {
	return int(C.tb_default_num_threads())
}

// Error is a failure reported by libtorch (or by the shim's argument checks),
// with the name of the operation that failed.
type Error struct {
	Op  string // the operation, e.g. "conv2d"
	Msg string // libtorch's message
}

func (e *Error) Error() string { return fmt.Sprintf("torchbind: %s: %s", e.Op, e.Msg) }

// check turns a shim error string into a Go error and frees the string.
func check(op string, msg *C.char) error {
	if msg == nil {
		return nil
	}
	s := C.GoString(msg)
	C.tb_free_string(msg)
	return &Error{Op: op, Msg: s}
}

// TorchVersion is the version of the libtorch the shim was compiled against.
func TorchVersion() string { return C.GoString(C.tb_torch_version()) }

// CUDAAvailable reports whether libtorch was built with CUDA and sees a GPU.
func CUDAAvailable() bool { return C.tb_cuda_available() != 0 }

// CUDADeviceCount is the number of CUDA devices libtorch sees.
func CUDADeviceCount() int { return int(C.tb_cuda_device_count()) }

// SetNumThreads sets libtorch's intra-op thread count for the whole process:
// the shim applies it to every OS thread a later call runs on. n <= 0 is ignored.
func SetNumThreads(n int) { C.tb_set_num_threads(C.int(n)) }

// NumThreads is the intra-op thread count seen by the calling thread.
func NumThreads() int { return int(C.tb_get_num_threads()) }

// NoGrad runs f with autograd recording disabled. The goroutine is locked to
// its OS thread for the duration, since grad mode is per thread in libtorch;
// goroutines that f starts do not inherit the mode.
func NoGrad(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := C.tb_set_grad_enabled(0)
	defer C.tb_set_grad_enabled(prev)
	return f()
}

// WithGrad runs f with autograd recording enabled (the default), for a
// training step nested inside a NoGrad region.
func WithGrad(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := C.tb_set_grad_enabled(1)
	defer C.tb_set_grad_enabled(prev)
	return f()
}

// GradEnabled reports the grad mode of the calling thread. Only meaningful
// inside NoGrad/WithGrad, where the goroutine is locked to its thread.
func GradEnabled() bool { return C.tb_is_grad_enabled() != 0 }

// InferenceMode runs f in libtorch's inference mode (no autograd bookkeeping
// at all; tensors created inside cannot be used in autograd later). Like
// NoGrad it locks the goroutine to its thread for the region.
func InferenceMode(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var g C.tb_guard
	if err := check("inference_mode", C.tb_inference_mode_enter(&g)); err != nil {
		return err
	}
	defer C.tb_guard_exit(g)
	return f()
}

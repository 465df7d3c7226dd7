package torchbind

import (
	"runtime"
	"unsafe"
)

// WithHandle hands t's libtorch handle to f, for a package with its own part
// of the shim (torchbind/dist), whose C functions take the same tb_tensor
// handles. The handle is nil for a nil or closed tensor. t stays reachable,
// and so its handle valid, until f has returned; f must not keep the handle.
func WithHandle(t *Tensor, f func(h unsafe.Pointer) error) error {
	var h unsafe.Pointer
	if t != nil {
		h = unsafe.Pointer(t.h)
	}
	err := f(h)
	runtime.KeepAlive(t)
	return err
}

// Package gcsettle lets tests wait until the garbage collector has run the
// finalizers of everything unreachable, so that leak counters kept by
// finalizers (torchbind's tensors, dist's stores and groups) are final.
package gcsettle

import "runtime"

// Settle runs the garbage collector and waits until the finalizers queued
// by the collection have run; twice, so that objects freed by a finalizer
// of the first round are collected too.
func Settle() {
	for i := 0; i < 2; i++ {
		runtime.GC()
		done := make(chan struct{})
		sentinel := new([16]byte)
		runtime.SetFinalizer(sentinel, func(*[16]byte) { close(done) })
		sentinel = nil
		runtime.GC()
		<-done
	}
}

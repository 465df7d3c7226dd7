// Package torchbind is the Go binding of libtorch used by puad-go: tensors,
// elementwise and reduction operations, the neural-network functions the
// models need, autograd, the Adam optimiser, random generators, devices, and
// state dicts read and written as .pt files (through package ptfile).
//
// # Layers
//
// The binding has three layers.
//
//   - A plain C header, torchbind.h, of opaque handles (tb_tensor,
//     tb_generator) and functions that return a heap-allocated error message
//     or NULL, with results in out-parameters. The C++ shim in csrc/
//     implements it, catches every C++ exception at the boundary, and is
//     built by CMake into build/libtorchbind.so (make native), so the Go
//     package only links it and needs no rebuild for another libtorch.
//   - Thin Go files, one per concern, that turn those functions into methods,
//     functions and errors: call.go (the one path by which a handle reaches
//     C), tensor.go (lifetime, metadata, data, creation), ops.go, nn.go,
//     autograd.go, optim.go, generator.go, serialize.go, device.go,
//     scope.go, precision.go (memory formats, the CPU's bfloat16 support,
//     the CUDA switches) and cgo.go (the library's version, threads and
//     modes).
//   - Everything above the package speaks only Go: *Tensor, *Generator,
//     Device, DType, and errors; a failure inside libtorch is an *Error
//     naming the operation.
//
// # Ownership
//
// Tensors live in C++ memory that Go's collector does not see. Every *Tensor
// a function returns belongs to the caller, who frees it with Close
// (idempotent and nil-safe) or hands it to a Scope, which frees everything it
// tracks at Close except what Keep hands out. Functions never take ownership
// of their arguments; the exceptions say so (StateDict.Set, Adam.SetState,
// Scope.T, Scope.Own). A handle may be freed while another tensor still
// views the same storage: the storage lives until its last view is closed.
//
// A finalizer is only a leak counter: a tensor that reaches the collector
// unclosed is freed and counted in LeakedTensors, and the package's tests
// fail when that count is not zero. Every C call keeps its tensor and
// generator arguments reachable until it has returned (runtime.KeepAlive), so
// a finalizer never frees a tensor the shim is still using.
//
// # Threads and modes
//
// libtorch keeps grad mode, inference mode and its intra-op thread count per
// OS thread, while goroutines move between OS threads. Grad and inference
// modes are therefore only set inside NoGrad, WithGrad and InferenceMode,
// which lock the goroutine to its thread for the region; goroutines started
// inside do not inherit the mode. The thread count set by SetNumThreads (by
// default DefaultNumThreads, the count PyTorch uses) is applied by the shim
// to whichever thread a call lands on, because results of multi-threaded
// kernels depend, in their last bits, on the thread count.
//
// # Dimensions
//
// An operation that works either along some dimensions or over the whole
// tensor takes dims []int64, and nil (or empty) means the whole tensor:
//
//	torchbind.Sum(x, nil, false)           // over every element
//	torchbind.Mean(x, []int64{2, 3}, true) // over height and width
//	torchbind.Quantile(x, 0.9, nil, false) // over every element
//	torchbind.Squeeze(x, []int64{0})       // only dimension 0
//
// Argmax, Any, Quantile and Squeeze accept one dimension or none and return
// an error for more. A dimension an operation always needs (Transpose,
// Narrow, Cat, Sort, ...) is a plain int64; negative values count from the
// end, as in PyTorch.
package torchbind

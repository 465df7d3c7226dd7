package dist

/*
#cgo CFLAGS: -I${SRCDIR}/..
#cgo LDFLAGS: -L${SRCDIR}/../../build -ltorchbind -Wl,-rpath,${SRCDIR}/../../build -Wl,-rpath,$ORIGIN/lib -Wl,-rpath,$ORIGIN/../lib
#include <stdlib.h>
#include "torchbind_dist.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrTimeout: a peer did not answer within the timeout (rendezvous,
	// store access or collective).
	ErrTimeout = errors.New("timed out")
	// ErrPeerFailed: the connection to a peer was closed or reset, as when
	// the peer's process ended.
	ErrPeerFailed = errors.New("peer failed")
	// ErrBackendUnavailable: this libtorch lacks the backend (NCCL without a
	// CUDA libtorch built with NCCL).
	ErrBackendUnavailable = errors.New("backend unavailable")
)

// Error is a failure of a store or group operation, with c10d's message.
// It wraps ErrTimeout, ErrPeerFailed or ErrBackendUnavailable when the
// failure is one of those.
type Error struct {
	Op   string // the operation, e.g. "allreduce"
	Msg  string // c10d's (or Gloo's) message
	Kind error  // one of the sentinels, or nil for any other failure
}

func (e *Error) Error() string {
	if e.Kind != nil {
		return fmt.Sprintf("dist: %s: %v: %s", e.Op, e.Kind, e.Msg)
	}
	return fmt.Sprintf("dist: %s: %s", e.Op, e.Msg)
}

// Unwrap returns the failure's kind.
func (e *Error) Unwrap() error { return e.Kind }

// check turns a shim error string and kind into an *Error, freeing the string.
func check(op string, msg *C.char, kind C.int) error {
	if msg == nil {
		return nil
	}
	s := C.GoString(msg)
	C.tb_free_string(msg)
	e := &Error{Op: op, Msg: s}
	switch kind {
	case C.TB_DIST_TIMEOUT:
		e.Kind = ErrTimeout
	case C.TB_DIST_PEER:
		e.Kind = ErrPeerFailed
	case C.TB_DIST_UNAVAILABLE:
		e.Kind = ErrBackendUnavailable
	}
	return e
}

// millis converts a timeout for the shim; it must be positive.
func millis(op string, d time.Duration) (C.int64_t, error) {
	ms := d.Milliseconds()
	if ms <= 0 {
		return 0, &Error{Op: op, Msg: fmt.Sprintf("timeout must be at least 1ms, got %v", d)}
	}
	return C.int64_t(ms), nil
}

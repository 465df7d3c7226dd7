package dist

/*
#include <stdlib.h>
#include "torchbind_dist.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

var (
	liveStores atomic.Int64
	liveGroups atomic.Int64
	leaked     atomic.Int64
)

// LiveStores is the number of stores created and not yet closed.
func LiveStores() int64 { return liveStores.Load() }

// LiveGroups is the number of groups created and not yet closed.
func LiveGroups() int64 { return liveGroups.Load() }

// Leaked counts stores and groups that were never closed and were freed by
// the garbage collector instead: each one is a bug in its owner.
func Leaked() int64 { return leaked.Load() }

// Store is a c10d key-value store through which the processes of a group
// meet. Close frees it.
type Store struct {
	mu     sync.Mutex
	h      C.tb_store
	groups int // groups created on the store so far: the next group's index
}

// NewTCPStore connects to the TCPStore served at host:port, serving it
// (isServer, on rank 0) first, for worldSize processes. A client retries
// until the server appears and gives up with an error wrapping ErrTimeout
// after timeout, which also bounds every later access to the store (an
// address that accepts connections but is no store times out too). The
// server does not wait for the others: NewGroup does.
func NewTCPStore(host string, port, worldSize int, isServer bool, timeout time.Duration) (*Store, error) {
	const op = "tcp store"
	if port < 0 || port > 65535 {
		return nil, &Error{Op: op, Msg: fmt.Sprintf("port %d out of range 0..65535", port)}
	}
	if worldSize < 1 {
		return nil, &Error{Op: op, Msg: fmt.Sprintf("world size %d < 1", worldSize)}
	}
	ms, err := millis(op, timeout)
	if err != nil {
		return nil, err
	}
	ch := C.CString(host)
	defer C.free(unsafe.Pointer(ch))
	server := C.int(0)
	if isServer {
		server = 1
	}
	var kind C.int
	var h C.tb_store
	msg := C.tb_tcpstore_new(ch, C.int(port), C.int(worldSize), server, ms, &kind, &h)
	if err := check(fmt.Sprintf("%s %s:%d", op, host, port), msg, kind); err != nil {
		return nil, err
	}
	return newStore(h), nil
}

// NewFileStore opens (creating it if needed) a FileStore at path shared by
// worldSize processes on one machine or a shared file system. The last
// process to close it deletes the file.
func NewFileStore(path string, worldSize int) (*Store, error) {
	const op = "file store"
	if worldSize < 1 {
		return nil, &Error{Op: op, Msg: fmt.Sprintf("world size %d < 1", worldSize)}
	}
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	var kind C.int
	var h C.tb_store
	msg := C.tb_filestore_new(cp, C.int(worldSize), &kind, &h)
	if err := check(op+" "+path, msg, kind); err != nil {
		return nil, err
	}
	return newStore(h), nil
}

func newStore(h C.tb_store) *Store {
	s := &Store{h: h}
	liveStores.Add(1)
	runtime.SetFinalizer(s, func(s *Store) {
		if s.h != nil {
			leaked.Add(1)
			s.free()
		}
	})
	return s
}

func (s *Store) free() {
	C.tb_store_free(s.h)
	s.h = nil
	liveStores.Add(-1)
}

// Close frees the store (groups created on it keep what they need of it).
// Close is idempotent and safe on nil.
func (s *Store) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h == nil {
		return nil
	}
	runtime.SetFinalizer(s, nil)
	s.free()
	return nil
}

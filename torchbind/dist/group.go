package dist

/*
#include "torchbind_dist.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// Backend names a c10d communication backend.
type Backend string

const (
	// Gloo runs collectives on CPU tensors over TCP; always available.
	Gloo Backend = "gloo"
	// NCCL runs collectives on CUDA tensors; only in a CUDA libtorch built
	// with NCCL.
	NCCL Backend = "nccl"
)

func (b Backend) code() (C.int, error) {
	switch b {
	case Gloo:
		return C.TB_DIST_GLOO, nil
	case NCCL:
		return C.TB_DIST_NCCL, nil
	}
	return 0, &Error{Op: "group", Msg: fmt.Sprintf("unknown backend %q (gloo, nccl)", string(b)), Kind: ErrBackendUnavailable}
}

// Group is a c10d process group: worldSize processes, this one being rank,
// that run collectives together. Every rank must issue the same collectives
// in the same order. A Group may be used from several goroutines; its
// collectives then run one at a time. After a collective has failed
// (timeout, lost peer) the group is out of step: close it. Close frees it.
type Group struct {
	mu        sync.Mutex
	h         C.tb_group
	rank      int
	worldSize int
	store     *Store // closed with the group when the group owns it (Init)
}

// NewGroup joins the next process group on store (as torch.distributed
// does: keys under "default_pg/<n>/" for the store's n-th group), then waits
// for all worldSize ranks. timeout bounds the rendezvous and each later
// collective. The group does not own the store; close the group first.
func NewGroup(store *Store, backend Backend, rank, worldSize int, timeout time.Duration) (*Group, error) {
	const op = "group"
	b, err := backend.code()
	if err != nil {
		return nil, err
	}
	if worldSize < 1 || rank < 0 || rank >= worldSize {
		return nil, &Error{Op: op, Msg: fmt.Sprintf("rank %d outside world size %d", rank, worldSize)}
	}
	ms, err := millis(op, timeout)
	if err != nil {
		return nil, err
	}
	if store == nil {
		return nil, &Error{Op: op, Msg: "nil store"}
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if store.h == nil {
		return nil, &Error{Op: op, Msg: "closed store"}
	}
	var kind C.int
	var h C.tb_group
	msg := C.tb_group_new(store.h, b, C.int(store.groups), C.int(rank), C.int(worldSize), ms, &kind, &h)
	if err := check(fmt.Sprintf("%s %s rank %d/%d", op, backend, rank, worldSize), msg, kind); err != nil {
		return nil, err
	}
	store.groups++
	g := &Group{h: h, rank: rank, worldSize: worldSize}
	liveGroups.Add(1)
	runtime.SetFinalizer(g, func(g *Group) {
		if g.h != nil {
			leaked.Add(1)
			g.free()
		}
	})
	return g, nil
}

// Init joins the group that torchrun's environment describes: a TCPStore at
// env.MasterAddr:env.MasterPort, served by rank 0 (or by torchrun's agent
// when env.AgentStore), then NewGroup on it. The group owns the store: Close
// frees both.
func Init(env Env, backend Backend, timeout time.Duration) (*Group, error) {
	store, err := NewTCPStore(env.MasterAddr, env.MasterPort, env.WorldSize, env.Rank == 0 && !env.AgentStore, timeout)
	if err != nil {
		return nil, err
	}
	g, err := NewGroup(store, backend, env.Rank, env.WorldSize, timeout)
	if err != nil {
		return nil, errors.Join(err, store.Close())
	}
	g.store = store
	return g, nil
}

func (g *Group) free() {
	C.tb_group_free(g.h)
	g.h = nil
	liveGroups.Add(-1)
}

// Rank is this process's rank in the group.
func (g *Group) Rank() int { return g.rank }

// WorldSize is the number of processes in the group.
func (g *Group) WorldSize() int { return g.worldSize }

// Barrier returns once every rank has entered it.
func (g *Group) Barrier() error {
	return g.do(func(h C.tb_group) error {
		var kind C.int
		return check("barrier", C.tb_group_barrier(h, &kind), kind)
	})
}

// do runs f on the open group's handle, one collective at a time.
func (g *Group) do(f func(C.tb_group) error) error {
	if g == nil {
		return &Error{Op: "group", Msg: "nil group"}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.h == nil {
		return &Error{Op: "group", Msg: "closed group"}
	}
	return f(g.h)
}

// Close leaves the group and frees it (and its store when it owns one).
// Close is idempotent and safe on nil.
func (g *Group) Close() error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.h != nil {
		runtime.SetFinalizer(g, nil)
		g.free()
	}
	err := g.store.Close()
	g.store = nil
	return err
}

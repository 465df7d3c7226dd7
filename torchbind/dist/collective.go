package dist

/*
#include "torchbind_dist.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/puad-go/puad/torchbind"
)

// ReduceOp is how AllReduce combines the ranks' values.
type ReduceOp int

const (
	// Sum adds the values of all ranks.
	Sum ReduceOp = iota
	// Avg adds the values of all ranks, then divides by the world size (as
	// torch.distributed users do after a SUM, since Gloo has no average).
	Avg
)

func (op ReduceOp) String() string {
	switch op {
	case Sum:
		return "sum"
	case Avg:
		return "avg"
	}
	return fmt.Sprintf("ReduceOp(%d)", int(op))
}

// AllReduce replaces each tensor, on every rank, by the combination of its
// values on all ranks. The tensors may have any shapes and dtypes (Avg: only
// floating-point ones); those of one dtype and device are flattened into
// buckets of at most BucketBytes, one collective each, and copied back.
func (g *Group) AllReduce(ts []*torchbind.Tensor, op ReduceOp) error {
	if op != Sum && op != Avg {
		return &Error{Op: "allreduce", Msg: fmt.Sprintf("unknown reduce op %v", op)}
	}
	return g.do(func(h C.tb_group) error {
		return eachBucket("allreduce", ts, op == Avg, func(buf *torchbind.Tensor) (*torchbind.Tensor, error) {
			if err := onTensor(buf, func(t C.tb_tensor) error {
				var kind C.int
				return check("allreduce", C.tb_group_allreduce_sum(h, t, &kind), kind)
			}); err != nil {
				return nil, err
			}
			if op == Avg {
				return torchbind.DivScalar(buf, float64(g.worldSize))
			}
			return nil, nil
		})
	})
}

// Broadcast replaces each tensor, on every rank, by its value on rank root,
// bucketed like AllReduce.
func (g *Group) Broadcast(ts []*torchbind.Tensor, root int) error {
	if root < 0 || root >= g.WorldSize() {
		return &Error{Op: "broadcast", Msg: fmt.Sprintf("root %d outside world size %d", root, g.WorldSize())}
	}
	return g.do(func(h C.tb_group) error {
		return eachBucket("broadcast", ts, false, func(buf *torchbind.Tensor) (*torchbind.Tensor, error) {
			return nil, onTensor(buf, func(t C.tb_tensor) error {
				var kind C.int
				return check("broadcast", C.tb_group_broadcast(h, t, C.int(root), &kind), kind)
			})
		})
	})
}

// onTensor hands t's shim handle to f, keeping t alive meanwhile.
func onTensor(t *torchbind.Tensor, f func(C.tb_tensor) error) error {
	return torchbind.WithHandle(t, func(p unsafe.Pointer) error { return f(C.tb_tensor(p)) })
}

// eachBucket flattens each bucket of ts into one tensor (a bucket of one
// tensor is used as it is), runs the collective on it and copies the result
// back into the bucket's tensors. The collective
// works in place and may return a tensor to copy back instead (then owned
// by eachBucket); floatOnly rejects integer tensors.
func eachBucket(op string, ts []*torchbind.Tensor, floatOnly bool, collective func(buf *torchbind.Tensor) (*torchbind.Tensor, error)) error {
	bs, err := makeBuckets(ts, floatOnly)
	if err != nil {
		return &Error{Op: op, Msg: err.Error()}
	}
	for _, b := range bs {
		if err := b.run(collective); err != nil {
			return err
		}
	}
	return nil
}

func (b bucket) run(collective func(buf *torchbind.Tensor) (*torchbind.Tensor, error)) error {
	if len(b.ts) == 1 { // the shim works on the tensor itself: no copies
		out, err := collective(b.ts[0])
		if err != nil || out == nil {
			return err
		}
		defer out.Close()
		return torchbind.CopyInto(b.ts[0], out)
	}
	buf, err := b.flatten()
	if err != nil {
		return err
	}
	defer buf.Close()
	out, err := collective(buf)
	if err != nil {
		return err
	}
	if out == nil {
		return b.unflatten(buf)
	}
	defer out.Close()
	return b.unflatten(out)
}

// closeAll closes tensors, for deferred clean-up.
func closeAll(ts []*torchbind.Tensor) {
	for _, t := range ts {
		t.Close()
	}
}

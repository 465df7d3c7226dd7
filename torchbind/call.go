package torchbind

/*
#include "torchbind.h"
*/
import "C"

import "runtime"

// maxArgs is the most tensors one shim function takes (batch_norm: input,
// weight, bias and the two running statistics); lists go through args.
const maxArgs = 5

// call is the one way a tensor's or a generator's handle reaches C. The
// collector cannot see that the shim still uses a handle: once a *Tensor's
// last Go reference is gone, its finalizer may free the libtorch tensor
// while a cgo call is reading it. A call gathers every object whose handle
// it hands out (arg, args, gen) and keeps them all reachable until one of
// its ending methods (err, tensor) runs after the C function has returned:
//
//	var c call
//	var out C.tb_tensor
//	msg := C.tb_unary(op, c.arg(a), &out)
//	return c.tensor(name, msg, out)
//
// A call lives on the caller's stack for one C function; its zero value is
// ready to use. TestShimCallsKeepArgumentsAlive checks that every C call in
// the package follows this pattern.
type call struct {
	ts   [maxArgs]*Tensor
	n    int
	list []*Tensor
	g    *Generator
}

// testHookAfterArg, when set by a test, runs each time a handle has been
// handed out and before the C function is called: the moment at which only
// the call keeps the argument reachable.
var testHookAfterArg func()

// arg returns t's handle for the C call and keeps t alive until the call
// ends. A nil or closed tensor gives a NULL handle, which the shim rejects
// with an error, or reads as "none" where a tensor is optional.
func (c *call) arg(t *Tensor) C.tb_tensor {
	if t == nil {
		return nil
	}
	h := t.h
	c.ts[c.n] = t // more than maxArgs is a programming error in this package
	c.n++
	if testHookAfterArg != nil {
		testHookAfterArg()
	}
	return h
}

// args returns the handles of a list of tensors, kept alive like arg's.
func (c *call) args(ts []*Tensor) []C.tb_tensor {
	hs := make([]C.tb_tensor, len(ts))
	for i, t := range ts {
		if t != nil {
			hs[i] = t.h
		}
	}
	c.list = ts
	if testHookAfterArg != nil {
		testHookAfterArg()
	}
	return hs
}

// gen returns g's handle (NULL for nil: libtorch's default generator) and
// keeps g alive until the call ends.
func (c *call) gen(g *Generator) C.tb_generator {
	if g == nil {
		return nil
	}
	h := g.h
	c.g = g
	if testHookAfterArg != nil {
		testHookAfterArg()
	}
	return h
}

// err ends the call: everything it handed out stays reachable up to here.
// It turns the shim's error string into an error naming op.
func (c *call) err(op string, msg *C.char) error {
	runtime.KeepAlive(c)
	return check(op, msg)
}

// tensor ends a call that produces one tensor, as err does, and takes
// ownership of the result.
func (c *call) tensor(op string, msg *C.char, out C.tb_tensor) (*Tensor, error) {
	if err := c.err(op, msg); err != nil {
		return nil, err
	}
	return newTensor(out), nil
}

package torchbind

/*
#include "torchbind.h"
*/
import "C"

// SetRequiresGrad marks a leaf tensor as a parameter whose gradient autograd
// computes (requires_grad_). As in PyTorch, only floating-point tensors can
// require gradients, and clearing the flag of a non-leaf is an error.
func (t *Tensor) SetRequiresGrad(b bool) error {
	var c call
	msg := C.tb_set_requires_grad(c.arg(t), cbool(b))
	return c.err("requires_grad_", msg)
}

// Backward computes the gradients of the scalar t with respect to the leaves
// that require them, accumulating into their .grad.
func (t *Tensor) Backward() error {
	var c call
	msg := C.tb_backward(c.arg(t))
	return c.err("backward", msg)
}

// Grad returns the accumulated gradient (a new handle), or nil when none.
func (t *Tensor) Grad() (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_grad(c.arg(t), &out)
	return c.tensor("grad", msg, out)
}

// ZeroGrad zeroes the accumulated gradient in place (if any), as
// optimizer.zero_grad(set_to_none=False).
func (t *Tensor) ZeroGrad() error {
	var c call
	msg := C.tb_zero_grad(c.arg(t))
	return c.err("zero_grad", msg)
}

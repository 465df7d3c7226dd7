package torchbind

/*
#include "torchbind.h"
*/
import "C"

// SetRequiresGrad marks a leaf tensor as a parameter whose gradient autograd
// computes (requires_grad_). As in PyTorch, only floating-point tensors can
// require gradients, and clearing the flag of a non-leaf is an error.
func (t *Tensor) SetRequiresGrad(b bool) error {
	return check("requires_grad_", C.tb_set_requires_grad(handle(t), cbool(b)))
}

// Backward computes the gradients of the scalar t with respect to the leaves
// that require them, accumulating into their .grad.
func (t *Tensor) Backward() error { return check("backward", C.tb_backward(handle(t))) }

// Grad returns the accumulated gradient (a new handle), or nil when none.
func (t *Tensor) Grad() (*Tensor, error) {
	var out C.tb_tensor
	if err := check("grad", C.tb_grad(handle(t), &out)); err != nil {
		return nil, err
	}
	return newTensor(out), nil
}

// ZeroGrad zeroes the accumulated gradient in place (if any), as
// optimizer.zero_grad(set_to_none=False).
func (t *Tensor) ZeroGrad() error { return check("zero_grad", C.tb_zero_grad(handle(t))) }

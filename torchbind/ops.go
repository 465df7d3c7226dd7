package torchbind

/*
#include "torchbind.h"
*/
import "C"

import "fmt"

func unary(op C.int, name string, a *Tensor) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_unary(op, c.arg(a), &out)
	return c.tensor(name, msg, out)
}

func binary(op C.int, name string, a, b *Tensor) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_binary(op, c.arg(a), c.arg(b), &out)
	return c.tensor(name, msg, out)
}

func binaryScalar(op C.int, name string, a *Tensor, s float64) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_binary_scalar(op, c.arg(a), C.double(s), &out)
	return c.tensor(name, msg, out)
}

// Neg returns -a.
func Neg(a *Tensor) (*Tensor, error) { return unary(C.TB_OP_NEG, "neg", a) }

// Abs returns |a|.
func Abs(a *Tensor) (*Tensor, error) { return unary(C.TB_OP_ABS, "abs", a) }

// Sqrt returns the elementwise square root.
func Sqrt(a *Tensor) (*Tensor, error) { return unary(C.TB_OP_SQRT, "sqrt", a) }

// Exp returns the elementwise exponential.
func Exp(a *Tensor) (*Tensor, error) { return unary(C.TB_OP_EXP, "exp", a) }

// Log returns the elementwise natural logarithm.
func Log(a *Tensor) (*Tensor, error) { return unary(C.TB_OP_LOG, "log", a) }

// Relu returns max(a, 0).
func Relu(a *Tensor) (*Tensor, error) { return unary(C.TB_OP_RELU, "relu", a) }

// Sigmoid returns the logistic function of a.
func Sigmoid(a *Tensor) (*Tensor, error) { return unary(C.TB_OP_SIGMOID, "sigmoid", a) }

// Tanh returns the hyperbolic tangent of a.
func Tanh(a *Tensor) (*Tensor, error) { return unary(C.TB_OP_TANH, "tanh", a) }

// Floor rounds down.
func Floor(a *Tensor) (*Tensor, error) { return unary(C.TB_OP_FLOOR, "floor", a) }

// Ceil rounds up.
func Ceil(a *Tensor) (*Tensor, error) { return unary(C.TB_OP_CEIL, "ceil", a) }

// Square returns a².
func Square(a *Tensor) (*Tensor, error) { return unary(C.TB_OP_SQUARE, "square", a) }

// IsNaN returns a bool tensor marking NaNs.
func IsNaN(a *Tensor) (*Tensor, error) { return unary(C.TB_OP_ISNAN, "isnan", a) }

// Contiguous returns a with C-contiguous memory (a new handle on the same
// storage when it already is).
func Contiguous(a *Tensor) (*Tensor, error) { return unary(C.TB_OP_CONTIGUOUS, "contiguous", a) }

// Clone returns a contiguous copy of a (part of the autograd graph).
func Clone(a *Tensor) (*Tensor, error) { return unary(C.TB_OP_CLONE, "clone", a) }

// Detach returns a view of a outside the autograd graph.
func Detach(a *Tensor) (*Tensor, error) { return unary(C.TB_OP_DETACH, "detach", a) }

// Flatten returns a as one dimension.
func Flatten(a *Tensor) (*Tensor, error) { return unary(C.TB_OP_FLATTEN, "flatten", a) }

// Add returns a + b (broadcasting).
func Add(a, b *Tensor) (*Tensor, error) { return binary(C.TB_OP_ADD, "add", a, b) }

// Sub returns a - b.
func Sub(a, b *Tensor) (*Tensor, error) { return binary(C.TB_OP_SUB, "sub", a, b) }

// Mul returns a * b.
func Mul(a, b *Tensor) (*Tensor, error) { return binary(C.TB_OP_MUL, "mul", a, b) }

// Div returns a / b.
func Div(a, b *Tensor) (*Tensor, error) { return binary(C.TB_OP_DIV, "div", a, b) }

// Pow returns a ** b.
func Pow(a, b *Tensor) (*Tensor, error) { return binary(C.TB_OP_POW, "pow", a, b) }

// Matmul is torch.matmul (matrix product, batched and broadcast).
func Matmul(a, b *Tensor) (*Tensor, error) { return binary(C.TB_OP_MATMUL, "matmul", a, b) }

// Maximum returns the elementwise maximum.
func Maximum(a, b *Tensor) (*Tensor, error) { return binary(C.TB_OP_MAXIMUM, "maximum", a, b) }

// Minimum returns the elementwise minimum.
func Minimum(a, b *Tensor) (*Tensor, error) { return binary(C.TB_OP_MINIMUM, "minimum", a, b) }

// Gt returns a > b.
func Gt(a, b *Tensor) (*Tensor, error) { return binary(C.TB_OP_GT, "gt", a, b) }

// Ge returns a >= b.
func Ge(a, b *Tensor) (*Tensor, error) { return binary(C.TB_OP_GE, "ge", a, b) }

// Lt returns a < b.
func Lt(a, b *Tensor) (*Tensor, error) { return binary(C.TB_OP_LT, "lt", a, b) }

// Le returns a <= b.
func Le(a, b *Tensor) (*Tensor, error) { return binary(C.TB_OP_LE, "le", a, b) }

// Eq returns a == b.
func Eq(a, b *Tensor) (*Tensor, error) { return binary(C.TB_OP_EQ, "eq", a, b) }

// Ne returns a != b.
func Ne(a, b *Tensor) (*Tensor, error) { return binary(C.TB_OP_NE, "ne", a, b) }

// AddScalar returns a + s, keeping a's dtype as a Python float would.
func AddScalar(a *Tensor, s float64) (*Tensor, error) { return binaryScalar(C.TB_OP_ADD, "add", a, s) }

// SubScalar returns a - s.
func SubScalar(a *Tensor, s float64) (*Tensor, error) { return binaryScalar(C.TB_OP_SUB, "sub", a, s) }

// RSubScalar returns s - a.
func RSubScalar(a *Tensor, s float64) (*Tensor, error) {
	return binaryScalar(C.TB_OP_RSUB, "rsub", a, s)
}

// MulScalar returns a * s.
func MulScalar(a *Tensor, s float64) (*Tensor, error) { return binaryScalar(C.TB_OP_MUL, "mul", a, s) }

// DivScalar returns a / s.
func DivScalar(a *Tensor, s float64) (*Tensor, error) { return binaryScalar(C.TB_OP_DIV, "div", a, s) }

// PowScalar returns a ** s.
func PowScalar(a *Tensor, s float64) (*Tensor, error) { return binaryScalar(C.TB_OP_POW, "pow", a, s) }

// GtScalar returns a > s.
func GtScalar(a *Tensor, s float64) (*Tensor, error) { return binaryScalar(C.TB_OP_GT, "gt", a, s) }

// GeScalar returns a >= s.
func GeScalar(a *Tensor, s float64) (*Tensor, error) { return binaryScalar(C.TB_OP_GE, "ge", a, s) }

// LtScalar returns a < s.
func LtScalar(a *Tensor, s float64) (*Tensor, error) { return binaryScalar(C.TB_OP_LT, "lt", a, s) }

// LeScalar returns a <= s.
func LeScalar(a *Tensor, s float64) (*Tensor, error) { return binaryScalar(C.TB_OP_LE, "le", a, s) }

// EqScalar returns a == s.
func EqScalar(a *Tensor, s float64) (*Tensor, error) { return binaryScalar(C.TB_OP_EQ, "eq", a, s) }

// Clamp limits a to [lo, hi]; pass math.Inf to leave a side open.
func Clamp(a *Tensor, lo, hi float64) (*Tensor, error) {
	hasLo, hasHi := C.int(1), C.int(1)
	if lo < -maxFinite {
		hasLo = 0
	}
	if hi > maxFinite {
		hasHi = 0
	}
	var c call
	var out C.tb_tensor
	msg := C.tb_clamp(c.arg(a), C.double(lo), C.double(hi), hasLo, hasHi, &out)
	return c.tensor("clamp", msg, out)
}

const maxFinite = 1.7976931348623157e308

// Where returns a where cond is true, else b.
func Where(cond, a, b *Tensor) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_where(c.arg(cond), c.arg(a), c.arg(b), &out)
	return c.tensor("where", msg, out)
}

// MaskedSelect returns the elements of a where mask is true, as one dimension.
func MaskedSelect(a, mask *Tensor) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_masked_select(c.arg(a), c.arg(mask), &out)
	return c.tensor("masked_select", msg, out)
}

// CopyInto copies src into dst in place (broadcasting, converting dtype and device).
func CopyInto(dst, src *Tensor) error {
	var c call
	msg := C.tb_copy_(c.arg(dst), c.arg(src))
	return c.err("copy_", msg)
}

func reduce(op C.int, name string, a *Tensor, dims []int64, keepdim, unbiased bool) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_reduce(op, c.arg(a), dimsPtr(dims), C.int(len(dims)), cbool(keepdim), cbool(unbiased), &out)
	return c.tensor(name, msg, out)
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// Sum adds over dims, or over every element when dims is nil.
func Sum(a *Tensor, dims []int64, keepdim bool) (*Tensor, error) {
	return reduce(C.TB_RED_SUM, "sum", a, dims, keepdim, false)
}

// Mean averages over dims, or over every element when dims is nil.
func Mean(a *Tensor, dims []int64, keepdim bool) (*Tensor, error) {
	return reduce(C.TB_RED_MEAN, "mean", a, dims, keepdim, false)
}

// Std is the standard deviation over dims (nil: every element); unbiased
// divides by n-1.
func Std(a *Tensor, dims []int64, unbiased, keepdim bool) (*Tensor, error) {
	return reduce(C.TB_RED_STD, "std", a, dims, keepdim, unbiased)
}

// Var is the variance over dims (nil: every element); unbiased divides by
// n-1.
func Var(a *Tensor, dims []int64, unbiased, keepdim bool) (*Tensor, error) {
	return reduce(C.TB_RED_VAR, "var", a, dims, keepdim, unbiased)
}

// Max is the maximum over dims (amax), or over every element when dims is nil.
func Max(a *Tensor, dims []int64, keepdim bool) (*Tensor, error) {
	return reduce(C.TB_RED_MAX, "max", a, dims, keepdim, false)
}

// Min is the minimum over dims (amin), or over every element when dims is nil.
func Min(a *Tensor, dims []int64, keepdim bool) (*Tensor, error) {
	return reduce(C.TB_RED_MIN, "min", a, dims, keepdim, false)
}

// Argmax is the index of the maximum along the one dimension in dims, or
// in the flattened tensor when dims is nil.
func Argmax(a *Tensor, dims []int64, keepdim bool) (*Tensor, error) {
	return reduce(C.TB_RED_ARGMAX, "argmax", a, dims, keepdim, false)
}

// Any reports whether any element is true along the one dimension in dims,
// or over everything when dims is nil.
func Any(a *Tensor, dims []int64, keepdim bool) (*Tensor, error) {
	return reduce(C.TB_RED_ANY, "any", a, dims, keepdim, false)
}

// oneDim reads the dims of an operation that takes one dimension or none.
func oneDim(op string, dims []int64) (dim C.int64_t, has C.int, err error) {
	switch len(dims) {
	case 0:
		return 0, 0, nil
	case 1:
		return C.int64_t(dims[0]), 1, nil
	}
	return 0, 0, &Error{Op: op, Msg: fmt.Sprintf("takes one dimension or none, got %v", dims)}
}

// Quantile is torch.quantile(a, q, dim, keepdim) with linear interpolation,
// along the one dimension in dims, or over all elements when dims is nil.
// Over all elements it also works above 2^24 elements, unlike torch.quantile,
// and exactly: it then finds the two order statistics around rank q·(n−1)
// with kthvalue and interpolates between them as torch does.
func Quantile(a *Tensor, q float64, dims []int64, keepdim bool) (*Tensor, error) {
	dim, has, err := oneDim("quantile", dims)
	if err != nil {
		return nil, err
	}
	var c call
	var out C.tb_tensor
	msg := C.tb_quantile(c.arg(a), C.double(q), dim, has, cbool(keepdim), &out)
	return c.tensor("quantile", msg, out)
}

// KthValue returns the k-th smallest values (1-based) along dim and their indices.
func KthValue(a *Tensor, k, dim int64, keepdim bool) (values, indices *Tensor, err error) {
	var c call
	var v, i C.tb_tensor
	msg := C.tb_kthvalue(c.arg(a), C.int64_t(k), C.int64_t(dim), cbool(keepdim), &v, &i)
	if err := c.err("kthvalue", msg); err != nil {
		return nil, nil, err
	}
	return newTensor(v), newTensor(i), nil
}

// Sort sorts along dim, returning values and indices.
func Sort(a *Tensor, dim int64, descending bool) (values, indices *Tensor, err error) {
	var c call
	var v, i C.tb_tensor
	msg := C.tb_sort(c.arg(a), C.int64_t(dim), cbool(descending), &v, &i)
	if err := c.err("sort", msg); err != nil {
		return nil, nil, err
	}
	return newTensor(v), newTensor(i), nil
}

// Reshape returns a with a new shape (a view when possible); -1 infers one size.
func Reshape(a *Tensor, shape ...int64) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_reshape(c.arg(a), dimsPtr(shape), C.int(len(shape)), &out)
	return c.tensor("reshape", msg, out)
}

// View returns a view of a with a new shape; fails when strides do not allow it.
func View(a *Tensor, shape ...int64) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_view(c.arg(a), dimsPtr(shape), C.int(len(shape)), &out)
	return c.tensor("view", msg, out)
}

// Permute reorders the dimensions.
func Permute(a *Tensor, dims ...int64) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_permute(c.arg(a), dimsPtr(dims), C.int(len(dims)), &out)
	return c.tensor("permute", msg, out)
}

// Transpose swaps two dimensions.
func Transpose(a *Tensor, d0, d1 int64) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_transpose(c.arg(a), C.int64_t(d0), C.int64_t(d1), &out)
	return c.tensor("transpose", msg, out)
}

// Squeeze removes the one dimension in dims if its size is one, or every
// dimension of size one when dims is nil.
func Squeeze(a *Tensor, dims []int64) (*Tensor, error) {
	dim, has, err := oneDim("squeeze", dims)
	if err != nil {
		return nil, err
	}
	var c call
	var out C.tb_tensor
	msg := C.tb_squeeze(c.arg(a), dim, has, &out)
	return c.tensor("squeeze", msg, out)
}

// Unsqueeze inserts a dimension of size one at dim.
func Unsqueeze(a *Tensor, dim int64) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_unsqueeze(c.arg(a), C.int64_t(dim), &out)
	return c.tensor("unsqueeze", msg, out)
}

// Narrow returns the view a[..., start:start+length, ...] along dim.
func Narrow(a *Tensor, dim, start, length int64) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_narrow(c.arg(a), C.int64_t(dim), C.int64_t(start), C.int64_t(length), &out)
	return c.tensor("narrow", msg, out)
}

// IndexSelect picks the entries of index (int64) along dim.
func IndexSelect(a *Tensor, dim int64, index *Tensor) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_index_select(c.arg(a), C.int64_t(dim), c.arg(index), &out)
	return c.tensor("index_select", msg, out)
}

// Gather is torch.gather.
func Gather(a *Tensor, dim int64, index *Tensor) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_gather(c.arg(a), C.int64_t(dim), c.arg(index), &out)
	return c.tensor("gather", msg, out)
}

// Cat concatenates tensors along dim.
func Cat(ts []*Tensor, dim int64) (*Tensor, error) {
	if len(ts) == 0 {
		return nil, &Error{Op: "cat", Msg: "no tensors"}
	}
	var c call
	hs := c.args(ts)
	var out C.tb_tensor
	msg := C.tb_cat(&hs[0], C.int(len(hs)), C.int64_t(dim), &out)
	return c.tensor("cat", msg, out)
}

// Stack stacks tensors of equal shape along a new dimension dim.
func Stack(ts []*Tensor, dim int64) (*Tensor, error) {
	if len(ts) == 0 {
		return nil, &Error{Op: "stack", Msg: "no tensors"}
	}
	var c call
	hs := c.args(ts)
	var out C.tb_tensor
	msg := C.tb_stack(&hs[0], C.int(len(hs)), C.int64_t(dim), &out)
	return c.tensor("stack", msg, out)
}

// Expand broadcasts a to shape without copying (-1 keeps a size).
func Expand(a *Tensor, shape ...int64) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_expand(c.arg(a), dimsPtr(shape), C.int(len(shape)), &out)
	return c.tensor("expand", msg, out)
}

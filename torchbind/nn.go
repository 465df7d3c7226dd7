package torchbind

/*
#include "torchbind.h"
*/
import "C"

// ConvOptions are conv2d's stride, padding, dilation and groups; zero values
// mean PyTorch's defaults (stride 1, padding 0, dilation 1, groups 1).
type ConvOptions struct {
	Stride, Padding, Dilation [2]int64
	Groups                    int64
}

func or1(v [2]int64) [2]int64 {
	for i := range v {
		if v[i] == 0 {
			v[i] = 1
		}
	}
	return v
}

// Conv2d is torch.nn.functional.conv2d; b may be nil.
func Conv2d(x, w, b *Tensor, o ConvOptions) (*Tensor, error) {
	stride, dil := or1(o.Stride), or1(o.Dilation)
	pad := o.Padding
	groups := o.Groups
	if groups == 0 {
		groups = 1
	}
	var c call
	var out C.tb_tensor
	msg := C.tb_conv2d(c.arg(x), c.arg(w), c.arg(b), dimsPtr(stride[:]), dimsPtr(pad[:]), dimsPtr(dil[:]), C.int64_t(groups), &out)
	return c.tensor("conv2d", msg, out)
}

// PoolOptions describe a 2-D pooling window. Stride zero means the kernel size.
type PoolOptions struct {
	Kernel, Stride, Padding, Dilation [2]int64
	CeilMode                          bool
	// ExcludePad makes avg_pool2d divide by the count of non-padding
	// elements (count_include_pad=False); PyTorch's default includes them.
	ExcludePad bool
}

func (o PoolOptions) stride() [2]int64 {
	s := o.Stride
	for i := range s {
		if s[i] == 0 {
			s[i] = o.Kernel[i]
		}
	}
	return s
}

// AvgPool2d is torch.nn.functional.avg_pool2d.
func AvgPool2d(x *Tensor, o PoolOptions) (*Tensor, error) {
	k, s, p := o.Kernel, o.stride(), o.Padding
	var c call
	var out C.tb_tensor
	msg := C.tb_avg_pool2d(c.arg(x), dimsPtr(k[:]), dimsPtr(s[:]), dimsPtr(p[:]), cbool(o.CeilMode), cbool(!o.ExcludePad), &out)
	return c.tensor("avg_pool2d", msg, out)
}

// MaxPool2d is torch.nn.functional.max_pool2d.
func MaxPool2d(x *Tensor, o PoolOptions) (*Tensor, error) {
	k, s, p, d := o.Kernel, o.stride(), o.Padding, or1(o.Dilation)
	var c call
	var out C.tb_tensor
	msg := C.tb_max_pool2d(c.arg(x), dimsPtr(k[:]), dimsPtr(s[:]), dimsPtr(p[:]), dimsPtr(d[:]), cbool(o.CeilMode), &out)
	return c.tensor("max_pool2d", msg, out)
}

// BatchNorm is torch.nn.functional.batch_norm. In training mode the running
// statistics are updated in place with the given momentum.
func BatchNorm(x, weight, bias, runningMean, runningVar *Tensor, training bool, momentum, eps float64) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_batch_norm(c.arg(x), c.arg(weight), c.arg(bias), c.arg(runningMean), c.arg(runningVar), cbool(training), C.double(momentum), C.double(eps), &out)
	return c.tensor("batch_norm", msg, out)
}

// UpsampleBilinear is F.interpolate(x, size=(h, w), mode="bilinear", align_corners=alignCorners).
func UpsampleBilinear(x *Tensor, h, w int64, alignCorners bool) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_upsample_bilinear(c.arg(x), C.int64_t(h), C.int64_t(w), cbool(alignCorners), &out)
	return c.tensor("upsample_bilinear2d", msg, out)
}

// AdaptiveAvgPool1d is F.adaptive_avg_pool1d over the last dimension.
func AdaptiveAvgPool1d(x *Tensor, size int64) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_adaptive_avg_pool1d(c.arg(x), C.int64_t(size), &out)
	return c.tensor("adaptive_avg_pool1d", msg, out)
}

// AdaptiveAvgPool2d is F.adaptive_avg_pool2d.
func AdaptiveAvgPool2d(x *Tensor, h, w int64) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_adaptive_avg_pool2d(c.arg(x), C.int64_t(h), C.int64_t(w), &out)
	return c.tensor("adaptive_avg_pool2d", msg, out)
}

// Dropout zeroes elements with probability p and scales the rest by
// 1/(1-p) when training (the mask drawn from g; nil: the default generator);
// in evaluation it returns x unchanged (as a new handle).
func Dropout(x *Tensor, p float64, training bool, g *Generator) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_dropout(c.arg(x), C.double(p), cbool(training), c.gen(g), &out)
	return c.tensor("dropout", msg, out)
}

// Reduction selects how a loss is reduced.
type Reduction int

// Loss reductions.
const (
	ReduceNone Reduction = 0
	ReduceMean Reduction = 1
	ReduceSum  Reduction = 2
)

// MSELoss is F.mse_loss(a, b, reduction).
func MSELoss(a, b *Tensor, r Reduction) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_mse_loss(c.arg(a), c.arg(b), C.int(r), &out)
	return c.tensor("mse_loss", msg, out)
}

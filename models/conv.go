package models

import tb "github.com/puad-go/puad/torchbind"

// Conv2d is nn.Conv2d with a bias: weight [out, in, k, k], bias [out].
type Conv2d struct {
	In, Out, Kernel, Stride, Padding int64
	Weight, Bias                     *tb.Tensor
}

// NewConv2d describes a convolution; its tensors are set by loading or InitDefault.
func NewConv2d(in, out, kernel, stride, padding int64) *Conv2d {
	return &Conv2d{In: in, Out: out, Kernel: kernel, Stride: stride, Padding: padding}
}

// Forward applies the convolution.
func (c *Conv2d) Forward(x *tb.Tensor) (*tb.Tensor, error) {
	return tb.Conv2d(x, c.Weight, c.Bias, tb.ConvOptions{
		Stride:  [2]int64{c.Stride, c.Stride},
		Padding: [2]int64{c.Padding, c.Padding},
	})
}

// params lists the convolution's weight and bias under prefix.
func (c *Conv2d) params(prefix string) []Param {
	return []Param{
		{Name: prefix + ".weight", Shape: []int64{c.Out, c.In, c.Kernel, c.Kernel}, Tensor: &c.Weight},
		{Name: prefix + ".bias", Shape: []int64{c.Out}, Tensor: &c.Bias},
	}
}

package models

import (
	"fmt"
	"math"

	tb "github.com/puad-go/puad/torchbind"
)

// This file reproduces the random draws of PyTorch's constructors, so that
// a run seeded as torch.manual_seed(S) draws the same numbers in the same
// order as the reference's training scripts (training's reference random
// stream).

// fanIn is PyTorch's fan-in of a weight: its second dimension times the
// receptive field.
func fanIn(shape []int64) int64 {
	f := int64(1)
	for _, s := range shape[1:] {
		f *= s
	}
	return f
}

// kaimingUniformBound is the bound of nn.init.kaiming_uniform_(w, a=√5),
// computed in the order PyTorch 1.13 computes it (gain, then std, then
// bound), so that the bound is the same double.
func kaimingUniformBound(fan int64) float64 {
	a := math.Sqrt(5)
	gain := math.Sqrt(2.0 / (1 + a*a))
	std := gain / math.Sqrt(float64(fan))
	return math.Sqrt(3.0) * std
}

// InitReference initialises every parameter of m as the constructors of
// PyTorch's Conv2d and Linear do (reset_parameters: kaiming_uniform_ with
// a=√5 for a weight, then uniform_(±1/√fan_in) for its bias), in module
// order, drawing from g exactly as PyTorch 1.13 does on the CPU: seeded
// alike, the weights are bit-identical to PyTorch's. Buffers are left alone.
// (InitDefault draws the same distribution from another stream.)
func InitReference(m Module, g *tb.Generator) error {
	var fan int64
	for _, p := range m.NamedParams() {
		if p.Buffer {
			continue
		}
		var bound float64
		if len(p.Shape) > 1 {
			fan = fanIn(p.Shape)
			bound = kaimingUniformBound(fan)
		} else {
			if fan == 0 {
				return fmt.Errorf("init %s: no weight before this bias", p.Name)
			}
			bound = 1 / math.Sqrt(float64(fan))
		}
		t, err := tb.Uniform(g, p.Shape, -bound, bound, tb.Float32, tb.CPU)
		if err != nil {
			return fmt.Errorf("init %s: %w", p.Name, err)
		}
		(*p.Tensor).Close()
		*p.Tensor = t
	}
	return nil
}

// wrn101Convs lists the convolution weights of torchvision's
// wide_resnet101_2 (stem and layer1..layer4, no bias) in construction order
// (a layer's downsample convolution is built before its first block) and
// in module order (after the first block's conv3).
func wrn101Convs() (construction, modules [][]int64) {
	stem := []int64{64, 3, 7, 7}
	construction, modules = [][]int64{stem}, [][]int64{stem}
	inplanes := int64(64)
	for i, blocks := range [4]int{3, 4, 23, 3} {
		planes := int64(64) << i
		width := planes * 2 // width_per_group 128
		down := []int64{planes * 4, inplanes, 1, 1}
		construction = append(construction, down)
		for b := 0; b < blocks; b++ {
			convs := [][]int64{{width, inplanes, 1, 1}, {width, width, 3, 3}, {planes * 4, width, 1, 1}}
			construction = append(construction, convs...)
			modules = append(modules, convs...)
			if b == 0 {
				modules = append(modules, down)
			}
			inplanes = planes * 4
		}
	}
	return construction, modules
}

// DrawWRN101Init draws from g what torchvision 0.14's wide_resnet101_2()
// constructor draws, in its order, and discards the numbers: each
// convolution's and the classifier's default initialisation as they are
// built, then kaiming_normal_(mode="fan_out", nonlinearity="relu") over
// every convolution in module order (batch norms draw nothing). The
// reference builds this network (and then loads its weights) before it
// trains the teacher.
func DrawWRN101Init(g *tb.Generator) error {
	draw := func(t *tb.Tensor, err error) error {
		if err != nil {
			return fmt.Errorf("wide_resnet101_2 initialisation: %w", err)
		}
		t.Close()
		return nil
	}
	construction, modules := wrn101Convs()
	for _, s := range construction {
		if err := draw(tb.Uniform(g, s, -kaimingUniformBound(fanIn(s)), kaimingUniformBound(fanIn(s)), tb.Float32, tb.CPU)); err != nil {
			return err
		}
	}
	fc := []int64{1000, 2048}
	if err := draw(tb.Uniform(g, fc, -kaimingUniformBound(2048), kaimingUniformBound(2048), tb.Float32, tb.CPU)); err != nil {
		return err
	}
	if err := draw(tb.Uniform(g, fc[:1], -1/math.Sqrt(2048), 1/math.Sqrt(2048), tb.Float32, tb.CPU)); err != nil {
		return err
	}
	for _, s := range modules {
		std := math.Sqrt(2.0) / math.Sqrt(float64(s[0]*s[2]*s[3]))
		if err := draw(tb.Normal(g, s, 0, std, tb.Float32, tb.CPU)); err != nil {
			return err
		}
	}
	return nil
}

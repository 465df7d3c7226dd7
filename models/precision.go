package models

import (
	"errors"
	"fmt"
	"strings"

	tb "github.com/puad-go/puad/torchbind"
)

// Precision is the arithmetic the networks run in. Whatever it is, their
// outputs are converted to float32 right after the forward pass: the maps'
// reductions, the quantile normalisation, pooled features, statistics and
// fusion always run in float32.
type Precision string

// The precisions of the networks.
const (
	// FP32 is float32 throughout: the reference's arithmetic, bit for bit,
	// and the default.
	FP32 Precision = "fp32"
	// BF16 runs the networks in bfloat16 (8-bit mantissa, float32's range):
	// on CPUs with native bfloat16 (AVX512-BF16, AMX) and on CUDA.
	BF16 Precision = "bf16"
	// FP16 runs the networks in float16 (11-bit mantissa): CUDA only.
	FP16 Precision = "fp16"
)

// ParsePrecision reads "fp32", "bf16" or "fp16" (also float32, bfloat16,
// float16); "" is FP32.
func ParsePrecision(s string) (Precision, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "fp32", "float32":
		return FP32, nil
	case "bf16", "bfloat16":
		return BF16, nil
	case "fp16", "float16", "half":
		return FP16, nil
	}
	return "", fmt.Errorf("precision %q: want fp32, bf16 or fp16", s)
}

// DType is the tensor type of the networks' weights and activations.
func (p Precision) DType() tb.DType {
	switch p {
	case BF16:
		return tb.BFloat16
	case FP16:
		return tb.Float16
	}
	return tb.Float32
}

// UnitRoundoff is the largest relative error of rounding a value to the
// networks' type: 2^-24 for float32, 2^-8 for bfloat16, 2^-11 for float16.
func (p Precision) UnitRoundoff() float64 {
	switch p {
	case BF16:
		return 0x1p-8
	case FP16:
		return 0x1p-11
	}
	return 0x1p-24
}

func (p Precision) String() string {
	if p == "" {
		return string(FP32)
	}
	return string(p)
}

// ErrPrecisionUnsupported is what every PrecisionError matches with errors.Is.
var ErrPrecisionUnsupported = errors.New("precision not supported")

// PrecisionError says that a precision cannot run on a device, and why.
type PrecisionError struct {
	Precision Precision
	Device    tb.Device
	Reason    string
}

func (e *PrecisionError) Error() string {
	return fmt.Sprintf("precision %s on %v: %s", e.Precision, e.Device, e.Reason)
}

// Unwrap makes errors.Is(err, ErrPrecisionUnsupported) true.
func (e *PrecisionError) Unwrap() error { return ErrPrecisionUnsupported }

// Check says whether p can run on dev: bfloat16 needs a CPU with native
// bfloat16 instructions (emulated, it would be slower than float32) or a
// CUDA device, float16 a CUDA device (libtorch's CPU float16 convolutions
// are slow or missing). Unknown precisions are errors too.
func (p Precision) Check(dev tb.Device) error {
	switch p {
	case "", FP32:
		return nil
	case BF16:
		if dev.IsCUDA() || tb.CPUSupportsBF16() {
			return nil
		}
		return &PrecisionError{p, dev, "this CPU has no native bfloat16 instructions (avx512_bf16 or amx_bf16)"}
	case FP16:
		if dev.IsCUDA() {
			return nil
		}
		return &PrecisionError{p, dev, "float16 runs only on CUDA devices"}
	}
	return &PrecisionError{p, dev, "unknown precision"}
}

// Network is a module with a forward pass.
type Network interface {
	Module
	Forward(x *tb.Tensor) (*tb.Tensor, error)
}

// castParams sets each parameter of dst to its counterpart in src converted
// to dt, 4-D weights laid out in f. dst must be a network of the same
// architecture as src. The conversions are part of the autograd graph, so
// gradients of dst's tensors reach src's. Buffers keep their type.
func castParams(dst, src Module, dt tb.DType, f tb.MemoryFormat) error {
	dp, sp := dst.NamedParams(), src.NamedParams()
	if len(dp) != len(sp) {
		return fmt.Errorf("cast: %d parameters for %d", len(dp), len(sp))
	}
	for i, p := range sp {
		t := *p.Tensor
		var c *tb.Tensor
		var err error
		switch {
		case p.Buffer:
			c, err = t.Ref()
		case len(p.Shape) == 4 && f != tb.ContiguousFormat:
			var d *tb.Tensor
			if d, err = t.ToDType(dt); err == nil {
				c, err = tb.ToMemoryFormat(d, f)
				d.Close()
			}
		default:
			c, err = t.ToDType(dt)
		}
		if err != nil {
			return fmt.Errorf("cast %s to %v: %w", p.Name, dt, err)
		}
		(*dp[i].Tensor).Close()
		*dp[i].Tensor = c
	}
	return nil
}

// MemoryLayout is the memory format of a network's weights in precision p,
// chosen by measurement on the CPU (an AMD EPYC with AVX512-BF16, libtorch
// 1.13, oneDNN; 256-pixel images, batches of 1 and 8; see layouts). A
// convolution with channels-last weights gives a channels-last output, so
// the layout carries through the network while its input stays contiguous.
// float32 always keeps libtorch's default layout, so that it stays bit for
// bit the reference's.
func MemoryLayout(net string, size Size, p Precision) tb.MemoryFormat {
	if p == FP32 || p == "" {
		return tb.ContiguousFormat
	}
	return layouts[layoutKey{net, size, p}]
}

// The networks' names in MemoryLayout.
const (
	NetTeacher     = "teacher"
	NetStudent     = "student"
	NetAutoEncoder = "autoencoder"
)

type layoutKey struct {
	net  string
	size Size
	p    Precision
}

// layouts lists the networks whose reduced-precision weights are faster
// channels-last; every other one stays in the contiguous layout. Measured
// forward times in bfloat16, contiguous → channels-last, ms per 256-pixel
// image, best of three alternated rounds on a loaded 2-vCPU EPYC (float32
// contiguous for comparison):
//
//	S teacher      batch 1: 736 → 516 (fp32 763)   batch 8: 770 → 457 (fp32 2441)
//	S student      batch 1: 898 → 556 (fp32 2270)  batch 8: 776 → 553 (fp32 2571)
//	S autoencoder  batch 1:  84 →  34 (fp32 66)    batch 8:  92 →  61 (fp32 206)
//	M teacher      batch 1: 1110 → 876 (fp32 2407)
//	M student      batch 1: 1129 → 2131 (fp32 2408): stays contiguous
//	M autoencoder  batch 1:  61 →  46 (fp32 90)
//
// float16 runs on CUDA only and was not measured here: contiguous.
var layouts = map[layoutKey]tb.MemoryFormat{
	{NetTeacher, Small, BF16}:      tb.ChannelsLast,
	{NetStudent, Small, BF16}:      tb.ChannelsLast,
	{NetAutoEncoder, Small, BF16}:  tb.ChannelsLast,
	{NetTeacher, Medium, BF16}:     tb.ChannelsLast,
	{NetAutoEncoder, Medium, BF16}: tb.ChannelsLast,
}

// SetPrecision converts the networks' weights to p, once, in the layouts
// MemoryLayout chooses; Mu, Sigma and the quantiles stay float32. Converting a
// model already in p does nothing; converting back to float32 is refused,
// since the rounding cannot be undone.
func (m *EfficientAD) SetPrecision(p Precision) error {
	if p == "" {
		p = FP32
	}
	cur := m.Precision
	if cur == "" {
		cur = FP32
	}
	if p == cur {
		return nil
	}
	if cur != FP32 {
		return fmt.Errorf("set precision %s: the model's weights are already %s", p, cur)
	}
	if err := p.Check(m.Device); err != nil {
		return err
	}
	for _, n := range []struct {
		name string
		mod  Module
	}{{NetTeacher, m.Teacher}, {NetStudent, m.Student}, {NetAutoEncoder, m.AutoEncoder}} {
		if err := castParams(n.mod, n.mod, p.DType(), MemoryLayout(n.name, m.Size, p)); err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
	}
	m.Precision = p
	return nil
}

// Input returns a batch converted once to p's type, for every network to
// read; in float32 it is a new handle on x itself (no conversion).
func (p Precision) Input(x *tb.Tensor) (*tb.Tensor, error) {
	if p == FP32 || p == "" {
		return x.Ref()
	}
	return x.ToDType(p.DType())
}

// Forward runs net on x (from Input) and returns the output as a
// contiguous float32 tensor; in float32 it is net.Forward itself.
func (p Precision) Forward(net Network, x *tb.Tensor) (*tb.Tensor, error) {
	out, err := net.Forward(x)
	if err != nil || p == FP32 || p == "" {
		return out, err
	}
	defer out.Close()
	f, err := out.ToDType(tb.Float32)
	if err != nil {
		return nil, fmt.Errorf("network output to float32: %w", err)
	}
	defer f.Close()
	return tb.ToMemoryFormat(f, tb.ContiguousFormat)
}

// Cast returns a copy of the network whose weights are n's converted to p
// (laid out as MemoryLayout says for net), for mixed-precision training: the
// conversions are part of the autograd graph, so the gradients reach n's
// float32 weights, which the optimiser updates. Close the copy (Close) after
// the step.
func (n *PDN) Cast(net string, p Precision) (*PDN, error) {
	c, err := NewPDN(n.Size, n.OutChannels, n.Padding)
	if err != nil {
		return nil, err
	}
	if err := castParams(c, n, p.DType(), MemoryLayout(net, n.Size, p)); err != nil {
		Close(c)
		return nil, fmt.Errorf("%s: %w", net, err)
	}
	return c, nil
}

// Cast is PDN.Cast for the autoencoder; the copy shares the dropout
// settings and generator. size selects the layout.
func (a *AutoEncoder) Cast(size Size, p Precision) (*AutoEncoder, error) {
	c := NewAutoEncoder(a.OutChannels, a.ImgSize, a.Padding)
	c.DropoutP, c.Training, c.Gen = a.DropoutP, a.Training, a.Gen
	if err := castParams(c, a, p.DType(), MemoryLayout(NetAutoEncoder, size, p)); err != nil {
		Close(c)
		return nil, fmt.Errorf("%s: %w", NetAutoEncoder, err)
	}
	return c, nil
}

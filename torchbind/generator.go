package torchbind

/*
#include "torchbind.h"
*/
import "C"

import "runtime"

// Generator is a libtorch random generator with its own state. The same seed
// gives the same sequences as torch.Generator().manual_seed(seed) in PyTorch
// (CPU), e.g. for randperm.
type Generator struct {
	h   C.tb_generator
	dev Device
}

// NewGenerator returns a generator on dev seeded with seed.
func NewGenerator(seed uint64, dev Device) (*Generator, error) {
	var g C.tb_generator
	if err := check("generator", C.tb_generator_new(C.uint64_t(seed), C.int(dev.Type), C.int(dev.Index), &g)); err != nil {
		return nil, err
	}
	gen := &Generator{h: g, dev: dev}
	runtime.SetFinalizer(gen, (*Generator).Close)
	return gen, nil
}

// Close releases the generator; idempotent and nil-safe.
func (g *Generator) Close() {
	if g == nil || g.h == nil {
		return
	}
	runtime.SetFinalizer(g, nil)
	C.tb_generator_free(g.h)
	g.h = nil
}

// Device is where the generator draws numbers for.
func (g *Generator) Device() Device { return g.dev }

// State returns a copy of the generator state (a uint8 tensor), for checkpoints.
func (g *Generator) State() ([]byte, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_generator_get_state(c.gen(g), &out)
	t, err := c.tensor("generator_state", msg, out)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	return Values[uint8](t)
}

// SetState restores a state returned by State.
func (g *Generator) SetState(state []byte) error {
	t, err := FromSlice(state)
	if err != nil {
		return err
	}
	defer t.Close()
	var c call
	msg := C.tb_generator_set_state(c.gen(g), c.arg(t))
	return c.err("generator_set_state", msg)
}

// Rand returns uniform samples in [0, 1) drawn from g (nil: the default generator).
func Rand(g *Generator, shape []int64, dt DType, dev Device) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_random(0, c.gen(g), dimsPtr(shape), C.int(len(shape)), C.int(dt), C.int(dev.Type), C.int(dev.Index), &out)
	return c.tensor("rand", msg, out)
}

// Randn returns standard normal samples drawn from g.
func Randn(g *Generator, shape []int64, dt DType, dev Device) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_random(1, c.gen(g), dimsPtr(shape), C.int(len(shape)), C.int(dt), C.int(dev.Type), C.int(dev.Index), &out)
	return c.tensor("randn", msg, out)
}

// Uniform returns samples uniform in [lo, hi) drawn from g as PyTorch's
// in-place uniform_(lo, hi) draws them (nn.init.uniform_, the default
// initialisation of Conv2d and Linear).
func Uniform(g *Generator, shape []int64, lo, hi float64, dt DType, dev Device) (*Tensor, error) {
	return randomFill(0, "uniform_", g, shape, lo, hi, dt, dev)
}

// Normal returns normal samples with the given mean and standard deviation
// drawn from g as PyTorch's in-place normal_(mean, std) draws them
// (nn.init.normal_, kaiming_normal_).
func Normal(g *Generator, shape []int64, mean, std float64, dt DType, dev Device) (*Tensor, error) {
	return randomFill(1, "normal_", g, shape, mean, std, dt, dev)
}

func randomFill(kind int, op string, g *Generator, shape []int64, a, b float64, dt DType, dev Device) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_random_fill(C.int(kind), c.gen(g), dimsPtr(shape), C.int(len(shape)), C.int(dt), C.int(dev.Type), C.int(dev.Index), C.double(a), C.double(b), &out)
	return c.tensor(op, msg, out)
}

// RandomInt64 draws one number as torch.empty((), dtype=torch.int64).random_()
// does on the CPU: uniform in [0, 2^63), drawn from g. A DataLoader that
// shuffles draws two of these from the default generator for each iterator
// (the iterator's base seed, then the sampler's seed).
func RandomInt64(g *Generator) (int64, error) {
	var c call
	var v C.int64_t
	msg := C.tb_random_int64(c.gen(g), &v)
	if err := c.err("random_", msg); err != nil {
		return 0, err
	}
	return int64(v), nil
}

// RandInt returns int64 samples uniform in [low, high) drawn from g.
func RandInt(g *Generator, low, high int64, shape []int64, dev Device) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_randint(c.gen(g), C.int64_t(low), C.int64_t(high), dimsPtr(shape), C.int(len(shape)), C.int(dev.Type), C.int(dev.Index), &out)
	return c.tensor("randint", msg, out)
}

// RandPerm returns a random permutation of 0..n-1 (int64) drawn from g.
func RandPerm(g *Generator, n int64, dev Device) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_randperm(c.gen(g), C.int64_t(n), C.int(dev.Type), C.int(dev.Index), &out)
	return c.tensor("randperm", msg, out)
}

// Bernoulli returns 0/1 samples with probability p, shaped like t.
func Bernoulli(g *Generator, like *Tensor, p float64) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_bernoulli(c.gen(g), c.arg(like), C.double(p), &out)
	return c.tensor("bernoulli", msg, out)
}

// Perm is randperm(n) from a CPU generator seeded with seed, as Go ints.
func Perm(seed uint64, n int) ([]int64, error) {
	g, err := NewGenerator(seed, CPU)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	t, err := RandPerm(g, int64(n), CPU)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	return Values[int64](t)
}

package torchbind

/*
#include "torchbind.h"
*/
import "C"

import (
	"os"
	"runtime"
	"strings"
	"sync"
)

// MemoryFormat is the order in which a 4-D tensor's elements lie in memory.
type MemoryFormat int

// Memory formats.
const (
	// ContiguousFormat is NCHW, libtorch's default.
	ContiguousFormat MemoryFormat = C.TB_CONTIGUOUS_FORMAT
	// ChannelsLast is NHWC: the channels of one pixel lie together, the
	// layout oneDNN's and cuDNN's fastest convolutions work in.
	ChannelsLast MemoryFormat = C.TB_CHANNELS_LAST
)

// ToMemoryFormat is t.contiguous(memory_format=f): a copy laid out in f,
// or a new handle on t when it is already. It is part of the autograd graph.
func ToMemoryFormat(t *Tensor, f MemoryFormat) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_to_memory_format(c.arg(t), C.int(f), &out)
	return c.tensor("to_memory_format", msg, out)
}

// IsChannelsLast reports whether t is a 4-D tensor laid out densely in
// channels-last order.
func IsChannelsLast(t *Tensor) (bool, error) {
	var v C.int
	var c call
	msg := C.tb_is_channels_last(c.arg(t), &v)
	if err := c.err("is_channels_last", msg); err != nil {
		return false, err
	}
	return v != 0, nil
}

// CUDAMath are the process-wide switches of CUDA arithmetic.
type CUDAMath struct {
	// CuDNNBenchmark lets cuDNN time several convolution algorithms on the
	// first call of each shape and keep the fastest (faster on fixed shapes,
	// but the algorithm, and so the last bits, may differ between runs).
	CuDNNBenchmark bool
	// TF32 lets cuDNN convolutions and cuBLAS matmuls round float32 inputs
	// to TensorFloat-32 (10-bit mantissa) on Ampere and later GPUs. Off by
	// default: float32 results then agree with the CPU's to about 1e-6.
	TF32 bool
}

// SetCUDAMath sets the CUDA switches for the whole process. Without CUDA it
// changes nothing that matters.
func SetCUDAMath(m CUDAMath) error {
	var c call
	msg := C.tb_set_cuda_math(cbool(m.CuDNNBenchmark), cbool(m.TF32))
	return c.err("set_cuda_math", msg)
}

// GetCUDAMath returns the CUDA switches in force.
func GetCUDAMath() (CUDAMath, error) {
	var b, tf C.int
	var c call
	msg := C.tb_get_cuda_math(&b, &tf)
	if err := c.err("get_cuda_math", msg); err != nil {
		return CUDAMath{}, err
	}
	return CUDAMath{CuDNNBenchmark: b != 0, TF32: tf != 0}, nil
}

var cpuBF16 = sync.OnceValue(func() bool {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		return false
	}
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return false
	}
	return cpuinfoHasBF16(string(data))
})

// CPUSupportsBF16 reports whether the CPU computes bfloat16 natively
// (the x86 flags avx512_bf16 or amx_bf16): only then are bfloat16
// convolutions faster than float32 ones. It is false where the flags cannot
// be read (other systems than Linux on amd64).
func CPUSupportsBF16() bool { return cpuBF16() }

// cpuinfoHasBF16 looks for the bfloat16 flags on the flags lines of a
// /proc/cpuinfo text.
func cpuinfoHasBF16(cpuinfo string) bool {
	for _, line := range strings.Split(cpuinfo, "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != "flags" {
			continue
		}
		for _, f := range strings.Fields(value) {
			if f == "avx512_bf16" || f == "amx_bf16" {
				return true
			}
		}
	}
	return false
}

package torchbind

/*
#include <stdlib.h>
#include "torchbind.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"
)

// Tensor is a handle on a libtorch tensor. It must be released with Close (or
// by the Scope that tracks it); methods on a closed or nil tensor return
// errors rather than crash.
type Tensor struct {
	h C.tb_tensor
}

var (
	liveTensors   atomic.Int64
	leakedTensors atomic.Int64
)

// LiveTensors is the number of tensors created and not yet released.
func LiveTensors() int64 { return liveTensors.Load() }

// LeakedTensors counts tensors that were never closed and were freed by the
// garbage collector instead: each one is a bug in its owner.
func LeakedTensors() int64 { return leakedTensors.Load() }

func newTensor(h C.tb_tensor) *Tensor {
	if h == nil {
		return nil
	}
	t := &Tensor{h: h}
	liveTensors.Add(1)
	runtime.SetFinalizer(t, func(t *Tensor) {
		if t.h != nil {
			leakedTensors.Add(1)
			t.free()
		}
	})
	return t
}

func (t *Tensor) free() {
	C.tb_tensor_free(t.h)
	t.h = nil
	liveTensors.Add(-1)
}

// Close releases the tensor's memory (its storage is freed once no other
// tensor views it). Close is idempotent and safe on nil.
func (t *Tensor) Close() {
	if t == nil || t.h == nil {
		return
	}
	runtime.SetFinalizer(t, nil)
	t.free()
}

func dimsPtr(d []int64) *C.int64_t {
	if len(d) == 0 {
		return nil
	}
	return (*C.int64_t)(unsafe.Pointer(&d[0]))
}

// Info describes a tensor.
type Info struct {
	DType        DType
	Shape        []int64
	Device       Device
	RequiresGrad bool
}

// Info returns the tensor's dtype, shape, device and requires_grad flag.
func (t *Tensor) Info() (Info, error) {
	var dt, nd, devType, devIdx, rg C.int
	var sizes [C.TB_MAX_DIMS]C.int64_t
	var c call
	msg := C.tb_tensor_info(c.arg(t), &dt, &nd, &sizes[0], &devType, &devIdx, &rg)
	if err := c.err("info", msg); err != nil {
		return Info{}, err
	}
	shape := make([]int64, int(nd))
	for i := range shape {
		shape[i] = int64(sizes[i])
	}
	return Info{
		DType:        DType(dt),
		Shape:        shape,
		Device:       Device{Type: DeviceType(devType), Index: int(devIdx)},
		RequiresGrad: rg != 0,
	}, nil
}

// Shape returns the tensor's sizes (nil on a closed tensor).
func (t *Tensor) Shape() []int64 {
	info, err := t.Info()
	if err != nil {
		return nil
	}
	return info.Shape
}

// Numel is the number of elements (0 on a closed tensor).
func (t *Tensor) Numel() int64 {
	info, err := t.Info()
	if err != nil {
		return 0
	}
	return numel(info.Shape)
}

func numel(shape []int64) int64 {
	n := int64(1)
	for _, s := range shape {
		n *= s
	}
	return n
}

func (t *Tensor) String() string {
	info, err := t.Info()
	if err != nil {
		return "Tensor(<closed>)"
	}
	return fmt.Sprintf("Tensor(%v, %v, %v)", info.Shape, info.DType, info.Device)
}

// Element is a Go type that maps to a tensor dtype.
type Element interface {
	~float32 | ~float64 | ~int64 | ~int32 | ~uint8 | ~bool
}

func dtypeOf[E Element]() DType {
	var z E
	switch any(z).(type) {
	case float32:
		return Float32
	case float64:
		return Float64
	case int64:
		return Int64
	case int32:
		return Int32
	case uint8:
		return Uint8
	case bool:
		return Bool
	}
	panic("torchbind: unsupported element type")
}

// FromSlice copies data into a new contiguous CPU tensor of the given shape.
func FromSlice[E Element](data []E, shape ...int64) (*Tensor, error) {
	if shape == nil {
		shape = []int64{int64(len(data))}
	}
	if n := numel(shape); n != int64(len(data)) {
		return nil, &Error{Op: "from_slice", Msg: fmt.Sprintf("shape %v needs %d elements, got %d", shape, n, len(data))}
	}
	var ptr unsafe.Pointer
	if len(data) > 0 {
		ptr = unsafe.Pointer(&data[0])
	}
	strides := contiguousStrides(shape)
	var c call
	var out C.tb_tensor
	msg := C.tb_from_blob(ptr, C.int(dtypeOf[E]()), dimsPtr(shape), dimsPtr(strides), C.int(len(shape)), 0, &out)
	return c.tensor("from_slice", msg, out)
}

// FromBytes builds a new contiguous CPU tensor from a strided view of raw
// little-endian storage bytes: element (i0, i1, ...) is read at element
// index offset + Σ ik·strides[k]. The bytes are copied. The view is checked to
// lie within data.
func FromBytes(data []byte, dt DType, shape, strides []int64, offset int64) (*Tensor, error) {
	if len(shape) != len(strides) {
		return nil, &Error{Op: "from_bytes", Msg: fmt.Sprintf("%d sizes but %d strides", len(shape), len(strides))}
	}
	if len(shape) > int(C.TB_MAX_DIMS) {
		return nil, &Error{Op: "from_bytes", Msg: "more than 16 dimensions"}
	}
	es := int64(dt.Size())
	if es == 0 {
		return nil, &Error{Op: "from_bytes", Msg: "unknown dtype " + dt.String()}
	}
	lo, hi := offset, offset // element index range touched
	empty := false
	for i, s := range shape {
		if s < 0 {
			return nil, &Error{Op: "from_bytes", Msg: fmt.Sprintf("negative size %d", s)}
		}
		if s == 0 {
			empty = true
			continue
		}
		span := (s - 1) * strides[i]
		if span < 0 {
			lo += span
		} else {
			hi += span
		}
	}
	if !empty && (offset < 0 || lo < 0 || (hi+1)*es > int64(len(data))) {
		return nil, &Error{Op: "from_bytes", Msg: fmt.Sprintf("view (shape %v, strides %v, offset %d) runs past a storage of %d bytes", shape, strides, offset, len(data))}
	}
	var ptr unsafe.Pointer
	if len(data) > 0 {
		ptr = unsafe.Pointer(&data[0])
	}
	var c call
	var out C.tb_tensor
	msg := C.tb_from_blob(ptr, C.int(dt), dimsPtr(shape), dimsPtr(strides), C.int(len(shape)), C.int64_t(offset), &out)
	return c.tensor("from_bytes", msg, out)
}

func contiguousStrides(shape []int64) []int64 {
	st := make([]int64, len(shape))
	acc := int64(1)
	for i := len(shape) - 1; i >= 0; i-- {
		st[i] = acc
		if shape[i] > 1 {
			acc *= shape[i]
		}
	}
	return st
}

// Bytes returns the tensor's values (moved to the CPU, contiguous) as raw
// little-endian bytes, with its dtype and shape.
func (t *Tensor) Bytes() ([]byte, Info, error) {
	info, err := t.Info()
	if err != nil {
		return nil, info, err
	}
	n := numel(info.Shape) * int64(info.DType.Size())
	buf := make([]byte, n)
	var ptr unsafe.Pointer
	if n > 0 {
		ptr = unsafe.Pointer(&buf[0])
	}
	var c call
	msg := C.tb_to_blob(c.arg(t), ptr, C.int64_t(n))
	if err := c.err("to_bytes", msg); err != nil {
		return nil, info, err
	}
	return buf, info, nil
}

// Values copies the tensor's elements into a Go slice. The tensor's dtype
// must match E (convert with To first).
func Values[E Element](t *Tensor) ([]E, error) {
	info, err := t.Info()
	if err != nil {
		return nil, err
	}
	want := dtypeOf[E]()
	if info.DType != want {
		return nil, &Error{Op: "values", Msg: fmt.Sprintf("tensor is %v, not %v", info.DType, want)}
	}
	out := make([]E, numel(info.Shape))
	var ptr unsafe.Pointer
	if len(out) > 0 {
		ptr = unsafe.Pointer(&out[0])
	}
	var c call
	msg := C.tb_to_blob(c.arg(t), ptr, C.int64_t(len(out)*want.Size()))
	if err := c.err("values", msg); err != nil {
		return nil, err
	}
	return out, nil
}

// Float32s is Values[float32] after converting to float32 if needed.
func (t *Tensor) Float32s() ([]float32, error) {
	c, err := t.To(CPU, Float32)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return Values[float32](c)
}

// Float64s is Values[float64] after converting to float64 if needed.
func (t *Tensor) Float64s() ([]float64, error) {
	c, err := t.To(CPU, Float64)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return Values[float64](c)
}

// Int64s is Values[int64] after converting to int64 if needed.
func (t *Tensor) Int64s() ([]int64, error) {
	c, err := t.To(CPU, Int64)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return Values[int64](c)
}

// Item returns the value of a one-element tensor.
func (t *Tensor) Item() (float64, error) {
	var v C.double
	var c call
	msg := C.tb_item(c.arg(t), &v)
	if err := c.err("item", msg); err != nil {
		return 0, err
	}
	return float64(v), nil
}

// To returns the tensor on device dev with dtype dt (a new handle; the same
// storage when nothing changes).
func (t *Tensor) To(dev Device, dt DType) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_to(c.arg(t), C.int(dev.Type), C.int(dev.Index), C.int(dt), &out)
	return c.tensor("to", msg, out)
}

// ToDevice moves the tensor to dev, keeping its dtype.
func (t *Tensor) ToDevice(dev Device) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_to(c.arg(t), C.int(dev.Type), C.int(dev.Index), -1, &out)
	return c.tensor("to", msg, out)
}

// ToDType converts the tensor to dt on its own device, keeping its memory
// format (a new handle; the same storage when dt is already its type). The
// conversion is part of the autograd graph.
func (t *Tensor) ToDType(dt DType) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_to(c.arg(t), -1, 0, C.int(dt), &out)
	return c.tensor("to", msg, out)
}

// Ref returns a second handle on the same tensor (same storage, same autograd
// identity), with its own lifetime.
func (t *Tensor) Ref() (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_shallow_clone(c.arg(t), &out)
	return c.tensor("ref", msg, out)
}

// Full returns a tensor of the given shape filled with v.
func Full(shape []int64, v float64, dt DType, dev Device) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_full(dimsPtr(shape), C.int(len(shape)), C.double(v), C.int(dt), C.int(dev.Type), C.int(dev.Index), &out)
	return c.tensor("full", msg, out)
}

// Zeros returns a tensor of zeros.
func Zeros(shape []int64, dt DType, dev Device) (*Tensor, error) { return Full(shape, 0, dt, dev) }

// Ones returns a tensor of ones.
func Ones(shape []int64, dt DType, dev Device) (*Tensor, error) { return Full(shape, 1, dt, dev) }

// Scalar returns a 0-d tensor holding v.
func Scalar(v float64, dt DType, dev Device) (*Tensor, error) { return Full(nil, v, dt, dev) }

// Arange returns start, start+step, ... below end, as torch.arange.
func Arange(start, end, step float64, dt DType, dev Device) (*Tensor, error) {
	var c call
	var out C.tb_tensor
	msg := C.tb_arange(C.double(start), C.double(end), C.double(step), C.int(dt), C.int(dev.Type), C.int(dev.Index), &out)
	return c.tensor("arange", msg, out)
}

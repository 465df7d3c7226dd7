package ptfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// maxDims bounds the number of dimensions of a tensor (PyTorch itself is
// limited to far fewer in practice).
const maxDims = 64

// Tensor is a strided view into a storage, as PyTorch represents it.
//
// Element (i0, i1, ..., ik) of the tensor is the element at index
// Offset + i0*Strides[0] + ... + ik*Strides[k] of the storage, where the
// storage is Storage read as little-endian values of DType. A 0-d tensor
// (a scalar) has empty Shape and Strides.
//
// Storage holds the bytes of the whole storage, which may be larger than the
// view (a slice of a bigger tensor, or one of several tensors that share a
// storage). Tensors loaded from one file that shared a storage when they were
// saved have Storage slices with the same backing array and length; see
// SharesStorage.
type Tensor struct {
	DType   DType
	Shape   []int64
	Strides []int64 // in elements
	Offset  int64   // storage offset in elements
	Storage []byte  // the whole storage, little-endian
	// RequiresGrad is the requires_grad flag that was saved with the tensor
	// (true for most nn.Parameter values saved outside a state dict). It is
	// informative only.
	RequiresGrad bool
}

// ContiguousStrides returns the row-major (C order) strides, in elements,
// of a tensor with the given shape.
func ContiguousStrides(shape []int64) []int64 {
	strides := make([]int64, len(shape))
	acc := int64(1)
	for i := len(shape) - 1; i >= 0; i-- {
		strides[i] = acc
		if shape[i] > 1 {
			acc *= shape[i]
		}
	}
	return strides
}

// New returns a contiguous tensor of the given type and shape whose storage
// is data (not copied). The length of data must be the number of elements
// times the element size; a nil or empty shape makes a 0-d tensor with one
// element.
func New(dtype DType, shape []int64, data []byte) (*Tensor, error) {
	t := &Tensor{
		DType:   dtype,
		Shape:   append([]int64{}, shape...),
		Strides: ContiguousStrides(shape),
		Storage: data,
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	n, _ := t.Numel()
	if want := n * int64(dtype.Size()); int64(len(data)) != want {
		return nil, fmt.Errorf("tensor of shape %v and dtype %v needs %d bytes, got %d", shape, dtype, want, len(data))
	}
	return t, nil
}

// FromFloat32s returns a contiguous float32 tensor of the given shape holding
// a copy of data. A nil shape makes a 0-d tensor from a single value.
func FromFloat32s(shape []int64, data []float32) (*Tensor, error) {
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return New(Float32, shape, b)
}

// FromFloat64s returns a contiguous float64 tensor of the given shape holding
// a copy of data.
func FromFloat64s(shape []int64, data []float64) (*Tensor, error) {
	b := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
	}
	return New(Float64, shape, b)
}

// FromInt64s returns a contiguous int64 tensor of the given shape holding a
// copy of data.
func FromInt64s(shape []int64, data []int64) (*Tensor, error) {
	b := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
	}
	return New(Int64, shape, b)
}

// FromBools returns a contiguous bool tensor of the given shape holding a
// copy of data.
func FromBools(shape []int64, data []bool) (*Tensor, error) {
	b := make([]byte, len(data))
	for i, v := range data {
		if v {
			b[i] = 1
		}
	}
	return New(Bool, shape, b)
}

// mulCheck returns a*b for non-negative a and b, or ok=false on overflow.
func mulCheck(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	if a > math.MaxInt64/b {
		return 0, false
	}
	return a * b, true
}

// addCheck returns a+b for non-negative a and b, or ok=false on overflow.
func addCheck(a, b int64) (int64, bool) {
	if a > math.MaxInt64-b {
		return 0, false
	}
	return a + b, true
}

var errOverflow = errors.New("tensor size overflows int64")

// Numel returns the number of elements of the tensor (1 for a 0-d tensor).
// It fails if a dimension is negative or the product overflows int64.
func (t *Tensor) Numel() (int64, error) {
	return numel(t.Shape)
}

func numel(shape []int64) (int64, error) {
	n := int64(1)
	for _, s := range shape {
		if s < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		var ok bool
		if n, ok = mulCheck(n, s); !ok {
			return 0, errOverflow
		}
	}
	return n, nil
}

// Validate checks that the tensor is a well-formed view: a supported dtype,
// as many strides as dimensions, non-negative sizes, strides and offset,
// a storage that holds whole elements, and every element of the view inside
// the storage.
func (t *Tensor) Validate() error {
	if !t.DType.Valid() {
		return fmt.Errorf("invalid dtype %v", t.DType)
	}
	if len(t.Shape) != len(t.Strides) {
		return fmt.Errorf("shape %v and strides %v have different lengths", t.Shape, t.Strides)
	}
	if len(t.Shape) > maxDims {
		return fmt.Errorf("tensor has %d dimensions, at most %d are supported", len(t.Shape), maxDims)
	}
	n, err := t.Numel()
	if err != nil {
		return err
	}
	if _, ok := mulCheck(n, int64(t.DType.Size())); !ok {
		return errOverflow
	}
	es := int64(t.DType.Size())
	if int64(len(t.Storage))%es != 0 {
		return fmt.Errorf("storage of %d bytes does not hold whole %v elements", len(t.Storage), t.DType)
	}
	if t.Offset < 0 {
		return fmt.Errorf("negative storage offset %d", t.Offset)
	}
	for _, s := range t.Strides {
		if s < 0 {
			return fmt.Errorf("negative stride in %v", t.Strides)
		}
	}
	if n == 0 {
		return nil
	}
	last := t.Offset
	for i, s := range t.Shape {
		step, ok := mulCheck(s-1, t.Strides[i])
		if !ok {
			return errOverflow
		}
		if last, ok = addCheck(last, step); !ok {
			return errOverflow
		}
	}
	if avail := int64(len(t.Storage)) / es; last >= avail {
		return fmt.Errorf("view (shape %v, strides %v, offset %d) needs %d elements but its storage has %d",
			t.Shape, t.Strides, t.Offset, last+1, avail)
	}
	return nil
}

// IsContiguous reports whether the view is laid out in row-major order
// without gaps (dimensions of size 1 may have any stride). The storage
// offset and the storage size do not matter.
func (t *Tensor) IsContiguous() bool {
	expected := int64(1)
	for i := len(t.Shape) - 1; i >= 0; i-- {
		if t.Shape[i] == 1 {
			continue
		}
		if t.Shape[i] == 0 {
			return true
		}
		if t.Strides[i] != expected {
			return false
		}
		expected *= t.Shape[i]
	}
	return true
}

// SharesStorage reports whether t and u view the same storage bytes (the
// same backing array and length), as tensors loaded from one file do when
// they shared a storage in PyTorch.
func (t *Tensor) SharesStorage(u *Tensor) bool {
	if len(t.Storage) == 0 || len(u.Storage) != len(t.Storage) {
		return false
	}
	return &t.Storage[0] == &u.Storage[0]
}

// Contiguous returns a packed copy of the tensor: C strides, offset 0 and a
// new storage holding exactly the elements of the view, in row-major order.
// It panics if the view is invalid (see Validate); tensors returned by Load
// are always valid.
func (t *Tensor) Contiguous() *Tensor {
	if err := t.Validate(); err != nil {
		panic("ptfile: Contiguous: " + err.Error())
	}
	n, _ := t.Numel()
	es := int64(t.DType.Size())
	out := &Tensor{
		DType:        t.DType,
		Shape:        append([]int64{}, t.Shape...),
		Strides:      ContiguousStrides(t.Shape),
		Storage:      make([]byte, n*es),
		RequiresGrad: t.RequiresGrad,
	}
	if n == 0 {
		return out
	}
	if t.IsContiguous() {
		copy(out.Storage, t.Storage[t.Offset*es:(t.Offset+n)*es])
		return out
	}
	// Merge the trailing dimensions that are contiguous among themselves into
	// one run that is copied at once.
	nd := len(t.Shape)
	run := int64(1)
	for nd > 0 && (t.Shape[nd-1] == 1 || t.Strides[nd-1] == run) {
		run *= t.Shape[nd-1]
		nd--
	}
	runBytes := run * es
	idx := make([]int64, nd)
	pos := t.Offset
	for dst := int64(0); dst < n*es; dst += runBytes {
		copy(out.Storage[dst:dst+runBytes], t.Storage[pos*es:pos*es+runBytes])
		for d := nd - 1; d >= 0; d-- {
			idx[d]++
			pos += t.Strides[d]
			if idx[d] < t.Shape[d] {
				break
			}
			pos -= t.Strides[d] * t.Shape[d]
			idx[d] = 0
		}
	}
	return out
}

// elements returns the view's elements packed in row-major order, checking
// that the dtype is one of those allowed.
func (t *Tensor) elements(want string, allowed ...DType) ([]byte, error) {
	ok := false
	for _, d := range allowed {
		if t.DType == d {
			ok = true
		}
	}
	if !ok {
		return nil, fmt.Errorf("cannot read a %v tensor as %s", t.DType, want)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return t.Contiguous().Storage, nil
}

// Float32s returns the elements of the view in row-major order as float32.
// It accepts float32, float16 and bfloat16 tensors (converted exactly).
func (t *Tensor) Float32s() ([]float32, error) {
	b, err := t.elements("float32", Float32, Float16, BFloat16)
	if err != nil {
		return nil, err
	}
	es := t.DType.Size()
	out := make([]float32, len(b)/es)
	for i := range out {
		switch t.DType {
		case Float32:
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		case Float16:
			out[i] = halfToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		case BFloat16:
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
	}
	return out, nil
}

// Float64s returns the elements of the view in row-major order as float64.
// It accepts every floating point dtype and the integer dtypes whose values
// a float64 holds exactly (int32, int16, int8, uint8, bool).
func (t *Tensor) Float64s() ([]float64, error) {
	if t.DType.IsFloat() {
		if t.DType == Float64 {
			b, err := t.elements("float64", Float64)
			if err != nil {
				return nil, err
			}
			out := make([]float64, len(b)/8)
			for i := range out {
				out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
			}
			return out, nil
		}
		f, err := t.Float32s()
		if err != nil {
			return nil, err
		}
		out := make([]float64, len(f))
		for i, v := range f {
			out[i] = float64(v)
		}
		return out, nil
	}
	if t.DType == Int64 {
		return nil, fmt.Errorf("cannot read a %v tensor as float64 exactly", t.DType)
	}
	ints, err := t.Int64s()
	if err != nil {
		return nil, fmt.Errorf("cannot read a %v tensor as float64", t.DType)
	}
	out := make([]float64, len(ints))
	for i, v := range ints {
		out[i] = float64(v)
	}
	return out, nil
}

// Int64s returns the elements of the view in row-major order as int64. It
// accepts every integer dtype and bool.
func (t *Tensor) Int64s() ([]int64, error) {
	b, err := t.elements("int64", Int64, Int32, Int16, Int8, Uint8, Bool)
	if err != nil {
		return nil, err
	}
	es := t.DType.Size()
	out := make([]int64, len(b)/es)
	for i := range out {
		switch t.DType {
		case Int64:
			out[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		case Int32:
			out[i] = int64(int32(binary.LittleEndian.Uint32(b[4*i:])))
		case Int16:
			out[i] = int64(int16(binary.LittleEndian.Uint16(b[2*i:])))
		case Int8:
			out[i] = int64(int8(b[i]))
		case Uint8, Bool:
			out[i] = int64(b[i])
		}
	}
	return out, nil
}

// Bools returns the elements of a bool tensor in row-major order (any
// non-zero byte is true).
func (t *Tensor) Bools() ([]bool, error) {
	b, err := t.elements("bool", Bool)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(b))
	for i, v := range b {
		out[i] = v != 0
	}
	return out, nil
}

// halfToFloat32 converts IEEE 754 binary16 bits to float32 exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch exp {
	case 0x1f: // infinities and NaNs
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case 0: // zeros and subnormals: mant * 2^-24
		f := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

package torchbind

import (
	le "encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"
)

func roundTrip[E Element](t *testing.T, data []E, shape ...int64) {
	t.Helper()
	x, err := FromSlice(data, shape...)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	info, err := x.Info()
	if err != nil {
		t.Fatal(err)
	}
	if info.DType != dtypeOf[E]() || !shapeEqual(info.Shape, shape) || info.Device != CPU || info.RequiresGrad {
		t.Errorf("%T: info %+v", data, info)
	}
	got, err := Values[E](x)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(data) {
		t.Errorf("%T: got %v, want %v", data, got, data)
	}
}

func TestFromSliceValues(t *testing.T) {
	roundTrip(t, []float32{1.5, -2, float32(math.Inf(1)), 3e-39, 0, 7}, 2, 3)
	roundTrip(t, []float64{math.Pi, -1e300, 5e-324}, 3)
	roundTrip(t, []int64{math.MinInt64, -1, math.MaxInt64, 0}, 2, 1, 2)
	roundTrip(t, []int32{-7, 8}, 2)
	roundTrip(t, []uint8{0, 255, 17}, 3)
	roundTrip(t, []bool{true, false, true, true}, 4)
	roundTrip(t, []float32{}, 0, 3)

	x, err := FromSlice([]float32{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if s := x.Shape(); !shapeEqual(s, []int64{3}) || x.Numel() != 3 {
		t.Errorf("default shape %v", s)
	}
	if s := x.String(); s != "Tensor([3], float32, cpu)" {
		t.Errorf("String() = %q", s)
	}
	raw, info, err := x.Bytes()
	if err != nil || len(raw) != 12 || info.DType != Float32 ||
		math.Float32frombits(le.LittleEndian.Uint32(raw[8:])) != 3 {
		t.Errorf("Bytes() = %v %+v %v", raw, info, err)
	}
}

// FromBytes reads a strided view of raw storage (how .pt files store
// tensors) into a new contiguous tensor.
func TestFromBytesStrided(t *testing.T) {
	m := musts(t)
	storage := make([]byte, 12*4)
	for i := 0; i < 12; i++ {
		le.LittleEndian.PutUint32(storage[4*i:], math.Float32bits(float32(i)))
	}
	// A transposed 3x2 view starting at element 1: element (i, j) is storage[1 + i + 3j].
	x := m(FromBytes(storage, Float32, []int64{3, 2}, []int64{1, 3}, 1))
	defer x.Close()
	v, err := Values[float32](x)
	if err != nil || fmt.Sprint(v) != "[1 4 2 5 3 6]" {
		t.Errorf("strided view: %v %v", v, err)
	}
	// The copy is contiguous: view works on it.
	y := m(View(x, 6))
	y.Close()
	// The bytes were copied: changing the storage does not change x.
	storage[4] = 0xff
	if v2, _ := Values[float32](x); v2[0] != 1 {
		t.Errorf("FromBytes did not copy: %v", v2)
	}
	// A broadcast view (stride 0) and a zero-size tensor.
	z := m(FromBytes(storage[8:12], Float32, []int64{2, 3}, []int64{0, 0}, 0))
	if v, _ := Values[float32](z); fmt.Sprint(v) != "[2 2 2 2 2 2]" {
		t.Errorf("stride-0 view: %v", v)
	}
	z.Close()
	e := m(FromBytes(nil, Int64, []int64{0, 4}, []int64{4, 1}, 0))
	if e.Numel() != 0 {
		t.Errorf("empty tensor has %d elements", e.Numel())
	}
	e.Close()
}

func TestCreationAndConversion(t *testing.T) {
	m := musts(t)
	s := NewScope()
	defer s.Close()
	for _, c := range []struct {
		x    *Tensor
		want string
	}{
		{s.T(Full([]int64{2, 2}, 2.5, Float32, CPU)), "[2.5 2.5 2.5 2.5]"},
		{s.T(Zeros([]int64{3}, Float64, CPU)), "[0 0 0]"},
		{s.T(Ones([]int64{2}, Float32, CPU)), "[1 1]"},
		{s.T(Scalar(4, Float32, CPU)), "[4]"},
		{s.T(Arange(0, 1, 0.25, Float32, CPU)), "[0 0.25 0.5 0.75]"},
		{s.T(Arange(-2, 3, 2, Int64, CPU)), "[-2 0 2]"},
	} {
		v, err := c.x.Float64s()
		if err != nil || fmt.Sprint(v) != c.want {
			t.Errorf("%v: %v %v, want %s", c.x, v, err, c.want)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	sc := s.T(Scalar(4, Float32, CPU))
	if info, _ := sc.Info(); len(info.Shape) != 0 {
		t.Errorf("Scalar shape %v", info.Shape)
	}
	if v, err := sc.Item(); err != nil || v != 4 {
		t.Errorf("Item() = %v %v", v, err)
	}

	// To truncates toward zero like torch's .long(), and converts back.
	f := s.T(FromSlice([]float32{1.7, -1.7, 2.5}))
	i := m(f.To(CPU, Int64))
	defer i.Close()
	if v, _ := Values[int64](i); fmt.Sprint(v) != "[1 -1 2]" {
		t.Errorf("float32 -> int64: %v", v)
	}
	if v, err := i.Float32s(); err != nil || fmt.Sprint(v) != "[1 -1 2]" {
		t.Errorf("Float32s of int64: %v %v", v, err)
	}
	if v, err := f.Int64s(); err != nil || fmt.Sprint(v) != "[1 -1 2]" {
		t.Errorf("Int64s of float32: %v %v", v, err)
	}
	same := m(f.ToDevice(CPU))
	defer same.Close()
	if info, _ := same.Info(); info.DType != Float32 {
		t.Errorf("ToDevice changed the dtype to %v", info.DType)
	}

	// IsNaN and Any.
	n := s.T(FromSlice([]float32{1, float32(math.NaN()), 3}))
	isn := s.T(IsNaN(n))
	if v, _ := Values[bool](isn); fmt.Sprint(v) != "[false true false]" {
		t.Errorf("IsNaN: %v", v)
	}
	if v, err := s.T(Any(isn, nil, false)).Item(); err != nil || v != 1 {
		t.Errorf("Any: %v %v", v, err)
	}
}

// Ref shares storage and autograd identity; Clone and Contiguous copies do not share.
func TestRefCloneDetach(t *testing.T) {
	m := musts(t)
	s := NewScope()
	defer s.Close()
	x := s.T(FromSlice([]float32{1, 2, 3, 4}, 2, 2))
	r := m(x.Ref())
	c := s.T(Clone(x))
	r.Close() // closing one handle leaves the other usable
	r = s.T(x.Ref())
	fill := s.T(Full([]int64{2, 2}, 9, Float32, CPU))
	if err := CopyInto(r, fill); err != nil {
		t.Fatal(err)
	}
	if v, _ := Values[float32](x); fmt.Sprint(v) != "[9 9 9 9]" {
		t.Errorf("write through Ref not seen: %v", v)
	}
	if v, _ := Values[float32](c); fmt.Sprint(v) != "[1 2 3 4]" {
		t.Errorf("Clone changed with its source: %v", v)
	}
	// CopyInto broadcasts and converts dtype.
	row := s.T(FromSlice([]int64{5, 6}))
	if err := CopyInto(c, row); err != nil {
		t.Fatal(err)
	}
	if v, _ := Values[float32](c); fmt.Sprint(v) != "[5 6 5 6]" {
		t.Errorf("CopyInto with broadcast: %v", v)
	}
	tr := s.T(Transpose(c, 0, 1))
	if _, err := View(tr, 4); err == nil {
		t.Error("view of a transposed tensor: no error")
	}
	ct := s.T(Contiguous(tr))
	flat := s.T(View(ct, 4))
	if v, _ := Values[float32](flat); fmt.Sprint(v) != "[5 5 6 6]" {
		t.Errorf("contiguous transpose: %v", v)
	}

	p := s.T(FromSlice([]float32{1, 2}))
	if err := p.SetRequiresGrad(true); err != nil {
		t.Fatal(err)
	}
	d := s.T(Detach(p))
	if info, _ := d.Info(); info.RequiresGrad {
		t.Error("Detach result requires grad")
	}
	pr := s.T(p.Ref())
	if info, _ := pr.Info(); !info.RequiresGrad {
		t.Error("Ref of a parameter does not require grad")
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestMatmul(t *testing.T) {
	a, err := FromSlice([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := FromSlice([]float32{7, 8, 9, 10, 11, 12}, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c, err := Matmul(a, b)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := Values[float32](c)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{58, 64, 139, 154}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Matmul = %v, want %v", got, want)
		}
	}
	if _, err := Matmul(a, a); err == nil || !strings.Contains(err.Error(), "matmul") {
		t.Errorf("Matmul of mismatched shapes: %v", err)
	}
}

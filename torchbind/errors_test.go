package torchbind

import (
	"errors"
	"strings"
	"testing"
)

// wantError checks that err is a *Error for op whose message contains every
// one of parts, and logs it.
func wantError(t *testing.T, err error, op string, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", op)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: error %T (%v), want *Error", op, err, err)
	}
	if e.Op != op {
		t.Errorf("error names op %q, want %q: %v", e.Op, op, err)
	}
	if !strings.Contains(err.Error(), op) {
		t.Errorf("error text does not name %q: %v", op, err)
	}
	for _, p := range parts {
		if !strings.Contains(e.Msg, p) {
			t.Errorf("%s: message %q lacks %q", op, e.Msg, p)
		}
	}
	t.Logf("%v", err)
}

// Every failure comes back as an error naming the op and carrying libtorch's
// message; none aborts the process.
func TestErrors(t *testing.T) {
	m := musts(t)
	x := m(Zeros([]int64{1, 3, 8, 8}, Float32, CPU))
	defer x.Close()

	t.Run("conv2d channels", func(t *testing.T) {
		w := m(Zeros([]int64{4, 5, 3, 3}, Float32, CPU))
		defer w.Close()
		_, err := Conv2d(x, w, nil, ConvOptions{})
		wantError(t, err, "conv2d", "expected input[1, 3, 8, 8] to have 5 channels, but got 3 channels")
	})
	t.Run("values dtype", func(t *testing.T) {
		i := m(Arange(0, 4, 1, Int64, CPU))
		defer i.Close()
		_, err := Values[float32](i)
		wantError(t, err, "values", "int64", "float32")
		if v, err := Values[int64](i); err != nil || len(v) != 4 || v[3] != 3 {
			t.Errorf("Values[int64]: %v %v", v, err)
		}
	})
	t.Run("one dimension or none", func(t *testing.T) {
		two := []int64{2, 3}
		_, err := Quantile(x, 0.5, two, false)
		wantError(t, err, "quantile", "one dimension or none", "[2 3]")
		_, err = Squeeze(x, two)
		wantError(t, err, "squeeze", "one dimension or none", "[2 3]")
		_, err = Argmax(x, two, false)
		wantError(t, err, "argmax", "one dimension or none")
		_, err = Any(x, two, false)
		wantError(t, err, "any", "one dimension or none")
	})
	t.Run("nil tensor", func(t *testing.T) {
		_, err := Add(nil, x)
		wantError(t, err, "add", "nil tensor")
		_, err = Conv2d(x, nil, nil, ConvOptions{})
		wantError(t, err, "conv2d", "nil tensor")
		var n *Tensor
		_, err = n.Info()
		wantError(t, err, "info", "nil tensor")
		if n.Numel() != 0 || n.Shape() != nil {
			t.Error("nil tensor has a size")
		}
		n.Close()
		_, err = Cat([]*Tensor{x, nil}, 0)
		wantError(t, err, "cat", "nil tensor")
		_, err = Cat(nil, 0)
		wantError(t, err, "cat", "no tensors")
	})
	t.Run("closed tensor", func(t *testing.T) {
		y := m(Ones([]int64{2}, Float32, CPU))
		y.Close()
		y.Close() // idempotent
		_, err := Relu(y)
		wantError(t, err, "relu", "nil tensor")
		_, err = y.Item()
		wantError(t, err, "item", "nil tensor")
		err = y.Backward()
		wantError(t, err, "backward", "nil tensor")
		_, err = Values[float32](y)
		wantError(t, err, "info", "nil tensor")
		if s := y.String(); s != "Tensor(<closed>)" {
			t.Errorf("String of a closed tensor: %q", s)
		}
	})
	t.Run("cuda", func(t *testing.T) {
		if CUDAAvailable() {
			t.Skip("CUDA is available here")
		}
		_, err := Zeros([]int64{2}, Float32, CUDA(0))
		wantError(t, err, "full", "CUDA is not available")
		_, err = x.ToDevice(CUDA(0))
		wantError(t, err, "to", "CUDA is not available")
		_, err = Rand(nil, []int64{2}, Float32, CUDA(0))
		wantError(t, err, "rand", "CUDA is not available")
		_, err = NewGenerator(1, CUDA(0))
		wantError(t, err, "generator", "CUDA is not available")
	})
	t.Run("libtorch checks", func(t *testing.T) {
		_, err := Reshape(x, 5, -1)
		wantError(t, err, "reshape", "invalid for input of size 192")
		tr := m(Transpose(x, 1, 3))
		defer tr.Close()
		_, err = View(tr, -1)
		wantError(t, err, "view", "view size is not compatible")
		_, err = x.Item()
		wantError(t, err, "item", "cannot be converted to Scalar")
		_, err = Narrow(x, 1, 2, 5)
		wantError(t, err, "narrow", "exceeds dimension size")
		seven := m(Zeros([]int64{7}, Float32, CPU))
		defer seven.Close()
		_, err = Add(x, seven)
		wantError(t, err, "add", "must match the size")
		_, err = Sum(x, []int64{4}, false)
		wantError(t, err, "sum", "Dimension out of range")
		_, err = Dropout(x, -0.1, true, nil)
		wantError(t, err, "dropout", "probability")
		_, err = MaxPool2d(x, PoolOptions{Kernel: [2]int64{9, 9}})
		wantError(t, err, "max_pool2d", "Output size is too small")
	})
	t.Run("autograd", func(t *testing.T) {
		// backward of a non-scalar, and of a result that has no graph.
		p := m(Ones([]int64{3}, Float32, CPU))
		defer p.Close()
		if err := p.SetRequiresGrad(true); err != nil {
			t.Fatal(err)
		}
		y := m(MulScalar(p, 2))
		defer y.Close()
		wantError(t, y.Backward(), "backward", "grad can be implicitly created only for scalar outputs")
		z := m(Sum(x, nil, false))
		defer z.Close()
		wantError(t, z.Backward(), "backward", "does not require grad")
		wantError(t, y.SetRequiresGrad(false), "requires_grad_", "only change requires_grad flags of leaf variables")
		i := m(Arange(0, 3, 1, Int64, CPU))
		defer i.Close()
		wantError(t, i.SetRequiresGrad(true), "requires_grad_", "floating point")
	})
	t.Run("from data", func(t *testing.T) {
		_, err := FromSlice([]float32{1, 2, 3}, 2, 2)
		wantError(t, err, "from_slice", "needs 4 elements, got 3")
		_, err = FromBytes(make([]byte, 8), Float32, []int64{3}, []int64{1}, 0)
		wantError(t, err, "from_bytes", "runs past")
		_, err = FromBytes(make([]byte, 8), Float32, []int64{2}, []int64{1, 1}, 0)
		wantError(t, err, "from_bytes", "strides")
		_, err = Full([]int64{2}, 0, DType(42), CPU)
		wantError(t, err, "full", "unknown dtype")
	})
}

func TestParseDevice(t *testing.T) {
	for _, s := range []string{"cpu", "CPU", " cpu "} {
		if d, err := ParseDevice(s); err != nil || d != CPU {
			t.Errorf("ParseDevice(%q) = %v, %v", s, d, err)
		}
	}
	d, err := ParseDevice("auto")
	if err != nil || (d != CPU) == !CUDAAvailable() {
		t.Errorf("ParseDevice(auto) = %v, %v", d, err)
	}
	for _, s := range []string{"gpu", "cuda:x", "cuda:-1"} {
		if _, err := ParseDevice(s); err == nil {
			t.Errorf("ParseDevice(%q): no error", s)
		}
	}
	if CUDAAvailable() {
		t.Skip("CUDA is available here")
	}
	for _, s := range []string{"cuda", "cuda:0", "cuda:1"} {
		_, err := ParseDevice(s)
		if err == nil || !strings.Contains(err.Error(), "CUDA is not available") || !errors.Is(err, ErrNoCUDA) || strings.Contains(err.Error(), "--device") {
			t.Errorf("ParseDevice(%q): %v", s, err)
		}
	}
	_, err = ParseDevice("cuda")
	t.Logf("%v", err)
}

// A scope keeps the first error, frees what it owns and hands out what it keeps.
func TestScope(t *testing.T) {
	start := LiveTensors()
	x := floats32(t, []float32{1, -2, 3}, 3)
	defer x.Close()
	keep := func() (*Tensor, error) {
		s := NewScope()
		defer s.Close()
		a := s.T(Relu(x))
		b := s.T(MulScalar(a, 2))
		c := s.T(AddScalar(b, 1))
		if err := s.Err(); err != nil {
			return nil, err
		}
		return s.Keep(c), nil
	}
	c, err := keep()
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := Values[float32](c); v[0] != 3 || v[1] != 1 || v[2] != 7 {
		t.Errorf("scope result %v", v)
	}
	c.Close()

	s := NewScope()
	a := s.T(Reshape(x, 2, 2)) // fails
	b := s.T(Relu(a))          // fails on nil, ignored
	s.Fail(errors.New("later"))
	if a != nil || b != nil {
		t.Error("failed operations returned tensors")
	}
	wantError(t, s.Err(), "reshape", "invalid for input of size 3")
	s.Close()
	if n := LiveTensors(); n != start+1 {
		t.Errorf("live tensors %d, want %d", n, start+1)
	}
}

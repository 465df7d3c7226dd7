package torchbind

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// The reference fixtures written by testdata/gen_fixtures.py: a JSON index
// of named tensors stored as raw little-endian values in fixtures.bin, and
// the cases that combine them.

type fixtureTensor struct {
	DType  string  `json:"dtype"`
	Shape  []int64 `json:"shape"`
	Offset int64   `json:"offset"`
	NBytes int64   `json:"nbytes"`
}

type fixtureCase struct {
	Group string                     `json:"group"`
	Name  string                     `json:"name"`
	Op    string                     `json:"op"`
	In    []string                   `json:"in"`
	Out   []string                   `json:"out"`
	Args  map[string]json.RawMessage `json:"args"`
}

type fixtureFile struct {
	TorchVersion string                   `json:"torch_version"`
	Tensors      map[string]fixtureTensor `json:"tensors"`
	Cases        []fixtureCase            `json:"cases"`
	Quantile224  struct {
		N    int64     `json:"n"`
		Mult uint64    `json:"mult"`
		Q    []float64 `json:"q"`
		Out  []float64 `json:"out"`
	} `json:"quantile_2_24"`

	blob []byte
}

var (
	fixturesOnce sync.Once
	fixturesVal  *fixtureFile
	fixturesErr  error
)

// fixtures loads testdata/fixtures.{json,bin} once per test binary.
func fixtures(t testing.TB) *fixtureFile {
	t.Helper()
	fixturesOnce.Do(func() {
		raw, err := os.ReadFile(filepath.Join("testdata", "fixtures.json"))
		if err != nil {
			fixturesErr = err
			return
		}
		var f fixtureFile
		if err := json.Unmarshal(raw, &f); err != nil {
			fixturesErr = fmt.Errorf("fixtures.json: %w", err)
			return
		}
		if f.blob, err = os.ReadFile(filepath.Join("testdata", "fixtures.bin")); err != nil {
			fixturesErr = err
			return
		}
		fixturesVal = &f
	})
	if fixturesErr != nil {
		t.Fatalf("loading fixtures (regenerate with /usr/bin/python3 testdata/gen_fixtures.py): %v", fixturesErr)
	}
	return fixturesVal
}

var fixtureDTypes = map[string]DType{
	"float32": Float32, "float64": Float64, "int64": Int64, "int32": Int32, "uint8": Uint8, "bool": Bool,
}

// tensor builds a new tensor from the stored entry name; "" gives nil (an
// absent optional argument).
func (f *fixtureFile) tensor(t testing.TB, name string) *Tensor {
	t.Helper()
	if name == "" {
		return nil
	}
	e, ok := f.Tensors[name]
	if !ok {
		t.Fatalf("fixture tensor %q missing", name)
	}
	dt, ok := fixtureDTypes[e.DType]
	if !ok {
		t.Fatalf("fixture tensor %q: dtype %q", name, e.DType)
	}
	x, err := FromBytes(f.blob[e.Offset:e.Offset+e.NBytes], dt, e.Shape, contiguousStrides(e.Shape), 0)
	if err != nil {
		t.Fatalf("fixture tensor %q: %v", name, err)
	}
	return x
}

// cases returns the cases of one group.
func (f *fixtureFile) cases(group string) []fixtureCase {
	var out []fixtureCase
	for _, c := range f.Cases {
		if c.Group == group {
			out = append(out, c)
		}
	}
	return out
}

// arg decodes argument name of the case into v, failing the test if absent.
func (c *fixtureCase) arg(t testing.TB, name string, v any) {
	t.Helper()
	raw, ok := c.Args[name]
	if !ok {
		t.Fatalf("case %s: no argument %q", c.Name, name)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("case %s: argument %q: %v", c.Name, name, err)
	}
}

func (c *fixtureCase) f64(t testing.TB, name string) float64 {
	t.Helper()
	var s any
	c.arg(t, name, &s)
	switch v := s.(type) {
	case float64:
		return v
	case string:
		switch v {
		case "inf":
			return math.Inf(1)
		case "-inf":
			return math.Inf(-1)
		}
	}
	t.Fatalf("case %s: argument %q is %v, not a number", c.Name, name, s)
	return 0
}

func (c *fixtureCase) i64(t testing.TB, name string) int64 {
	t.Helper()
	var v int64
	c.arg(t, name, &v)
	return v
}

func (c *fixtureCase) ints(t testing.TB, name string) []int64 {
	t.Helper()
	var v []int64
	c.arg(t, name, &v)
	return v
}

func (c *fixtureCase) pair(t testing.TB, name string) [2]int64 {
	t.Helper()
	v := c.ints(t, name)
	if len(v) != 2 {
		t.Fatalf("case %s: argument %q has %d entries, want 2", c.Name, name, len(v))
	}
	return [2]int64{v[0], v[1]}
}

func (c *fixtureCase) flag(t testing.TB, name string) bool {
	t.Helper()
	var v bool
	c.arg(t, name, &v)
	return v
}

// relErr is the largest elementwise error of got against want, relative to
// |want| but never to less than a thousandth of want's largest magnitude (so
// that results that cancel to about zero do not dominate). NaNs must match.
func relErr(got, want []float64) float64 {
	scale := 0.0
	for _, w := range want {
		if a := math.Abs(w); a > scale && !math.IsInf(a, 0) {
			scale = a
		}
	}
	floor := math.Max(scale*1e-3, 1e-30)
	worst := 0.0
	for i := range want {
		g, w := got[i], want[i]
		switch {
		case math.IsNaN(w) || math.IsNaN(g):
			if math.IsNaN(w) != math.IsNaN(g) {
				return math.Inf(1)
			}
			continue
		case math.IsInf(w, 0) || math.IsInf(g, 0):
			if g != w {
				return math.Inf(1)
			}
			continue
		}
		e := math.Abs(g-w) / math.Max(math.Abs(w), floor)
		if e > worst {
			worst = e
		}
	}
	return worst
}

func shapeEqual(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// compare checks got against want: same dtype and shape; floating-point
// values within tol relative (see relErr), others exactly. It returns the
// relative error (0 for exact dtypes).
func compare(t testing.TB, what string, got, want *Tensor, tol float64) float64 {
	t.Helper()
	gi, err := got.Info()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	wi, err := want.Info()
	if err != nil {
		t.Fatalf("%s: reference: %v", what, err)
	}
	if gi.DType != wi.DType || !shapeEqual(gi.Shape, wi.Shape) {
		t.Fatalf("%s: got %v %v, want %v %v", what, gi.DType, gi.Shape, wi.DType, wi.Shape)
	}
	switch wi.DType {
	case Float32, Float64:
		g, err := got.Float64s()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		w, err := want.Float64s()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		e := relErr(g, w)
		if e > tol {
			t.Errorf("%s: relative error %.3g > %.3g", what, e, tol)
		}
		return e
	default:
		g, _, err := got.Bytes()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		w, _, err := want.Bytes()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if string(g) != string(w) {
			t.Errorf("%s: %v values differ", what, wi.DType)
		}
		return 0
	}
}

// closeAll closes every tensor of ts.
func closeAll(ts ...*Tensor) {
	for _, t := range ts {
		t.Close()
	}
}

// musts returns a function that fails the test on a non-nil error and
// otherwise returns the tensor, so that calls can be written m(Op(...)).
func musts(t testing.TB) func(*Tensor, error) *Tensor {
	return func(x *Tensor, err error) *Tensor {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
}

// floats32 builds a float32 tensor from values.
func floats32(t testing.TB, v []float32, shape ...int64) *Tensor {
	t.Helper()
	return musts(t)(FromSlice(v, shape...))
}

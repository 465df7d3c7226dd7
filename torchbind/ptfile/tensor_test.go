package ptfile

import (
	"math"
	"strings"
	"testing"
)

func TestDType(t *testing.T) {
	for _, tc := range []struct {
		d    DType
		name string
		size int
	}{
		{Float32, "float32", 4}, {Float64, "float64", 8}, {Float16, "float16", 2}, {BFloat16, "bfloat16", 2},
		{Int64, "int64", 8}, {Int32, "int32", 4}, {Int16, "int16", 2}, {Int8, "int8", 1},
		{Uint8, "uint8", 1}, {Bool, "bool", 1},
	} {
		if tc.d.String() != tc.name || tc.d.Size() != tc.size || !tc.d.Valid() {
			t.Errorf("%d: got %q size %d, want %q size %d", tc.d, tc.d, tc.d.Size(), tc.name, tc.size)
		}
		if d, err := ParseDType("torch." + tc.name); err != nil || d != tc.d {
			t.Errorf("ParseDType(torch.%s) = %v, %v", tc.name, d, err)
		}
	}
	if DType(0).Valid() || DType(0).Size() != 0 || DType(99).String() != "DType(99)" {
		t.Error("invalid DTypes are not reported as such")
	}
	if _, err := ParseDType("complex64"); err == nil {
		t.Error("ParseDType accepted complex64")
	}
}

func TestValidate(t *testing.T) {
	f := func(shape, strides []int64, offset int64, storageBytes int) *Tensor {
		return &Tensor{DType: Float32, Shape: shape, Strides: strides, Offset: offset, Storage: make([]byte, storageBytes)}
	}
	for _, tc := range []struct {
		name string
		t    *Tensor
		want string // "" for valid
	}{
		{"scalar", f(nil, nil, 0, 4), ""},
		{"scalar at offset", f(nil, nil, 2, 12), ""},
		{"scalar past end", f(nil, nil, 3, 12), "needs 4 elements but its storage has 3"},
		{"matrix", f([]int64{2, 3}, []int64{3, 1}, 0, 24), ""},
		{"transposed", f([]int64{3, 2}, []int64{1, 3}, 0, 24), ""},
		{"expanded", f([]int64{1000, 3}, []int64{0, 1}, 0, 12), ""},
		{"empty with any offset", f([]int64{0, 5}, []int64{5, 1}, 100, 0), ""},
		{"past end", f([]int64{2, 3}, []int64{3, 1}, 1, 24), "needs 7 elements but its storage has 6"},
		{"no dtype", &Tensor{Shape: []int64{1}, Strides: []int64{1}}, "invalid dtype"},
		{"strides mismatch", f([]int64{2}, nil, 0, 8), "different lengths"},
		{"negative size", f([]int64{-1}, []int64{1}, 0, 8), "negative dimension"},
		{"negative stride", f([]int64{2}, []int64{-1}, 1, 8), "negative stride"},
		{"negative offset", f([]int64{1}, []int64{1}, -1, 8), "negative storage offset"},
		{"partial element", f([]int64{1}, []int64{1}, 0, 6), "whole float32 elements"},
		{"numel overflow", f([]int64{1 << 32, 1 << 32}, []int64{0, 0}, 0, 4), "overflows"},
		{"bytes overflow", f([]int64{1 << 62}, []int64{0}, 0, 4), "overflows"},
		{"extent overflow", f([]int64{3}, []int64{1 << 62}, 0, 4), "overflows"},
		{"too many dims", f(make([]int64, 65), make([]int64, 65), 0, 4), "dimensions"},
	} {
		err := tc.t.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestContiguous(t *testing.T) {
	// A 3x4 matrix of 0..11 stored row-major, seen through several views.
	base := make([]float32, 12)
	for i := range base {
		base[i] = float32(i)
	}
	storage := mustTensor(FromFloat32s([]int64{12}, base)).Storage
	for _, tc := range []struct {
		name           string
		shape, strides []int64
		offset         int64
		want           []float32
		alreadyInOrder bool
	}{
		{"whole", []int64{3, 4}, []int64{4, 1}, 0, base, true},
		{"transposed", []int64{4, 3}, []int64{1, 4}, 0, []float32{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}, false},
		{"rows 1-2", []int64{2, 4}, []int64{4, 1}, 4, base[4:12], true},
		{"column 2", []int64{3}, []int64{4}, 2, []float32{2, 6, 10}, false},
		{"sub-block", []int64{2, 2}, []int64{4, 1}, 5, []float32{5, 6, 9, 10}, false},
		{"expanded", []int64{2, 3}, []int64{0, 1}, 1, []float32{1, 2, 3, 1, 2, 3}, false},
		{"size-1 dims", []int64{1, 3, 1}, []int64{99, 1, 7}, 3, []float32{3, 4, 5}, true},
		{"scalar", nil, nil, 7, []float32{7}, true},
		{"empty", []int64{0, 4}, []int64{4, 1}, 0, []float32{}, true},
		{"3-d strided", []int64{2, 2, 2}, []int64{6, 1, 3}, 0, []float32{0, 3, 1, 4, 6, 9, 7, 10}, false},
	} {
		tn := &Tensor{DType: Float32, Shape: tc.shape, Strides: tc.strides, Offset: tc.offset, Storage: storage}
		if got := tn.IsContiguous(); got != tc.alreadyInOrder {
			t.Errorf("%s: IsContiguous = %v", tc.name, got)
		}
		c := tn.Contiguous()
		if c.Offset != 0 || !equalSlices(c.Strides, ContiguousStrides(tc.shape)) || len(c.Storage) != 4*len(tc.want) {
			t.Errorf("%s: Contiguous gave offset %d strides %v and %d bytes", tc.name, c.Offset, c.Strides, len(c.Storage))
		}
		got, err := tn.Float32s()
		if err != nil || !equalSlices(got, tc.want) {
			t.Errorf("%s: Float32s = %v, %v; want %v", tc.name, got, err, tc.want)
		}
		if cv, _ := c.Float32s(); !equalSlices(cv, tc.want) {
			t.Errorf("%s: Contiguous().Float32s = %v, want %v", tc.name, cv, tc.want)
		}
		if len(c.Storage) > 0 && c.SharesStorage(tn) {
			t.Errorf("%s: Contiguous shares the storage", tc.name)
		}
	}
}

func TestConversions(t *testing.T) {
	i8 := &Tensor{DType: Int8, Shape: []int64{3}, Strides: []int64{1}, Storage: []byte{0x80, 0x7f, 0xff}}
	if v, err := i8.Int64s(); err != nil || !equalSlices(v, []int64{-128, 127, -1}) {
		t.Errorf("int8 Int64s = %v, %v", v, err)
	}
	if v, err := i8.Float64s(); err != nil || !equalSlices(v, []float64{-128, 127, -1}) {
		t.Errorf("int8 Float64s = %v, %v", v, err)
	}
	bf := &Tensor{DType: BFloat16, Shape: []int64{2}, Strides: []int64{1}, Storage: []byte{0x80, 0x3f, 0x40, 0xc0}}
	if v, err := bf.Float32s(); err != nil || !equalSlices(v, []float32{1, -3}) {
		t.Errorf("bfloat16 Float32s = %v, %v", v, err)
	}
	i64 := mustTensor(FromInt64s([]int64{1}, []int64{1 << 60}))
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"int64 as float32", second(i64.Float32s())},
		{"int64 as float64", second(i64.Float64s())},
		{"int64 as bool", second(i64.Bools())},
		{"float as int", second(bf.Int64s())},
	} {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if _, err := New(Float32, []int64{2}, make([]byte, 4)); err == nil {
		t.Error("New accepted 4 bytes for 2 float32 values")
	}
}

func second[T any](_ T, err error) error { return err }

// halfToFloat32 must agree with the definition of binary16 for all values.
func TestHalfToFloat32(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		sign := 1.0
		if h&0x8000 != 0 {
			sign = -1
		}
		exp := (h >> 10) & 0x1f
		mant := float64(h & 0x3ff)
		var want float64
		switch exp {
		case 0:
			want = sign * mant * math.Pow(2, -24)
		case 31:
			want = sign * math.Inf(1)
			if mant != 0 {
				want = math.NaN()
			}
		default:
			want = sign * (1 + mant/1024) * math.Pow(2, float64(exp-15))
		}
		got := float64(halfToFloat32(uint16(h)))
		if !sameFloat(got, want) && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Fatalf("halfToFloat32(0x%04x) = %v, want %v", h, got, want)
		}
	}
}

func TestOrderedDict(t *testing.T) {
	var d OrderedDict
	d.Set("b", 1)
	d.Set("a", 2)
	d.Set("b", 3)
	if strings.Join(d.Keys, ",") != "b,a" || d.Values["b"] != 3 || d.Len() != 2 {
		t.Errorf("got keys %v values %v", d.Keys, d.Values)
	}
	if err := (&OrderedDict{Keys: []string{"x"}}).check(); err == nil {
		t.Error("check accepted a key without a value")
	}
	if err := (&OrderedDict{Keys: []string{"x", "x"}, Values: map[string]any{"x": 1, "y": 2}}).check(); err == nil {
		t.Error("check accepted a duplicated key")
	}
}

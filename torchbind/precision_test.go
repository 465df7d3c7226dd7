package torchbind

import (
	"math"
	"testing"
)

func TestToDTypeKeepsDeviceAndRounds(t *testing.T) {
	x, err := FromSlice([]float32{1, 1.00390625, 3.14159265, -2.5e-3}, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	for _, c := range []struct {
		dt   DType
		bits int // mantissa bits kept, for the rounding bound
	}{{BFloat16, 8}, {Float16, 11}, {Float32, 24}} {
		y, err := x.ToDType(c.dt)
		if err != nil {
			t.Fatalf("%v: %v", c.dt, err)
		}
		info, err := y.Info()
		if err != nil || info.DType != c.dt || info.Device != CPU {
			t.Fatalf("%v: got %+v (%v)", c.dt, info, err)
		}
		back, err := y.Float32s()
		y.Close()
		if err != nil {
			t.Fatal(err)
		}
		want, _ := Values[float32](x)
		for i := range want {
			// Round to nearest: half an ulp of the narrower type.
			bound := math.Abs(float64(want[i])) * math.Ldexp(1, -c.bits)
			if d := math.Abs(float64(back[i] - want[i])); d > bound {
				t.Errorf("%v: %v came back as %v (off by %g > %g)", c.dt, want[i], back[i], d, bound)
			}
		}
	}
}

func TestToMemoryFormat(t *testing.T) {
	x, err := Arange(0, 2*3*4*5, 1, Float32, CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	x4, err := View(x, 2, 3, 4, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer x4.Close()
	if cl, err := IsChannelsLast(x4); err != nil || cl {
		t.Fatalf("a fresh tensor is channels-last: %v %v", cl, err)
	}
	y, err := ToMemoryFormat(x4, ChannelsLast)
	if err != nil {
		t.Fatal(err)
	}
	defer y.Close()
	if cl, err := IsChannelsLast(y); err != nil || !cl {
		t.Fatalf("ToMemoryFormat(ChannelsLast) is not channels-last: %v %v", cl, err)
	}
	// Same values in the same logical positions; Bytes reads them contiguous.
	a, _ := Values[float32](x4)
	b, _ := Values[float32](y)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("element %d: %v, want %v", i, b[i], a[i])
		}
	}
	z, err := ToMemoryFormat(y, ContiguousFormat)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	if cl, _ := IsChannelsLast(z); cl {
		t.Fatal("ToMemoryFormat(ContiguousFormat) kept channels-last")
	}
	if _, err := ToMemoryFormat(x4, MemoryFormat(7)); err == nil {
		t.Fatal("an unknown memory format was accepted")
	}
}

func TestCUDAMathDefaultsAndSwitches(t *testing.T) {
	m, err := GetCUDAMath()
	if err != nil {
		t.Fatal(err)
	}
	if m.TF32 {
		t.Fatal("TF32 is on by default")
	}
	defer SetCUDAMath(m)
	if err := SetCUDAMath(CUDAMath{CuDNNBenchmark: true, TF32: true}); err != nil {
		t.Fatal(err)
	}
	if got, _ := GetCUDAMath(); !got.CuDNNBenchmark || !got.TF32 {
		t.Fatalf("switches not set: %+v", got)
	}
}

func TestCPUInfoBF16Flags(t *testing.T) {
	for _, c := range []struct {
		text string
		want bool
	}{
		{"processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 avx512vl\n", true},
		{"flags\t\t: fpu amx_bf16 amx_tile\n", true},
		{"flags\t\t: fpu sse avx512f avx512_vnni\nbugs\t\t: avx512_bf16\n", false},
		{"", false},
	} {
		if got := cpuinfoHasBF16(c.text); got != c.want {
			t.Errorf("cpuinfoHasBF16(%q) = %v, want %v", c.text, got, c.want)
		}
	}
	t.Logf("this CPU: bfloat16 %v", CPUSupportsBF16())
}

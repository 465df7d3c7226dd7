package models

import (
	"errors"
	"math"
	"testing"

	tb "github.com/puad-go/puad/torchbind"
)

func TestParsePrecision(t *testing.T) {
	for in, want := range map[string]Precision{"": FP32, "fp32": FP32, "float32": FP32, "BF16": BF16, "bfloat16": BF16, "fp16": FP16, "float16": FP16} {
		if got, err := ParsePrecision(in); err != nil || got != want {
			t.Errorf("ParsePrecision(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParsePrecision("int8"); err == nil {
		t.Error("int8 accepted")
	}
}

func TestPrecisionCheck(t *testing.T) {
	err := FP16.Check(tb.CPU)
	var pe *PrecisionError
	if !errors.Is(err, ErrPrecisionUnsupported) || !errors.As(err, &pe) || pe.Precision != FP16 {
		t.Fatalf("fp16 on the CPU: %v", err)
	}
	if err := FP32.Check(tb.CPU); err != nil {
		t.Fatal(err)
	}
	err = BF16.Check(tb.CPU)
	if tb.CPUSupportsBF16() != (err == nil) {
		t.Fatalf("bf16 on a CPU with bfloat16 %v: %v", tb.CPUSupportsBF16(), err)
	}
	if err != nil && !errors.Is(err, ErrPrecisionUnsupported) {
		t.Fatalf("bf16 refused with an untyped error: %v", err)
	}
}

// randomModel is a small model with PyTorch's default initialisation.
func randomModel(t *testing.T, imgSize int64) *EfficientAD {
	t.Helper()
	m, err := NewEfficientAD(Small, imgSize, tb.CPU)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	g, err := tb.NewGenerator(5, tb.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for _, mod := range []Module{m.Teacher, m.Student, m.AutoEncoder} {
		if err := InitDefault(mod, g, tb.CPU); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func TestSetPrecisionFP32ChangesNothing(t *testing.T) {
	m := randomModel(t, 64)
	before := Parameters(m.Student)
	if err := m.SetPrecision(FP32); err != nil {
		t.Fatal(err)
	}
	for i, p := range Parameters(m.Student) {
		if p != before[i] {
			t.Fatal("SetPrecision(FP32) replaced a weight")
		}
	}
}

// haveBF16 reports whether this CPU runs bfloat16; where it does not, it
// checks instead that bf16 is refused with the typed error.
func haveBF16(t *testing.T) bool {
	t.Helper()
	err := BF16.Check(tb.CPU)
	if err != nil && !errors.Is(err, ErrPrecisionUnsupported) {
		t.Fatalf("bfloat16 refused with %v, want ErrPrecisionUnsupported", err)
	}
	if err != nil {
		t.Logf("no bfloat16 on this CPU: checked its refusal instead (%v)", err)
	}
	return err == nil
}

// TestBF16ForwardNearFP32 runs each network in float32 and in bfloat16
// (through SetPrecision, Input and Forward) on the same images: the outputs
// come back float32 and contiguous, within bfloat16's rounding (8-bit
// mantissa: 2^-9 relative per value, a few layers deep) of float32's.
func TestBF16ForwardNearFP32(t *testing.T) {
	if !haveBF16(t) {
		return
	}
	const size = 128
	m := randomModel(t, size)
	g, err := tb.NewGenerator(6, tb.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	x, err := tb.Rand(g, []int64{2, 3, size, size}, tb.Float32, tb.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	nets := []Network{m.Teacher, m.Student, m.AutoEncoder}
	var want [][]float32
	for _, n := range nets {
		out, err := n.Forward(x)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, values(t, out))
		out.Close()
	}
	if err := m.SetPrecision(BF16); err != nil {
		t.Fatal(err)
	}
	if err := m.SetPrecision(FP32); err == nil {
		t.Error("converting bfloat16 weights back to float32 was accepted")
	}
	in, err := BF16.Input(x)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	for i, n := range nets {
		out, err := BF16.Forward(n, in)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := out.Info()
		if cl, _ := tb.IsChannelsLast(out); info.DType != tb.Float32 || (cl && info.Shape[2]*info.Shape[3] > 1) {
			t.Errorf("network %d: output %v, channels-last %v", i, info.DType, cl)
		}
		got := values(t, out)
		out.Close()
		var maxDiff, maxAbs float64
		for j := range got {
			maxDiff = math.Max(maxDiff, math.Abs(float64(got[j]-want[i][j])))
			maxAbs = math.Max(maxAbs, math.Abs(float64(want[i][j])))
		}
		t.Logf("network %d: max |bf16 − fp32| = %.3g of max |fp32| = %.3g", i, maxDiff, maxAbs)
		// 2^-9 per rounding, compounded over up to 14 layers and their sums.
		if maxDiff > 0.03*maxAbs {
			t.Errorf("network %d: bfloat16 output off by %.3g (max |fp32| %.3g)", i, maxDiff, maxAbs)
		}
	}
}

// TestCastKeepsGradientsOnMasterWeights trains through a bfloat16 copy: the
// gradient arrives on the float32 weights.
func TestCastKeepsGradientsOnMasterWeights(t *testing.T) {
	if !haveBF16(t) {
		return
	}
	m := randomModel(t, 64)
	if err := SetRequiresGrad(m.Student, true); err != nil {
		t.Fatal(err)
	}
	err := tb.WithGrad(func() error {
		s := tb.NewScope()
		defer s.Close()
		c, err := m.Student.Cast(NetStudent, BF16)
		if err != nil {
			return err
		}
		defer Close(c)
		if info, _ := c.Conv1.Weight.Info(); info.DType != tb.BFloat16 {
			t.Errorf("cast weight is %v", info.DType)
		}
		x := s.T(tb.Ones([]int64{1, 3, 64, 64}, tb.BFloat16, tb.CPU))
		loss := s.T(tb.Mean(s.T(BF16.Forward(c, x)), nil, false))
		if err := s.Err(); err != nil {
			return err
		}
		return loss.Backward()
	})
	if err != nil {
		t.Fatal(err)
	}
	g, err := m.Student.Conv1.Weight.Grad()
	if err != nil || g == nil {
		t.Fatalf("no gradient on the float32 weight: %v", err)
	}
	defer g.Close()
	if info, _ := g.Info(); info.DType != tb.Float32 {
		t.Fatalf("gradient is %v", info.DType)
	}
}

// TestUnitRoundoff rounds values just above and below 1 + u/2 and 1 + u
// (u the unit roundoff) to each precision's type with libtorch: 1 + u is
// halfway to the next value, so libtorch must round 1 + 0.9u down and
// 1 + 1.1u up to 1 + 2u.
func TestUnitRoundoff(t *testing.T) {
	for _, p := range []Precision{FP32, BF16, FP16} {
		u := p.UnitRoundoff()
		x, err := tb.FromSlice([]float64{1 + 0.9*u, 1 + 1.1*u})
		if err != nil {
			t.Fatal(err)
		}
		r, err := x.ToDType(p.DType())
		x.Close()
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Float64s()
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if want := []float64{1, 1 + 2*u}; got[0] != want[0] || got[1] != want[1] {
			t.Errorf("%s: 1 + 0.9u and 1 + 1.1u round to %v, want %v (u = %g)", p, got, want, u)
		}
	}
}

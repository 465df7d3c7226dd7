package torchbind

import (
	"fmt"
	"math"
	"testing"
)

// findCase returns the fixture case called name.
func findCase(t testing.TB, f *fixtureFile, name string) *fixtureCase {
	t.Helper()
	for i := range f.Cases {
		if f.Cases[i].Name == name {
			return &f.Cases[i]
		}
	}
	t.Fatalf("fixture case %q missing", name)
	return nil
}

// param loads a fixture tensor as a leaf that requires grad.
func param(t testing.TB, f *fixtureFile, name string) *Tensor {
	t.Helper()
	p := f.tensor(t, name)
	if err := p.SetRequiresGrad(true); err != nil {
		t.Fatal(err)
	}
	return p
}

// compareNamed compares got with the fixture tensor name.
func compareNamed(t testing.TB, f *fixtureFile, name string, got *Tensor, tol float64) float64 {
	t.Helper()
	want := f.tensor(t, name)
	defer want.Close()
	return compare(t, name, got, want, tol)
}

// gradOf returns p's gradient, failing when there is none.
func gradOf(t testing.TB, p *Tensor) *Tensor {
	t.Helper()
	g, err := p.Grad()
	if err != nil {
		t.Fatal(err)
	}
	if g == nil {
		t.Fatal("no gradient")
	}
	return g
}

// Gradients of mean(avg_pool(relu(conv(x, w, b)))) with respect to x, w and b.
func TestAutogradConv(t *testing.T) {
	f := fixtures(t)
	c := findCase(t, f, "conv_relu_avgpool_mean")
	x, w, b := param(t, f, c.In[0]), param(t, f, c.In[1]), param(t, f, c.In[2])
	defer closeAll(x, w, b)
	pad := c.i64(t, "padding")

	s := NewScope()
	defer s.Close()
	h := s.T(Conv2d(x, w, b, ConvOptions{Padding: [2]int64{pad, pad}}))
	h = s.T(Relu(h))
	h = s.T(AvgPool2d(h, PoolOptions{Kernel: [2]int64{2, 2}}))
	loss := s.T(Mean(h, nil, false))
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if info, _ := loss.Info(); !info.RequiresGrad {
		t.Error("loss does not require grad")
	}
	worst := compareNamed(t, f, c.Out[0], loss, tolConv)
	if g, err := w.Grad(); err != nil || g != nil {
		t.Fatalf("gradient before backward: %v %v", g, err)
	}
	if err := loss.Backward(); err != nil {
		t.Fatal(err)
	}
	for i, p := range []*Tensor{x, w, b} {
		g := gradOf(t, p)
		worst = math.Max(worst, compareNamed(t, f, c.Out[i+1], g, tolConv))
		g.Close()
	}
	t.Logf("conv -> relu -> avgpool -> mean: max relative error %.3g (loss and gradients)", worst)

	// A second backward through a fresh graph accumulates; ZeroGrad resets.
	h2 := s.T(Conv2d(x, w, b, ConvOptions{Padding: [2]int64{pad, pad}}))
	h2 = s.T(Relu(h2))
	h2 = s.T(AvgPool2d(h2, PoolOptions{Kernel: [2]int64{2, 2}}))
	loss2 := s.T(Mean(h2, nil, false))
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if err := loss2.Backward(); err != nil {
		t.Fatal(err)
	}
	g := gradOf(t, b)
	twice := s.T(DivScalar(g, 2))
	g.Close()
	compareNamed(t, f, c.Out[3], twice, tolElementwise)
	if err := loss2.Backward(); err == nil {
		t.Error("second backward through a freed graph: no error")
	}
	for _, p := range []*Tensor{x, w, b} {
		if err := p.ZeroGrad(); err != nil {
			t.Fatal(err)
		}
		g := gradOf(t, p)
		if v, _ := g.Float64s(); slicesMaxAbs(v) != 0 {
			t.Errorf("after ZeroGrad the gradient is not zero: %v", v[:min(4, len(v))])
		}
		g.Close()
	}
}

func slicesMaxAbs(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = math.Max(m, math.Abs(x))
	}
	return m
}

// ZeroGrad matches optimizer.zero_grad() of torch 1.13 (set_to_none=False):
// the gradient stays defined, is zero, no longer requires grad, and the next
// backward starts from it.
func TestZeroGrad(t *testing.T) {
	m := musts(t)
	p := floats32(t, []float32{1, 2, 3}, 3)
	defer p.Close()
	if err := p.ZeroGrad(); err != nil {
		t.Fatalf("ZeroGrad without a gradient: %v", err)
	}
	if err := p.SetRequiresGrad(true); err != nil {
		t.Fatal(err)
	}
	backward := func(scale float64) {
		sq := m(Square(p))
		sc := m(MulScalar(sq, scale))
		loss := m(Sum(sc, nil, false))
		if err := loss.Backward(); err != nil {
			t.Fatal(err)
		}
		closeAll(sq, sc, loss)
	}
	grad := func() []float32 {
		g := gradOf(t, p)
		defer g.Close()
		v, err := Values[float32](g)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	backward(1)
	backward(1)
	if v := grad(); fmt.Sprint(v) != "[4 8 12]" {
		t.Errorf("accumulated gradient %v", v)
	}
	if err := p.ZeroGrad(); err != nil {
		t.Fatal(err)
	}
	g := gradOf(t, p)
	if info, _ := g.Info(); info.RequiresGrad {
		t.Error("zeroed gradient requires grad")
	}
	g.Close()
	if v := grad(); fmt.Sprint(v) != "[0 0 0]" {
		t.Errorf("zeroed gradient %v", v)
	}
	backward(0.5)
	if v := grad(); fmt.Sprint(v) != "[1 2 3]" {
		t.Errorf("gradient after ZeroGrad and backward %v", v)
	}
}

// Adam on parameters whose gradients are given exactly: loss_t = Σ p·g_t.
func TestAdamElementwise(t *testing.T) {
	m := musts(t)
	f := fixtures(t)
	c := findCase(t, f, "adam_elementwise")
	var lrs []float64
	c.arg(t, "lrs", &lrs)
	steps := int(c.i64(t, "steps"))
	params := make([]*Tensor, 3)
	for i := range params {
		params[i] = param(t, f, fmt.Sprintf("adam_elementwise/p%d", i+1))
	}
	defer closeAll(params...)
	opt := NewAdam(params, lrs[0], c.f64(t, "weight_decay"))
	defer opt.Close()
	worst := 0.0
	for step := 0; step < steps; step++ {
		opt.LR = lrs[step]
		if err := opt.ZeroGrad(); err != nil {
			t.Fatal(err)
		}
		s := NewScope()
		var loss *Tensor
		for i, p := range params {
			g := s.Own(f.tensor(t, fmt.Sprintf("adam_elementwise/g%d_%d", i+1, step)))
			l := s.T(Sum(s.T(Mul(p, g)), nil, false))
			if loss == nil {
				loss = l
			} else {
				loss = s.T(Add(loss, l))
			}
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if err := loss.Backward(); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if err := opt.Step(); err != nil {
			t.Fatal(err)
		}
		for i, p := range params {
			worst = math.Max(worst, compareNamed(t, f, fmt.Sprintf("adam_elementwise/p%d_%d", i+1, step), p, tolElementwise))
		}
	}
	st := opt.State()
	if st[0].Step != int64(steps) || st[1].ExpAvg == nil {
		t.Errorf("state after %d steps: %+v", steps, st[0])
	}
	// The updates themselves (p_T − p_0), relative to their own size.
	upd := 0.0
	for i, p := range params {
		p0 := f.tensor(t, fmt.Sprintf("adam_elementwise/p%d", i+1))
		pT := f.tensor(t, fmt.Sprintf("adam_elementwise/p%d_%d", i+1, steps-1))
		want := m(Sub(pT, p0))
		got := m(Sub(p, p0))
		upd = math.Max(upd, compare(t, fmt.Sprintf("update of p%d", i+1), got, want, 1e-4))
		closeAll(p0, pT, want, got)
	}
	t.Logf("Adam (elementwise): parameters max relative error %.3g, update %.3g", worst, upd)
}

// Adam on a small conv net from the same initial weights and batches as
// torch.optim.Adam, lr changed midway, weight decay on.
func TestAdamConvNet(t *testing.T) {
	m := musts(t)
	f := fixtures(t)
	c := findCase(t, f, "adam_convnet")
	var lrs []float64
	c.arg(t, "lrs", &lrs)
	steps := int(c.i64(t, "steps"))
	names := []string{"w1", "b1", "w2", "b2"}
	params := make([]*Tensor, len(names))
	for i, n := range names {
		params[i] = param(t, f, "adam_convnet/"+n)
	}
	defer closeAll(params...)
	opt := NewAdam(params, lrs[0], c.f64(t, "weight_decay"))
	defer opt.Close()
	worst, worstLoss := 0.0, 0.0
	for step := 0; step < steps; step++ {
		opt.LR = lrs[step]
		if err := opt.ZeroGrad(); err != nil {
			t.Fatal(err)
		}
		s := NewScope()
		x := s.Own(f.tensor(t, fmt.Sprintf("adam_convnet/x_%d", step)))
		y := s.Own(f.tensor(t, fmt.Sprintf("adam_convnet/y_%d", step)))
		h := s.T(Conv2d(x, params[0], params[1], ConvOptions{Padding: [2]int64{1, 1}}))
		h = s.T(Relu(h))
		h = s.T(Conv2d(h, params[2], params[3], ConvOptions{}))
		loss := s.T(MSELoss(h, y, ReduceMean))
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if err := loss.Backward(); err != nil {
			t.Fatal(err)
		}
		worstLoss = math.Max(worstLoss, compareNamed(t, f, fmt.Sprintf("adam_convnet/loss_%d", step), loss, tolConv))
		s.Close()
		if err := opt.Step(); err != nil {
			t.Fatal(err)
		}
		for i, n := range names {
			worst = math.Max(worst, compareNamed(t, f, fmt.Sprintf("adam_convnet/%s_%d", n, step), params[i], tolConv))
		}
	}
	p0 := f.tensor(t, "adam_convnet/w1")
	pT := f.tensor(t, fmt.Sprintf("adam_convnet/w1_%d", steps-1))
	want := m(Sub(pT, p0))
	got := m(Sub(params[0], p0))
	upd := compare(t, "update of w1", got, want, 1e-3)
	closeAll(p0, pT, want, got)
	t.Logf("Adam (conv net): parameters max relative error %.3g, update %.3g, loss %.3g", worst, upd, worstLoss)
}

// A parameter without a gradient is skipped, as in PyTorch.
func TestAdamSkipsParamsWithoutGrad(t *testing.T) {
	p := floats32(t, []float32{1, 2}, 2)
	defer p.Close()
	if err := p.SetRequiresGrad(true); err != nil {
		t.Fatal(err)
	}
	opt := NewAdam([]*Tensor{p}, 0.1, 0)
	defer opt.Close()
	if err := opt.Step(); err != nil {
		t.Fatal(err)
	}
	if v, _ := Values[float32](p); fmt.Sprint(v) != "[1 2]" || opt.State()[0].Step != 0 {
		t.Errorf("step without gradient changed the parameter: %v, step %d", v, opt.State()[0].Step)
	}
}

// Resuming from a saved optimiser state continues exactly where the first
// optimiser stopped (a checkpoint), and SetState may reuse the tensors it has.
func TestAdamStateResume(t *testing.T) {
	m := musts(t)
	f := fixtures(t)
	c := findCase(t, f, "adam_elementwise")
	var lrs []float64
	c.arg(t, "lrs", &lrs)
	steps := int(c.i64(t, "steps"))
	params := make([]*Tensor, 3)
	for i := range params {
		params[i] = param(t, f, fmt.Sprintf("adam_elementwise/p%d", i+1))
	}
	defer closeAll(params...)
	run := func(opt *Adam, step int) {
		t.Helper()
		opt.LR = lrs[step]
		if err := opt.ZeroGrad(); err != nil {
			t.Fatal(err)
		}
		s := NewScope()
		defer s.Close()
		for i, p := range params {
			g := s.Own(f.tensor(t, fmt.Sprintf("adam_elementwise/g%d_%d", i+1, step)))
			if err := s.T(Sum(s.T(Mul(p, g)), nil, false)).Backward(); err != nil {
				t.Fatal(err)
			}
		}
		if err := opt.Step(); err != nil {
			t.Fatal(err)
		}
	}
	first := NewAdam(params, lrs[0], c.f64(t, "weight_decay"))
	half := steps / 2
	for step := 0; step < half; step++ {
		run(first, step)
	}
	// Save: copies of the state, as a checkpoint would hold.
	saved := first.State()
	for i := range saved {
		saved[i].ExpAvg = m(Clone(saved[i].ExpAvg))
		saved[i].ExpAvgSq = m(Clone(saved[i].ExpAvgSq))
	}
	first.Close()
	live := LiveTensors()

	second := NewAdam(params, lrs[0], c.f64(t, "weight_decay"))
	defer second.Close()
	if err := second.SetState(saved); err != nil {
		t.Fatal(err)
	}
	if err := second.SetState(second.State()); err != nil { // reusing its own tensors frees nothing
		t.Fatal(err)
	}
	if LiveTensors() != live {
		t.Errorf("SetState changed the live tensors: %d -> %d", live, LiveTensors())
	}
	if err := second.SetState(saved[:1]); err == nil {
		t.Error("SetState with too few entries: no error")
	}
	for step := half; step < steps; step++ {
		run(second, step)
		for i, p := range params {
			compareNamed(t, f, fmt.Sprintf("adam_elementwise/p%d_%d", i+1, step), p, tolElementwise)
		}
	}
	if st := second.State(); st[0].Step != int64(steps) {
		t.Errorf("step count %d after resuming, want %d", st[0].Step, steps)
	}
}

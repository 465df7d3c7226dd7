package torchbind

import (
	"fmt"
	"math"
	"sort"
	"testing"
)

// An opFunc runs the operation of a fixture case on its stored inputs and
// returns its outputs, in the order of the case's "out" list.
type opFunc func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error)

func one(x *Tensor, err error) ([]*Tensor, error) {
	if err != nil {
		return nil, err
	}
	return []*Tensor{x}, nil
}

func binaryOp(f func(a, b *Tensor) (*Tensor, error)) opFunc {
	return func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) { return one(f(in[0], in[1])) }
}

func scalarOp(f func(a *Tensor, s float64) (*Tensor, error)) opFunc {
	return func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(f(in[0], c.f64(t, "s")))
	}
}

func unaryOp(f func(a *Tensor) (*Tensor, error)) opFunc {
	return func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) { return one(f(in[0])) }
}

func reduceOp(f func(a *Tensor, dims []int64, keepdim bool) (*Tensor, error)) opFunc {
	return func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(f(in[0], c.ints(t, "dims"), c.flag(t, "keepdim")))
	}
}

func spreadOp(f func(a *Tensor, dims []int64, unbiased, keepdim bool) (*Tensor, error)) opFunc {
	return func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(f(in[0], c.ints(t, "dims"), c.flag(t, "unbiased"), c.flag(t, "keepdim")))
	}
}

// generator returns a CPU generator seeded with the case's "seed".
func generator(t testing.TB, c *fixtureCase) *Generator {
	t.Helper()
	g, err := NewGenerator(uint64(c.i64(t, "seed")), CPU)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

var fixtureOps = map[string]opFunc{
	// elementwise
	"add":         binaryOp(Add),
	"sub":         binaryOp(Sub),
	"mul":         binaryOp(Mul),
	"div":         binaryOp(Div),
	"pow":         binaryOp(Pow),
	"maximum":     binaryOp(Maximum),
	"minimum":     binaryOp(Minimum),
	"gt":          binaryOp(Gt),
	"ge":          binaryOp(Ge),
	"lt":          binaryOp(Lt),
	"le":          binaryOp(Le),
	"eq":          binaryOp(Eq),
	"ne":          binaryOp(Ne),
	"add_scalar":  scalarOp(AddScalar),
	"sub_scalar":  scalarOp(SubScalar),
	"rsub_scalar": scalarOp(RSubScalar),
	"mul_scalar":  scalarOp(MulScalar),
	"div_scalar":  scalarOp(DivScalar),
	"pow_scalar":  scalarOp(PowScalar),
	"gt_scalar":   scalarOp(GtScalar),
	"ge_scalar":   scalarOp(GeScalar),
	"lt_scalar":   scalarOp(LtScalar),
	"le_scalar":   scalarOp(LeScalar),
	"eq_scalar":   scalarOp(EqScalar),
	"sqrt":        unaryOp(Sqrt),
	"neg":         unaryOp(Neg),
	"abs":         unaryOp(Abs),
	"exp":         unaryOp(Exp),
	"log":         unaryOp(Log),
	"relu":        unaryOp(Relu),
	"sigmoid":     unaryOp(Sigmoid),
	"tanh":        unaryOp(Tanh),
	"floor":       unaryOp(Floor),
	"ceil":        unaryOp(Ceil),
	"square":      unaryOp(Square),
	"clamp": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(Clamp(in[0], c.f64(t, "lo"), c.f64(t, "hi")))
	},
	"where": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(Where(in[0], in[1], in[2]))
	},
	"masked_select": binaryOp(MaskedSelect),

	// reductions
	"sum":  reduceOp(Sum),
	"mean": reduceOp(Mean),
	"max":  reduceOp(Max),
	"min":  reduceOp(Min),
	"std":  spreadOp(Std),
	"var":  spreadOp(Var),
	"argmax": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		var dim *int64
		c.arg(t, "dim", &dim)
		var dims []int64
		if dim != nil {
			dims = []int64{*dim}
		}
		return one(Argmax(in[0], dims, c.flag(t, "keepdim")))
	},
	"quantile": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(Quantile(in[0], c.f64(t, "q"), nil, false))
	},
	"quantile_dim": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(Quantile(in[0], c.f64(t, "q"), []int64{c.i64(t, "dim")}, c.flag(t, "keepdim")))
	},

	"kthvalue": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		v, i, err := KthValue(in[0], c.i64(t, "k"), c.i64(t, "dim"), c.flag(t, "keepdim"))
		return []*Tensor{v, i}, err
	},
	"sort": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		v, i, err := Sort(in[0], c.i64(t, "dim"), c.flag(t, "descending"))
		return []*Tensor{v, i}, err
	},

	// shape and indexing
	"gather": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(Gather(in[0], c.i64(t, "dim"), in[1]))
	},
	"expand": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(Expand(in[0], c.ints(t, "shape")...))
	},
	"flatten": unaryOp(Flatten),
	"narrow": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(Narrow(in[0], c.i64(t, "dim"), c.i64(t, "start"), c.i64(t, "length")))
	},
	"index_select": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(IndexSelect(in[0], c.i64(t, "dim"), in[1]))
	},
	"cat": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(Cat(in, c.i64(t, "dim")))
	},
	"stack": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(Stack(in, c.i64(t, "dim")))
	},
	"reshape": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(Reshape(in[0], c.ints(t, "shape")...))
	},
	"view": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(View(in[0], c.ints(t, "shape")...))
	},
	"permute": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(Permute(in[0], c.ints(t, "dims")...))
	},
	"transpose": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(Transpose(in[0], c.i64(t, "d0"), c.i64(t, "d1")))
	},
	"permute_contiguous": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		p, err := Permute(in[0], c.ints(t, "dims")...)
		if err != nil {
			return nil, err
		}
		defer p.Close()
		return one(Contiguous(p))
	},
	"squeeze": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(Squeeze(in[0], nil))
	},
	"squeeze_dim": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(Squeeze(in[0], []int64{c.i64(t, "dim")}))
	},
	"unsqueeze": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(Unsqueeze(in[0], c.i64(t, "dim")))
	},

	// neural-network functions
	"conv2d": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		o := ConvOptions{Stride: c.pair(t, "stride"), Padding: c.pair(t, "padding"), Dilation: c.pair(t, "dilation"), Groups: c.i64(t, "groups")}
		return one(Conv2d(in[0], in[1], in[2], o))
	},
	"avg_pool2d": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		o := PoolOptions{Kernel: c.pair(t, "kernel"), Stride: c.pair(t, "stride"), Padding: c.pair(t, "padding"),
			CeilMode: c.flag(t, "ceil_mode"), ExcludePad: !c.flag(t, "count_include_pad")}
		return one(AvgPool2d(in[0], o))
	},
	"max_pool2d": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		o := PoolOptions{Kernel: c.pair(t, "kernel"), Stride: c.pair(t, "stride"), Padding: c.pair(t, "padding")}
		return one(MaxPool2d(in[0], o))
	},
	"batch_norm": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		training := c.flag(t, "training")
		out, err := BatchNorm(in[0], in[1], in[2], in[3], in[4], training, c.f64(t, "momentum"), c.f64(t, "eps"))
		if err != nil || !training {
			return one(out, err)
		}
		// Training updated the running statistics in place.
		rm, err1 := in[3].Ref()
		rv, err2 := in[4].Ref()
		if err1 != nil || err2 != nil {
			closeAll(out, rm, rv)
			return nil, fmt.Errorf("ref: %v %v", err1, err2)
		}
		return []*Tensor{out, rm, rv}, nil
	},
	"upsample_bilinear": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		size := c.pair(t, "size")
		return one(UpsampleBilinear(in[0], size[0], size[1], c.flag(t, "align_corners")))
	},
	"adaptive_avg_pool1d": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(AdaptiveAvgPool1d(in[0], c.i64(t, "size")))
	},
	"adaptive_avg_pool2d": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		size := c.pair(t, "size")
		return one(AdaptiveAvgPool2d(in[0], size[0], size[1]))
	},
	"mse_loss": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(MSELoss(in[0], in[1], Reduction(c.i64(t, "reduction"))))
	},

	// random numbers: the same seed gives the same sequence as torch.Generator().manual_seed(seed)
	"rand": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(Rand(generator(t, c), c.ints(t, "shape"), Float32, CPU))
	},
	"rand_f64": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(Rand(generator(t, c), c.ints(t, "shape"), Float64, CPU))
	},
	"randn": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(Randn(generator(t, c), c.ints(t, "shape"), Float32, CPU))
	},
	"randint": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(RandInt(generator(t, c), c.i64(t, "low"), c.i64(t, "high"), c.ints(t, "shape"), CPU))
	},
	"randperm": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(RandPerm(generator(t, c), c.i64(t, "n"), CPU))
	},
	"sequence": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		g := generator(t, c)
		s := NewScope()
		defer s.Close()
		a := s.T(Rand(g, []int64{10}, Float32, CPU))
		b := s.T(Randn(g, []int64{10}, Float32, CPU))
		p := s.T(RandPerm(g, 12, CPU))
		if err := s.Err(); err != nil {
			return nil, err
		}
		return []*Tensor{s.Keep(a), s.Keep(b), s.Keep(p)}, nil
	},
	"bernoulli": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(Bernoulli(generator(t, c), in[0], c.f64(t, "p")))
	},
	"dropout": func(t testing.TB, c *fixtureCase, in []*Tensor) ([]*Tensor, error) {
		return one(Dropout(in[0], c.f64(t, "p"), c.flag(t, "training"), generator(t, c)))
	},
}

// Tolerances of the numerical contract: elementwise float32 work within
// 1e-6 relative, convolutions within 1e-4, random sequences and integer
// results exactly.
const (
	tolElementwise = 1e-6
	tolConv        = 1e-4
	tolExact       = 0
)

func tolerance(c *fixtureCase) float64 {
	switch {
	case c.Op == "conv2d":
		return tolConv
	case c.Group == "random" || c.Group == "shape":
		return tolExact
	}
	return tolElementwise
}

// runGroup runs every fixture case of a group and logs the largest error per op.
func runGroup(t *testing.T, group string) {
	f := fixtures(t)
	cases := f.cases(group)
	if len(cases) == 0 {
		t.Fatalf("no fixture cases in group %q", group)
	}
	worst := map[string]float64{}
	for i := range cases {
		c := &cases[i]
		t.Run(c.Name, func(t *testing.T) {
			op, ok := fixtureOps[c.Op]
			if !ok {
				t.Fatalf("no Go implementation of fixture op %q", c.Op)
			}
			in := make([]*Tensor, len(c.In))
			for j, name := range c.In {
				in[j] = f.tensor(t, name)
			}
			defer closeAll(in...)
			out, err := op(t, c, in)
			if err != nil {
				t.Fatal(err)
			}
			defer closeAll(out...)
			if len(out) != len(c.Out) {
				t.Fatalf("%d outputs, want %d", len(out), len(c.Out))
			}
			for j, name := range c.Out {
				want := f.tensor(t, name)
				e := compare(t, name, out[j], want, tolerance(c))
				want.Close()
				worst[c.Op] = math.Max(worst[c.Op], e)
			}
		})
	}
	ops := make([]string, 0, len(worst))
	for op := range worst {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	for _, op := range ops {
		t.Logf("%-20s max relative error %.3g", op, worst[op])
	}
}

func TestElementwise(t *testing.T) { runGroup(t, "elementwise") }
func TestReductions(t *testing.T)  { runGroup(t, "reduce") }
func TestShapes(t *testing.T)      { runGroup(t, "shape") }
func TestNN(t *testing.T)          { runGroup(t, "nn") }
func TestRandom(t *testing.T)      { runGroup(t, "random") }

// Scalar operands are Python floats: they keep a float32 tensor float32.
func TestScalarOpsKeepDType(t *testing.T) {
	m := musts(t)
	for _, dt := range []DType{Float32, Float64} {
		x := m(Full([]int64{3}, 1.5, dt, CPU))
		for name, f := range map[string]func(*Tensor, float64) (*Tensor, error){
			"add": AddScalar, "sub": SubScalar, "rsub": RSubScalar, "mul": MulScalar, "div": DivScalar, "pow": PowScalar,
		} {
			y := m(f(x, 0.1))
			if info, _ := y.Info(); info.DType != dt {
				t.Errorf("%s(%v, 0.1) is %v", name, dt, info.DType)
			}
			y.Close()
		}
		for name, f := range map[string]func(*Tensor, float64) (*Tensor, error){
			"gt": GtScalar, "ge": GeScalar, "lt": LtScalar, "le": LeScalar, "eq": EqScalar,
		} {
			y := m(f(x, 0.1))
			if info, _ := y.Info(); info.DType != Bool {
				t.Errorf("%s(%v, 0.1) is %v, want bool", name, dt, info.DType)
			}
			y.Close()
		}
		x.Close()
	}
}

func TestDropoutEvalIsIdentity(t *testing.T) {
	m := musts(t)
	x := floats32(t, []float32{1, 2, 3, 4}, 2, 2)
	defer x.Close()
	for _, p := range []float64{0, 0.2, 1} {
		y := m(Dropout(x, p, false, nil))
		v, err := Values[float32](y)
		if err != nil || fmt.Sprint(v) != "[1 2 3 4]" {
			t.Errorf("eval dropout p=%g: %v %v", p, v, err)
		}
		y.Close()
	}
	y := m(Dropout(x, 1, true, nil))
	if v, _ := Values[float32](y); fmt.Sprint(v) != "[0 0 0 0]" {
		t.Errorf("train dropout p=1: %v", v)
	}
	y.Close()
	if _, err := Dropout(x, 1.5, true, nil); err == nil {
		t.Error("dropout p=1.5: no error")
	}
}

// A generator's state restores the sequence it would have drawn.
func TestGeneratorState(t *testing.T) {
	m := musts(t)
	g, err := NewGenerator(5, CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	a := m(Rand(g, []int64{3}, Float32, CPU))
	a.Close()
	st, err := g.State()
	if err != nil {
		t.Fatal(err)
	}
	b := m(Randn(g, []int64{8}, Float32, CPU))
	defer b.Close()
	if err := g.SetState(st); err != nil {
		t.Fatal(err)
	}
	c := m(Randn(g, []int64{8}, Float32, CPU))
	defer c.Close()
	compare(t, "after SetState", c, b, tolExact)

	// Perm is randperm(n) from a fresh generator: the split of the dataset code.
	p, err := Perm(42, 50)
	if err != nil {
		t.Fatal(err)
	}
	f := fixtures(t)
	want := f.tensor(t, "randperm_50_42/out")
	defer want.Close()
	w, _ := Values[int64](want)
	if fmt.Sprint(p) != fmt.Sprint(w) {
		t.Errorf("Perm(42, 50) = %v, want %v", p, w)
	}
}

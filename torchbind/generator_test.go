package torchbind

import "testing"

// TestReferenceDraws checks the in-place initialisers and the int64
// random_ against PyTorch 1.13 (CPU), the values printed by
//
//	g = torch.Generator().manual_seed(7)
//	torch.empty((), dtype=torch.int64).random_(generator=g)  # twice
//	torch.empty(5).uniform_(-0.3, 0.3, generator=g)
//	torch.empty(5).normal_(0, 0.2, generator=g)   # scalar path
//	torch.empty(20).normal_(1, 0.2, generator=g)  # vectorised path (16 and more)
func TestReferenceDraws(t *testing.T) {
	g, err := NewGenerator(7, CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for _, want := range []int64{1407639518939636932, 5163590386780219894} {
		v, err := RandomInt64(g)
		if err != nil {
			t.Fatal(err)
		}
		if v != want {
			t.Errorf("RandomInt64 = %d, want %d", v, want)
		}
	}
	check := func(name string, x *Tensor, err error, want []float64) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer x.Close()
		v, err := Values[float32](x)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if v[i] != float32(want[i]) {
				t.Errorf("%s[%d] = %v, want %v", name, i, v[i], float32(want[i]))
			}
		}
	}
	x, err := Uniform(g, []int64{5}, -0.3, 0.3, Float32, CPU)
	check("uniform", x, err, []float64{-0.16034306585788727, -0.044963158667087555, -0.17574839293956757, 0.07784181833267212, -0.0808103084564209})
	x, err = Normal(g, []int64{5}, 0, 0.2, Float32, CPU)
	check("normal", x, err, []float64{0.0755019262433052, -0.19018246233463287, -0.2382594347000122, -0.33035317063331604, -0.3435399532318115})
	x, err = Normal(g, []int64{20}, 1, 0.2, Float32, CPU)
	check("normal (vectorised)", x, err, []float64{1.15641450881958, 1.2078214883804321, 0.8550978302955627, 0.8302182555198669, 1.149423599243164,
		1.1223632097244263, 1.3735567331314087, 1.5023205280303955, 0.7490429878234863, 1.163291335105896, 0.7869201898574829, 0.9643614888191223,
		1.031542420387268, 1.0791481733322144, 0.7264520525932312, 0.9798531532287598, 1.0474029779434204, 1.1265363693237305, 0.9816645383834839, 1.324863314628601})
}

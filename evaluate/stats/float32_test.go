package stats

import (
	"fmt"
	"math"
	"testing"
)

// float32Case is one sample size of stats_float32.json: validation scores
// and test scores as float32 values, and numpy's float32 statistics of them.
type float32Case struct {
	N        int       `json:"n"`
	Eff      []float64 `json:"eff"`
	Maha     []float64 `json:"maha"`
	EffMean  float64   `json:"eff_mean"`
	EffStd   float64   `json:"eff_std"`
	MahaMean float64   `json:"maha_mean"`
	MahaStd  float64   `json:"maha_std"`
	TestEff  []float64 `json:"test_eff"`
	TestMaha []float64 `json:"test_maha"`
	ZEff     []float64 `json:"z_eff"`
	ZMaha    []float64 `json:"z_maha"`
	PUAD     []float64 `json:"puad"`
}

// TestFloat32StatisticsMatchNumpy checks the validation statistics and the
// fused scores bit for bit against numpy's float32 arithmetic at sample
// sizes below, at and above numpy's pairwise-summation block (8-way
// unrolled, blocks of 128) and several levels deep (5000). Every value is
// exact IEEE float32 arithmetic in a fixed order, the same on every CPU, so
// the comparison is for equality.
func TestFloat32StatisticsMatchNumpy(t *testing.T) {
	var f struct {
		Cases []float32Case `json:"float32"`
	}
	loadJSON(t, "stats_float32.json", &f)
	sizes := map[int]bool{}
	for _, c := range f.Cases {
		sizes[c.N] = true
		t.Run(fmt.Sprint("n=", c.N), func(t *testing.T) {
			if len(c.Eff) != c.N || len(c.Maha) != c.N {
				t.Fatalf("fixture has %d/%d values", len(c.Eff), len(c.Maha))
			}
			fu, err := FitFusion(c.Eff, c.Maha)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []struct {
				name      string
				got, want float64
			}{
				{"EfficientAD mean", fu.EfficientAD.Mean, c.EffMean},
				{"EfficientAD std", fu.EfficientAD.Std, c.EffStd},
				{"Mahalanobis mean", fu.Mahalanobis.Mean, c.MahaMean},
				{"Mahalanobis std", fu.Mahalanobis.Std, c.MahaStd},
			} {
				if p.got != p.want {
					t.Errorf("%s = %.9g, want %.9g", p.name, p.got, p.want)
				}
			}
			if c.PUAD == nil {
				if err := fu.Check(); err == nil {
					t.Errorf("one validation score: Check found no zero standard deviation")
				}
				return
			}
			for i := range c.TestEff {
				if got := fu.EfficientAD.Apply(c.TestEff[i]); got != c.ZEff[i] {
					t.Errorf("z(EfficientAD %d) = %.9g, want %.9g", i, got, c.ZEff[i])
				}
				if got := fu.Mahalanobis.Apply(c.TestMaha[i]); got != c.ZMaha[i] {
					t.Errorf("z(Mahalanobis %d) = %.9g, want %.9g", i, got, c.ZMaha[i])
				}
				if got := fu.Score(c.TestEff[i], c.TestMaha[i]); got != c.PUAD[i] {
					t.Errorf("PUAD score %d = %.9g, want %.9g", i, got, c.PUAD[i])
				}
			}
		})
	}
	for _, n := range []int{1, 2, 7, 8, 9, 20, 127, 128, 129, 300, 1000, 5000} {
		if !sizes[n] {
			t.Errorf("stats_float32.json lacks n = %d", n)
		}
	}
}

// The float64 reference of the same float32 statistics is close but not
// equal: the test above would not pass with float64 accumulation.
func TestFloat32StatisticsDifferFromFloat64(t *testing.T) {
	var f struct {
		Cases []float32Case `json:"float32"`
	}
	loadJSON(t, "stats_float32.json", &f)
	differ := 0
	for _, c := range f.Cases {
		m, s := MeanStd(c.Maha)
		if float64(float32(m)) != c.MahaMean || float64(float32(s)) != c.MahaStd {
			differ++
		}
		if math.Abs(m-c.MahaMean) > 1e-4*math.Abs(c.MahaMean) {
			t.Errorf("n=%d: float64 mean %.9g far from numpy's float32 %.9g", c.N, m, c.MahaMean)
		}
	}
	if differ == 0 {
		t.Error("float64 statistics rounded to float32 equal numpy's float32 ones at every size: the fixture cannot tell them apart")
	}
}

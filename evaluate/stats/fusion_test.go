package stats

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/puad-go/puad/evaluate/metrics"
)

type fusionFixtures struct {
	MeanStd []struct {
		Xs   []float64 `json:"xs"`
		Mean float64   `json:"mean"`
		Std  float64   `json:"std"`
	} `json:"mean_std"`
	Fusion struct {
		EffValid  []float64 `json:"eff_valid"`
		MahaValid []float64 `json:"maha_valid"`
		EffTest   []float64 `json:"eff_test"`
		MahaTest  []float64 `json:"maha_test"`
		EffMean   float64   `json:"eff_mean"`
		EffStd    float64   `json:"eff_std"`
		MahaMean  float64   `json:"maha_mean"`
		MahaStd   float64   `json:"maha_std"`
		PUAD      []float64 `json:"puad"`
	} `json:"fusion"`
}

// fusionTol is the relative agreement required with numpy: numpy sums with
// pairwise summation, this code sequentially, so the last bits may differ.
const fusionTol = 1e-12

func TestMeanStdMatchesNumpy(t *testing.T) {
	var f fusionFixtures
	loadJSON(t, "stats_fusion.json", &f)
	if len(f.MeanStd) == 0 {
		t.Fatal("no mean/std cases")
	}
	for i, c := range f.MeanStd {
		m, s := MeanStd(c.Xs)
		if relErr(m, c.Mean) > fusionTol || relErr(s, c.Std) > fusionTol {
			t.Errorf("case %d: MeanStd = %.17g, %.17g, want %.17g, %.17g", i, m, s, c.Mean, c.Std)
		}
	}
}

func TestFusionMatchesReference(t *testing.T) {
	var f fusionFixtures
	loadJSON(t, "stats_fusion.json", &f)
	c := f.Fusion
	fu, err := FitFusion(c.EffValid, c.MahaValid)
	if err != nil {
		t.Fatal(err)
	}
	if err := fu.Check(); err != nil {
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
			t.Errorf("%s = %.17g, want %.17g (float32 statistics must agree bit for bit)", p.name, p.got, p.want)
		}
	}
	// PUAD scores are sums of standardised values and can be near 0, so
	// they are compared relative to the largest |score|.
	var scale float64
	for _, w := range c.PUAD {
		scale = math.Max(scale, math.Abs(w))
	}
	for i, w := range c.PUAD {
		if got := fu.Score(c.EffTest[i], c.MahaTest[i]); got != w {
			t.Errorf("image %d: Score = %.17g, want %.17g", i, got, w)
		}
	}
}

func TestMeanStd(t *testing.T) {
	tests := []struct {
		name      string
		xs        []float64
		mean, std float64
	}{
		{"one value", []float64{3}, 3, 0},
		{"population std", []float64{1, 3}, 2, 1},
		{"constant", []float64{0.1, 0.1, 0.1}, 0.1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, s := MeanStd(tt.xs)
			if relErr(m, tt.mean) > 1e-15 || math.Abs(s-tt.std) > 1e-15 {
				t.Errorf("MeanStd(%v) = %v, %v, want %v, %v", tt.xs, m, s, tt.mean, tt.std)
			}
		})
	}
	if m, s := MeanStd(nil); !math.IsNaN(m) || !math.IsNaN(s) {
		t.Errorf("MeanStd(nil) = %v, %v, want NaN, NaN", m, s)
	}
}

func TestZeroStd(t *testing.T) {
	// All validation scores equal: the reference divides by zero and goes
	// on; Apply does the same, Check reports it and AUROC refuses the result.
	fu, err := FitFusion([]float64{0.5, 0.5, 0.5}, []float64{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	err = fu.Check()
	if !errors.Is(err, ErrZeroStd) || !strings.Contains(err.Error(), "EfficientAD score") {
		t.Errorf("Check() = %v, want ErrZeroStd about the EfficientAD score", err)
	}
	if got := fu.Score(0.7, 2); !math.IsInf(got, 1) {
		t.Errorf("Score above the constant = %v, want +Inf", got)
	}
	if got := fu.Score(0.5, 2); !math.IsNaN(got) {
		t.Errorf("Score at the constant = %v, want NaN", got)
	}
	scores := []float64{fu.Score(0.7, 2), fu.Score(0.3, 2)}
	if _, err := metrics.AUROC([]bool{true, false}, scores); err == nil {
		t.Error("AUROC of infinite scores succeeded; roc_auc_score raises")
	}

	fu = Fusion{EfficientAD: ZScore{0, 1}, Mahalanobis: ZScore{4, 0}}
	if err := fu.Check(); !errors.Is(err, ErrZeroStd) || !strings.Contains(err.Error(), "Mahalanobis distance") {
		t.Errorf("Check() = %v, want ErrZeroStd about the Mahalanobis distance", err)
	}
	if err := (ZScore{math.NaN(), math.NaN()}).Check(); err == nil || errors.Is(err, ErrZeroStd) {
		t.Errorf("NaN ZScore Check() = %v, want a non-finite error", err)
	}
}

func TestFitFusionErrors(t *testing.T) {
	tests := []struct {
		name      string
		eff, maha []float64
		want      string
	}{
		{"empty", nil, nil, "needs validation scores, got 0 EfficientAD scores and 0 Mahalanobis distances"},
		{"no distances", []float64{1}, nil, "got 1 EfficientAD scores and 0 Mahalanobis distances"},
		{"length mismatch", []float64{1, 2}, []float64{1}, "2 EfficientAD scores but 1 Mahalanobis distances"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FitFusion(tt.eff, tt.maha)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestUnpicturableOnly(t *testing.T) {
	f := &FitFile{
		Fusion:    Fusion{EfficientAD: ZScore{Mean: 1, Std: 1}, Mahalanobis: ZScore{Mean: 10, Std: 2}},
		Threshold: Threshold{Value: 2},
	}
	tests := []struct {
		eff, maha float64
		want      bool
	}{
		{1, 20, true},   // z 0 + 5: the Mahalanobis term alone flags it
		{4, 20, false},  // z 3 alone is above the threshold
		{1, 10, false},  // normal
		{2.5, 12, true}, // z 1.5 + 1
	}
	for _, tt := range tests {
		if got := f.UnpicturableOnly(tt.eff, tt.maha); got != tt.want {
			t.Errorf("UnpicturableOnly(%v, %v) = %v, want %v", tt.eff, tt.maha, got, tt.want)
		}
	}
}

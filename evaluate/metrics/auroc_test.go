package metrics

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type aurocFixtures struct {
	Cases []struct {
		Name   string    `json:"name"`
		Labels []bool    `json:"labels"`
		Scores []float64 `json:"scores"`
		AUROC  float64   `json:"auroc"`
	} `json:"cases"`
	PerClass struct {
		Classes  []string  `json:"classes"`
		Scores   []float64 `json:"scores"`
		Normal   string    `json:"normal"`
		Overall  float64   `json:"overall"`
		PerClass []struct {
			Class string  `json:"class"`
			Count int     `json:"count"`
			AUROC float64 `json:"auroc"`
		} `json:"per_class"`
	} `json:"per_class"`
}

// loadAUROCFixtures reads the roc_auc_score values that
// testdata/auroc_gen_fixtures.py wrote.
func loadAUROCFixtures(t *testing.T) aurocFixtures {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "auroc_sklearn.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f aurocFixtures
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("auroc_sklearn.json: %v", err)
	}
	return f
}

// aurocTol is the agreement required with roc_auc_score: both compute the
// same rational number, scikit-learn through the trapezoidal rule on
// normalised rates, this code from exact counts, so only the last bits of
// the float64 may differ.
const aurocTol = 1e-12

func TestAUROCMatchesScikitLearn(t *testing.T) {
	f := loadAUROCFixtures(t)
	if len(f.Cases) == 0 {
		t.Fatal("no AUROC cases")
	}
	var worst float64
	for _, c := range f.Cases {
		t.Run(c.Name, func(t *testing.T) {
			got, err := AUROC(c.Labels, c.Scores)
			if err != nil {
				t.Fatal(err)
			}
			d := math.Abs(got - c.AUROC)
			worst = math.Max(worst, d)
			// Bit for bit: the printed AUROCs must equal the reference's.
			if got != c.AUROC {
				t.Errorf("AUROC = %.17g, roc_auc_score = %.17g", got, c.AUROC)
			}
		})
	}
	t.Logf("largest difference from roc_auc_score: %g", worst)
}

func TestPerClassAUROCMatchesReference(t *testing.T) {
	f := loadAUROCFixtures(t)
	p := f.PerClass
	overall, per, err := PerClassAUROC(p.Classes, p.Scores, p.Normal)
	if err != nil {
		t.Fatal(err)
	}
	if overall != p.Overall {
		t.Errorf("overall = %.17g, want %.17g", overall, p.Overall)
	}
	if len(per) != len(p.PerClass) {
		t.Fatalf("got %d classes, want %d", len(per), len(p.PerClass))
	}
	for i, w := range p.PerClass {
		g := per[i]
		if g.Class != w.Class || g.Count != w.Count || g.AUROC != w.AUROC {
			t.Errorf("class %d = %+v, want {Class:%s AUROC:%.17g Count:%d}", i, g, w.Class, w.AUROC, w.Count)
		}
	}
}

// mannWhitney is the quadratic definition: the fraction of (positive,
// negative) pairs ranked correctly, ties counting one half.
func mannWhitney(labels []bool, scores []float64) float64 {
	var sum, pairs float64
	for i, li := range labels {
		if !li {
			continue
		}
		for j, lj := range labels {
			if lj {
				continue
			}
			pairs++
			switch {
			case scores[i] > scores[j]:
				sum++
			case scores[i] == scores[j]:
				sum += 0.5
			}
		}
	}
	return sum / pairs
}

func TestAUROCMatchesPairCount(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 200; trial++ {
		n := 2 + rng.IntN(60)
		labels := make([]bool, n)
		scores := make([]float64, n)
		levels := 1 + rng.IntN(8) // few levels: many ties
		for i := range labels {
			labels[i] = rng.IntN(3) == 0
			scores[i] = float64(rng.IntN(levels))
		}
		labels[0], labels[1] = true, false
		got, err := AUROC(labels, scores)
		if err != nil {
			t.Fatal(err)
		}
		if want := mannWhitney(labels, scores); math.Abs(got-want) > aurocTol {
			t.Fatalf("trial %d: AUROC = %.17g, pair count = %.17g (labels %v, scores %v)", trial, got, want, labels, scores)
		}
	}
}

func TestAUROCErrors(t *testing.T) {
	tests := []struct {
		name   string
		labels []bool
		scores []float64
		want   string
	}{
		{"length mismatch", []bool{true, false}, []float64{1}, "2 labels but 1 scores"},
		{"empty", nil, nil, "no samples"},
		{"all normal", []bool{false, false}, []float64{1, 2}, "only one class"},
		{"all anomalous", []bool{true}, []float64{1}, "only one class"},
		{"NaN", []bool{true, false}, []float64{math.NaN(), 1}, "score 0 is NaN"},
		{"Inf", []bool{true, false}, []float64{1, math.Inf(1)}, "score 1 is +Inf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := AUROC(tt.labels, tt.scores)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := AUROC([]bool{true}, []float64{1}); !errors.Is(err, ErrOneClass) {
		t.Errorf("one class: error %v is not ErrOneClass", err)
	}
}

func TestPerClassAUROC(t *testing.T) {
	classes := []string{"good", "crack", "good", "hole", "crack", "good", "hole"}
	scores := []float64{0.1, 0.9, 0.3, 0.2, 0.3, 0.2, 0.05}
	overall, per, err := PerClassAUROC(classes, scores, "good")
	if err != nil {
		t.Fatal(err)
	}
	// Negatives 0.1 0.3 0.2. crack: 0.9 beats 3, 0.3 beats 2 ties 1 → 5.5/6.
	// hole: 0.2 beats 1 ties 1, 0.05 beats 0 → 1.5/6. Overall (5.5+1.5)/12.
	want := []ClassAUROC{{"crack", 5.5 / 6, 2}, {"hole", 1.5 / 6, 2}}
	if math.Abs(overall-7.0/12) > aurocTol {
		t.Errorf("overall = %v, want %v", overall, 7.0/12)
	}
	if len(per) != len(want) {
		t.Fatalf("per = %+v, want %+v", per, want)
	}
	for i := range want {
		if per[i].Class != want[i].Class || per[i].Count != want[i].Count || math.Abs(per[i].AUROC-want[i].AUROC) > aurocTol {
			t.Errorf("per[%d] = %+v, want %+v", i, per[i], want[i])
		}
	}

	errTests := []struct {
		name    string
		classes []string
		scores  []float64
		want    string
	}{
		{"length mismatch", []string{"good"}, []float64{1, 2}, "1 class names but 2 scores"},
		{"no normal", []string{"crack", "hole"}, []float64{1, 2}, `no image of the normal class "good"`},
		{"no anomaly", []string{"good", "good"}, []float64{1, 2}, "no anomalous image"},
		{"NaN", []string{"good", "crack"}, []float64{1, math.NaN()}, "score 1 is NaN"},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := PerClassAUROC(tt.classes, tt.scores, "good")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func BenchmarkAUROC(b *testing.B) {
	const n = 100000
	rng := rand.New(rand.NewPCG(1, 2))
	labels := make([]bool, n)
	scores := make([]float64, n)
	for i := range labels {
		labels[i] = rng.IntN(4) == 0
		s := rng.NormFloat64()
		if labels[i] {
			s += 1
		}
		scores[i] = math.Round(s*100) / 100 // ties
	}
	for b.Loop() {
		if _, err := AUROC(labels, scores); err != nil {
			b.Fatal(err)
		}
	}
}

package stats

import (
	"math"
	"testing"
)

func TestChooseThreshold(t *testing.T) {
	ten := []float64{5, 1, 9, 3, 7, 2, 8, 4, 6, 10}
	for _, c := range []struct {
		name    string
		scores  []float64
		maxFPR  float64
		want    float64
		allowed int
		valFPR  float64
	}{
		{"below 1/n: the largest score", ten, 0.01, 10, 0, 0},
		{"zero", ten, 0, 10, 0, 0},
		{"exactly 1/n", ten, 0.1, 9, 1, 0.1},
		{"between", ten, 0.25, 8, 2, 0.2},
		{"0.3 of 10 despite rounding", ten, 0.3, 7, 3, 0.3},
		{"ties above count once each", []float64{1, 2, 3, 3, 3}, 0.2, 3, 1, 0},
		{"one image", []float64{4}, 0.5, 4, 0, 0},
	} {
		th, err := ChooseThreshold(c.scores, c.maxFPR)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if th.Value != c.want || th.Allowed != c.allowed || th.ValidationFPR != c.valFPR || th.NumValidation != len(c.scores) {
			t.Errorf("%s: %+v, want value %v allowed %d validation FPR %v", c.name, th, c.want, c.allowed, c.valFPR)
		}
		if want := float64(c.allowed+1) / float64(len(c.scores)+1); th.ExpectedFPR != want {
			t.Errorf("%s: expected FPR %v, want %v", c.name, th.ExpectedFPR, want)
		}
		above := 0
		for _, s := range c.scores {
			if s > th.Value {
				above++
			}
		}
		if float64(above) > c.maxFPR*float64(len(c.scores))+1e-9 {
			t.Errorf("%s: %d validation scores above the threshold", c.name, above)
		}
	}
	for _, c := range []struct {
		scores []float64
		maxFPR float64
	}{{nil, 0.01}, {[]float64{1}, 1}, {[]float64{1}, -0.1}, {[]float64{1, math.NaN()}, 0.1}, {[]float64{1}, math.NaN()}} {
		if _, err := ChooseThreshold(c.scores, c.maxFPR); err == nil {
			t.Errorf("ChooseThreshold(%v, %v): no error", c.scores, c.maxFPR)
		}
	}
}

package stats

import "testing"

func TestComponentsAndConfidence(t *testing.T) {
	fu := Fusion{EfficientAD: ZScore{Mean: 1, Std: 0.5}, Mahalanobis: ZScore{Mean: 10, Std: 2}}
	for _, c := range []struct {
		eff, maha float64
		want      Component
	}{{2, 10, Picturable}, {1, 20, Unpicturable}, {1.5, 11, Picturable}} {
		ze, zm, got := fu.Components(c.eff, c.maha)
		if got != c.want || float64(float32(ze)+float32(zm)) != fu.Score(c.eff, c.maha) {
			t.Errorf("%v %v: %v %v %v, score %v", c.eff, c.maha, ze, zm, got, fu.Score(c.eff, c.maha))
		}
	}
	f := &FitFile{Validation: []ValidationScore{{PUAD: -1}, {PUAD: 0}, {PUAD: 0}, {PUAD: 2}}}
	for _, c := range []struct{ puad, want float64 }{{-5, 0}, {-1, 0}, {0, 0.25}, {1, 0.75}, {2, 0.75}, {3, 1}} {
		if got := f.Confidence(c.puad); got != c.want {
			t.Errorf("Confidence(%v) = %v, want %v", c.puad, got, c.want)
		}
	}
}

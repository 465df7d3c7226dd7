package stats

import "testing"

// TestChoosePixelThreshold checks that the pixel threshold follows the
// fit's rule: the (k+1)-th largest value over all validation pixels.
func TestChoosePixelThreshold(t *testing.T) {
	maps := [][]float32{{0.1, 0.9, 0.3, 0.3}, {0.5, 0.2, 0.7, 0.3}}
	flat := []float64{0.1, 0.9, 0.3, 0.3, 0.5, 0.2, 0.7, 0.3}
	for _, fpr := range []float64{0, 0.1, 0.125, 0.25, 0.5, 0.9} {
		got, err := ChoosePixelThreshold(maps, fpr)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := ChooseThreshold(flat, fpr)
		if got.Value != float64(float32(want.Value)) || got.NumPixels != 8 {
			t.Errorf("fpr %v: %+v, want %v", fpr, got, want.Value)
		}
	}
	if _, err := ChoosePixelThreshold(nil, 0.1); err == nil {
		t.Error("no maps accepted")
	}
}

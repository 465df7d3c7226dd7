package stats

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

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
	for _, fpr := range []float64{-0.001, 1, 1.5} {
		if _, err := ChoosePixelThreshold(maps, fpr); err == nil {
			t.Errorf("rate %v accepted", fpr)
		}
	}
}

// pixelCase is one case of testdata/pixel_threshold.json, written by
// gen_pixel_fixtures.py with numpy.
type pixelCase struct {
	Name       string      `json:"name"`
	Maps       [][]float64 `json:"maps"`
	Rates      []float64   `json:"rates"`
	Thresholds []float64   `json:"thresholds"`
}

// TestPixelThresholdMatchesNumpy compares the pixel threshold at each rate
// with numpy's quantile at 1 - rate (method "inverted_cdf") of the same
// float32 maps, ties included.
func TestPixelThresholdMatchesNumpy(t *testing.T) {
	raw, err := os.ReadFile("testdata/pixel_threshold.json")
	if err != nil {
		t.Fatal(err)
	}
	var cs []pixelCase
	if err := json.Unmarshal(raw, &cs); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		maps := make([][]float32, len(c.Maps))
		n := 0
		for i, m := range c.Maps {
			for _, v := range m {
				maps[i] = append(maps[i], float32(v))
			}
			n += len(m)
		}
		for j, rate := range c.Rates {
			got, err := ChoosePixelThreshold(maps, rate)
			if err != nil || got.Value != c.Thresholds[j] || got.MaxFPR != rate || got.NumPixels != n {
				t.Errorf("%s, rate %v: %+v %v; numpy %v of %d pixels", c.Name, rate, got, err, c.Thresholds[j], n)
			}
		}
	}
}

// TestFitFilePixelFPR checks that a fit's pixel threshold is chosen at the
// rate asked for, stored and read back, that a stored threshold without
// its rate reads as DefaultPixelFPR, and that a broken one is refused.
func TestFitFilePixelFPR(t *testing.T) {
	in := fakeFit(t, 4, 10, 3)
	in.ValidMaps = [][]float32{{0.1, 0.9, 0.3, 0.3}, {0.5, 0.2, 0.7, 0.3}, {0.4, 0.6, 0.8, 0.0}}
	in.PixelFPR = 0.25 // k = 3 of 12
	f, err := NewFitFile(in, 0.01, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if pt := f.PixelThreshold; pt == nil || pt.Value != float64(float32(0.6)) || pt.MaxFPR != 0.25 || pt.NumPixels != 12 {
		t.Fatalf("pixel threshold %+v", f.PixelThreshold)
	}
	back, err := ParseFit(mutateFit(t, f, func(map[string]any) {}))
	if err != nil || *back.PixelThreshold != *f.PixelThreshold {
		t.Fatalf("read back %+v %v", back, err)
	}
	old, err := ParseFit(mutateFit(t, f, func(m map[string]any) {
		delete(m["pixel_threshold"].(map[string]any), "max_fpr")
	}))
	if err != nil || old.PixelThreshold.MaxFPR != DefaultPixelFPR || old.PixelThreshold.Value != f.PixelThreshold.Value {
		t.Errorf("fit without the pixel rate: %+v %v", old, err)
	}
	zero, err := ParseFit(mutateFit(t, f, func(m map[string]any) { m["pixel_threshold"].(map[string]any)["max_fpr"] = 0 }))
	if err != nil || zero.PixelThreshold.MaxFPR != 0 {
		t.Errorf("fit at pixel rate 0: %+v %v", zero, err)
	}
	for _, bad := range []map[string]any{{"max_fpr": 1}, {"max_fpr": -0.5}, {"num_pixels": 0}} {
		_, err := ParseFit(mutateFit(t, f, func(m map[string]any) {
			for k, v := range bad {
				m["pixel_threshold"].(map[string]any)[k] = v
			}
		}))
		if err == nil || !strings.Contains(err.Error(), "pixel threshold") {
			t.Errorf("pixel threshold with %v: %v", bad, err)
		}
	}
	in.PixelFPR = 1
	if _, err := NewFitFile(in, 0.01, time.Now()); err == nil || !strings.Contains(err.Error(), "pixel false-positive rate 1") {
		t.Errorf("pixel rate 1: %v", err)
	}
}

// TestThresholdSource checks the words for where a labelled threshold
// comes from.
func TestThresholdSource(t *testing.T) {
	if s := (Threshold{From: FromTest}).Source(); s != "the test images" {
		t.Error(s)
	}
	if s := (Threshold{From: "/data/held-out"}).Source(); s != "the labelled images in /data/held-out" {
		t.Error(s)
	}
}

package metrics

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseDefectsConfig(t *testing.T) {
	cfg, err := ParseDefectsConfig([]byte(`[
	  {"defect_name": "missing_box", "pixel_value": 255, "saturation_threshold": 1.0, "relative_saturation": true},
	  {"defect_name": "extra_item", "pixel_value": 254, "saturation_threshold": 800, "relative_saturation": false, "note": "ignored"}
	]`), "breakfast_box/defects_config.json")
	if err != nil {
		t.Fatal(err)
	}
	d, ok := cfg.Lookup(254)
	if !ok || d.Name != "extra_item" || d.Relative || d.Saturation != 800 {
		t.Errorf("Lookup(254) = %+v, %v", d, ok)
	}
	if _, ok := cfg.Lookup(3); ok {
		t.Error("Lookup(3) found an entry")
	}
	if got := d.SaturationArea(500); got != 500 {
		t.Errorf("absolute saturation capped at the area: %d", got)
	}
	if got := d.SaturationArea(1200); got != 800 {
		t.Errorf("absolute saturation: %d", got)
	}
	half := DefectConfig{Relative: true, Saturation: 0.5}
	if got := half.SaturationArea(7); got != 3 {
		t.Errorf("relative saturation rounds down: %d", got)
	}
}

func TestParseDefectsConfigErrors(t *testing.T) {
	entry := func(fields string) string { return "[{" + fields + "}]" }
	const ok = `"defect_name": "a", "pixel_value": 255, "saturation_threshold": 0.5, "relative_saturation": true`
	for _, tc := range []struct{ name, json, want string }{
		{"not JSON", `[{"defect_name": `, "not a JSON list"},
		{"object", `{"defect_name": "a"}`, "not a JSON list"},
		{"trailing", "[] []", "unexpected data"},
		{"empty", `[]`, "no defect entries"},
		{"no name", entry(`"pixel_value": 255, "saturation_threshold": 1, "relative_saturation": false`), "missing defect_name"},
		{"no value", entry(`"defect_name": "a", "saturation_threshold": 1, "relative_saturation": false`), "missing pixel_value"},
		{"no threshold", entry(`"defect_name": "a", "pixel_value": 3, "relative_saturation": false`), "missing saturation_threshold"},
		{"no relative", entry(`"defect_name": "a", "pixel_value": 3, "saturation_threshold": 1`), "missing relative_saturation"},
		{"value 0", entry(`"defect_name": "a", "pixel_value": 0, "saturation_threshold": 1, "relative_saturation": false`), "1..255"},
		{"value 256", entry(`"defect_name": "a", "pixel_value": 256, "saturation_threshold": 1, "relative_saturation": false`), "1..255"},
		{"value 2.5", entry(`"defect_name": "a", "pixel_value": 2.5, "saturation_threshold": 1, "relative_saturation": false`), "1..255"},
		{"value string", entry(`"defect_name": "a", "pixel_value": "255", "saturation_threshold": 1, "relative_saturation": false`), "1..255"},
		{"relative 0", entry(`"defect_name": "a", "pixel_value": 3, "saturation_threshold": 0, "relative_saturation": true`), "not a number in (0, 1]"},
		{"relative 1.5", entry(`"defect_name": "a", "pixel_value": 3, "saturation_threshold": 1.5, "relative_saturation": true`), "not a number in (0, 1]"},
		{"absolute 2.5", entry(`"defect_name": "a", "pixel_value": 3, "saturation_threshold": 2.5, "relative_saturation": false`), "whole number of pixels"},
		{"absolute 0", entry(`"defect_name": "a", "pixel_value": 3, "saturation_threshold": 0, "relative_saturation": false`), "whole number of pixels"},
		{"duplicate", "[{" + ok + "}, {" + strings.Replace(ok, `"a"`, `"b"`, 1) + "}]", `already used by "a"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseDefectsConfig([]byte(tc.json), "cat/defects_config.json")
			var ce *DefectsConfigError
			if !errors.As(err, &ce) || ce.File != "cat/defects_config.json" {
				t.Fatalf("error %v is not a *DefectsConfigError naming the file", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || !strings.Contains(msg, "cat/defects_config.json") {
				t.Errorf("error %q does not say %q and name the file", msg, tc.want)
			}
		})
	}
}

func TestReadDefectsConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "defects_config.json")
	if _, err := ReadDefectsConfig(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if err := os.WriteFile(path, []byte(`[{"defect_name": "a", "pixel_value": 9}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadDefectsConfig(path)
	var ce *DefectsConfigError
	if !errors.As(err, &ce) || ce.File != path {
		t.Errorf("malformed file: %v", err)
	}
}

func TestSPROAddErrors(t *testing.T) {
	cfg, err := ParseDefectsConfig([]byte(`[
	  {"defect_name": "a", "pixel_value": 255, "saturation_threshold": 0.2, "relative_saturation": true},
	  {"defect_name": "b", "pixel_value": 254, "saturation_threshold": 3, "relative_saturation": false}
	]`), "cfg")
	if err != nil {
		t.Fatal(err)
	}
	acc := NewSPROAccumulator(cfg)
	m := make([]float32, 6)
	for _, tc := range []struct {
		name string
		ch   Mask
		want string
	}{
		{"empty channel", Mask{0, 0, 0, 0, 0, 0}, "marks no pixel"},
		{"two values", Mask{255, 254, 0, 0, 0, 0}, "pixel values 255 and 254"},
		{"unknown value", Mask{3, 0, 0, 0, 0, 0}, "does not list"},
		{"zero saturation", Mask{255, 255, 0, 0, 0, 0}, "saturation area of 0"},
	} {
		if err := acc.Add(m, 3, 2, Mask{254, 0, 0, 0, 0, 0}, tc.ch); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "channel 1") {
			t.Errorf("%s: error %v, want one about channel 1 saying %q", tc.name, err, tc.want)
		}
	}
	var se *SizeError
	if err := acc.Add(m, 3, 2, make(Mask, 5)); !errors.As(err, &se) {
		t.Errorf("short channel: %v", err)
	}
	if _, err := acc.Result(); !errors.Is(err, ErrNoAnomalousPixel) {
		t.Errorf("nothing added: %v", err)
	}
	// Good images only: no channel, no sPRO.
	if err := acc.Add(m, 3, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := acc.Result(); !errors.Is(err, ErrNoAnomalousPixel) {
		t.Errorf("good images only: %v", err)
	}
}

// TestSPROSaturates checks the curve by hand on one image: a channel of 4
// pixels with an absolute saturation of 2 is fully detected once its two
// highest-scoring pixels are positive.
func TestSPROSaturates(t *testing.T) {
	cfg, err := ParseDefectsConfig([]byte(`[{"defect_name": "b", "pixel_value": 9, "saturation_threshold": 2, "relative_saturation": false}]`), "cfg")
	if err != nil {
		t.Fatal(err)
	}
	acc := NewSPROAccumulator(cfg)
	// Channel pixels score 8, 7, 2, 1; the normal pixels 6, 5, 4, 3.
	scores := []float32{8, 7, 2, 1, 6, 5, 4, 3}
	ch := Mask{9, 9, 9, 9, 0, 0, 0, 0}
	if err := acc.Add(scores, 4, 2, ch); err != nil {
		t.Fatal(err)
	}
	r, err := acc.Result()
	if err != nil {
		t.Fatal(err)
	}
	// sPRO reaches 1 at FPR 0, so the curve is 1 from FPR 0 on.
	for _, a := range r.AUSPRO {
		if a.AUSPRO != 1 {
			t.Errorf("AU-sPRO@%v = %v, want 1", a.Limit, a.AUSPRO)
		}
	}
	// Pixel AUROC: positives 8, 7 beat all four negatives, 2 and 1 none.
	if r.PixelAUROC != 0.5 {
		t.Errorf("pixel AUROC %v, want 0.5", r.PixelAUROC)
	}
}

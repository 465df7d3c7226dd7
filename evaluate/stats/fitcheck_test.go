package stats

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/puad-go/puad/internal/fuzzguard"
)

// mutateFit returns f as JSON after change edited its decoded fields.
func mutateFit(t testing.TB, f *FitFile, change func(map[string]any)) []byte {
	t.Helper()
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	change(m)
	if data, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	return data
}

// craftedFit is a broken fit file and the words its error must contain.
type craftedFit struct {
	name, want string
	data       []byte
}

// craftedFits generates the broken fit files LoadFit must refuse, from a
// valid fit of p-dimensional features.
func craftedFits(t testing.TB) (valid []byte, cases []craftedFit) {
	in := fakeFit(t, 4, 12, 5)
	f, err := NewFitFile(in, 0.2, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	valid = mutateFit(t, f, func(map[string]any) {})
	set := func(key string, v any) func(map[string]any) { return func(m map[string]any) { m[key] = v } }
	edit := func(name, want string, change func(map[string]any)) {
		cases = append(cases, craftedFit{name, want, mutateFit(t, f, change)})
	}
	raw := func(name, want, data string) { cases = append(cases, craftedFit{name, want, []byte(data)}) }
	edit("old format", "format 1", set("format", 1))
	edit("no threshold", "no threshold", func(m map[string]any) { delete(m, "threshold") })
	edit("no model files", "model files", func(m map[string]any) { delete(m, "model_files") })
	edit("no extractor", "feature extractor", set("feature_extractor", ""))
	edit("mean against covariance", "10 values but an inverse covariance of 4 rows", set("feature_mean", make([]float64, 10)))
	edit("short covariance row", "row 2 has 1 values", func(m map[string]any) {
		m["inverse_covariance"].([]any)[2] = []float64{1}
	})
	edit("zero std", "standard deviation", func(m map[string]any) {
		m["zscore"].(map[string]any)["mahalanobis"].(map[string]any)["std"] = 0
	})
	edit("negative std", "negative", func(m map[string]any) {
		m["zscore"].(map[string]any)["efficient_ad"].(map[string]any)["std"] = -1
	})
	edit("no image size", "image size 0", set("img_size", 0))
	raw("infinite mean", "not a PUAD fit file", strings.Replace(string(valid), `"feature_mean":[`, `"feature_mean":[1e999,`, 1))
	raw("truncated", "not a PUAD fit file", string(valid[:len(valid)/2]))
	raw("not JSON", "not a PUAD fit file", "\x89PNG\r\n")
	raw("null", "format 0", "null")
	return valid, cases
}

// TestLoadFitRefusesBrokenFiles loads each crafted fit file: every one is
// an error naming what is wrong, none a panic.
func TestLoadFitRefusesBrokenFiles(t *testing.T) {
	valid, cases := craftedFits(t)
	dir := t.TempDir()
	path := filepath.Join(dir, FitFileName)
	if err := os.WriteFile(path, valid, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFit(path, "s", "student"); err != nil {
		t.Fatalf("valid fit: %v", err)
	}
	for _, c := range cases {
		if err := os.WriteFile(path, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadFit(path, "", ""); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
	if _, err := LoadFit(dir, "", ""); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a folder as fit file: %v", err)
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, bytes.Repeat([]byte(" "), MaxFitFileSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFit(big, "", ""); err == nil || !strings.Contains(err.Error(), "more than a fit file's") {
		t.Errorf("oversized fit file: %v", err)
	}
}

// TestCheckModelFiles: a fit refuses model files other than those it was
// made with.
func TestCheckModelFiles(t *testing.T) {
	f := &FitFile{ModelFiles: map[string]string{"teacher/teacher.pt": "aa", "d/c/student.pt": "bb"}}
	if err := f.CheckModelFiles(map[string]string{"teacher/teacher.pt": "aa", "d/c/student.pt": "bb"}); err != nil {
		t.Errorf("same files: %v", err)
	}
	var stale *StaleError
	for _, have := range []map[string]string{
		{"teacher/teacher.pt": "aa", "d/c/student.pt": "cc"},
		{"teacher/teacher.pt": "aa"},
		{"teacher/teacher.pt": "aa", "d/c/student.pt": "bb", "d/c/quantile.pt": "dd"},
		nil,
	} {
		if err := f.CheckModelFiles(have); !errors.As(err, &stale) {
			t.Errorf("files %v: %v, want a *StaleError", have, err)
		}
	}
}

// FuzzParseFit: no input makes ParseFit panic, and what it accepts can be
// scored without a panic, within fuzzguard's limits of time and memory.
func FuzzParseFit(f *testing.F) {
	valid, cases := craftedFits(f)
	f.Add(valid)
	for _, c := range cases {
		f.Add(c.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzguard.Check(t, len(data), func() {
			fit, err := ParseFit(data)
			if err != nil {
				return
			}
			g := fit.Gaussian()
			fit.Score(g, 0.5, make([]float32, len(fit.Mean)))
		})
	})
}

// TestVerdict: a score that is not a number is never normal.
func TestVerdict(t *testing.T) {
	f := &FitFile{Threshold: Threshold{Value: 1}}
	for _, c := range []struct {
		puad float64
		want Verdict
	}{{0.5, VerdictNormal}, {1, VerdictNormal}, {1.5, VerdictAnomalous}, {math.NaN(), VerdictInvalid}, {math.Inf(1), VerdictInvalid}, {math.Inf(-1), VerdictInvalid}} {
		if got := f.Verdict(c.puad); got != c.want {
			t.Errorf("Verdict(%v) = %v, want %v", c.puad, got, c.want)
		}
	}
}

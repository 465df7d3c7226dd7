package evaluate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/models"
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

// fakeFit returns a PUADModel fitted on random features of dimension p and
// a dataset whose validation list matches its validation scores.
func fakeFit(t *testing.T, p, nTrain, nValid int) (*PUADModel, *datasets.Dataset) {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	feats := make([][]float32, nTrain)
	for i := range feats {
		feats[i] = make([]float32, p)
		for j := range feats[i] {
			feats[i][j] = float32(r.NormFloat64())
		}
	}
	g, err := FitGaussian(feats)
	if err != nil {
		t.Fatal(err)
	}
	ds := &datasets.Dataset{Dir: "/data/mvtec_loco_anomaly_detection/pushpins", DatasetName: "mvtec_loco_anomaly_detection", Category: "pushpins"}
	var eff, maha []float64
	for i := range nValid {
		ds.Valid = append(ds.Valid, filepath.Join(ds.Dir, "validation", "good", fmt.Sprintf("%03d.png", i)))
		v := make([]float32, p)
		for j := range v {
			v[j] = float32(r.NormFloat64())
		}
		eff = append(eff, 0.1+0.01*r.NormFloat64())
		maha = append(maha, g.Mahalanobis(v))
	}
	fu, err := FitFusion(eff, maha)
	if err != nil {
		t.Fatal(err)
	}
	m := &models.EfficientAD{Size: models.Small, ImgSize: 256}
	return &PUADModel{Scorer: &Scorer{Model: m, Extractor: StudentExtractor}, Gaussian: g, Fusion: fu,
		ValidEfficientAD: eff, ValidMahalanobis: maha}, ds
}

func TestFitFileRoundTrip(t *testing.T) {
	pm, ds := fakeFit(t, 16, 40, 7)
	created := time.Date(2024, 10, 27, 12, 0, 0, 0, time.UTC)
	f, err := NewFitFile(pm, ds, 0.2, created)
	if err != nil {
		t.Fatal(err)
	}
	if f.Size != "s" || f.Extractor != "student" || f.ImgSize != 256 || f.NumTrain != 40 || f.NumValidation != 7 || len(f.CovInv) != 16 {
		t.Fatalf("fit file %+v", f)
	}
	if f.Validation[2].Path != "validation/good/002.png" || f.Threshold.Allowed != 1 {
		t.Errorf("validation %+v threshold %+v", f.Validation[2], f.Threshold)
	}
	path := filepath.Join(t.TempDir(), "cat", FitFileName)
	if err := SaveFit(path, f); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	back, err := LoadFit(path, "s", "student")
	if err != nil {
		t.Fatal(err)
	}
	if !back.Created.Equal(created) || back.Threshold != f.Threshold || back.Fusion != f.Fusion {
		t.Errorf("loaded %+v", back)
	}
	// Scores from the stored fit equal those of the fitted model, bit for bit.
	g := back.Gaussian()
	r := rand.New(rand.NewPCG(3, 4))
	for range 5 {
		v := make([]float32, 16)
		for j := range v {
			v[j] = float32(2 * r.NormFloat64())
		}
		eff := 0.1 + 0.05*r.NormFloat64()
		maha, puad, anomalous := back.Score(g, eff, v)
		if maha != pm.Gaussian.Mahalanobis(v) || puad != pm.Fusion.Score(eff, pm.Gaussian.Mahalanobis(v)) || anomalous != (puad > f.Threshold.Value) {
			t.Errorf("stored fit scores %v %v, fitted %v %v", maha, puad, pm.Gaussian.Mahalanobis(v), pm.Fusion.Score(eff, pm.Gaussian.Mahalanobis(v)))
		}
	}

	for _, c := range []struct{ size, extractor, want string }{
		{"m", "student", "belongs to size s, not m"},
		{"s", "teacher", "made with the student feature extractor, not teacher"},
	} {
		if _, err := LoadFit(path, c.size, c.extractor); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("LoadFit(%s, %s): %v, want %q", c.size, c.extractor, err, c.want)
		}
	}
	if _, err := LoadFit(path, "", ""); err != nil {
		t.Errorf("LoadFit accepting any size: %v", err)
	}
	if _, err := LoadFit(filepath.Join(t.TempDir(), FitFileName), "m", ""); err == nil || !strings.Contains(err.Error(), "puad fit DATASET MODELS --size m") {
		t.Errorf("missing file: %v", err)
	}
	if err := os.WriteFile(path, []byte(`{"format": 1, "feature_mean": [1, 2], "inverse_covariance": [[1]]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFit(path, "", ""); err == nil || !strings.Contains(err.Error(), "2 values but an inverse covariance of 1 rows") {
		t.Errorf("inconsistent file: %v", err)
	}
}

func TestNewFitFileRejectsDegenerateValidation(t *testing.T) {
	pm, ds := fakeFit(t, 4, 10, 3)
	for i := range pm.ValidEfficientAD {
		pm.ValidEfficientAD[i] = 0.5
	}
	pm.Fusion, _ = FitFusion(pm.ValidEfficientAD, pm.ValidMahalanobis)
	if _, err := NewFitFile(pm, ds, 0.01, time.Now()); err == nil {
		t.Error("no error for a zero standard deviation")
	}
}

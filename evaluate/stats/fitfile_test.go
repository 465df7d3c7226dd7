package stats

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeFit returns the fit input of a PUAD fitted on random features of
// dimension p, with nValid validation images.
func fakeFit(t testing.TB, p, nTrain, nValid int) FitInput {
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
	in := FitInput{DatasetName: "mvtec_loco_anomaly_detection", Category: "pushpins", Size: "s", Extractor: "student",
		ImgSize: 256, Gaussian: g, ModelFiles: map[string]string{"teacher/teacher.pt": "00", "mvtec_loco_anomaly_detection/pushpins/student.pt": "11"}}
	for i := range nValid {
		in.ValidPaths = append(in.ValidPaths, fmt.Sprintf("validation/good/%03d.png", i))
		v := make([]float32, p)
		for j := range v {
			v[j] = float32(r.NormFloat64())
		}
		in.ValidEfficientAD = append(in.ValidEfficientAD, 0.1+0.01*r.NormFloat64())
		in.ValidMahalanobis = append(in.ValidMahalanobis, g.Mahalanobis(v))
	}
	if in.Fusion, err = FitFusion(in.ValidEfficientAD, in.ValidMahalanobis); err != nil {
		t.Fatal(err)
	}
	return in
}

func TestFitFileRoundTrip(t *testing.T) {
	in := fakeFit(t, 16, 40, 7)
	created := time.Date(2024, 10, 27, 12, 0, 0, 0, time.UTC)
	f, err := NewFitFile(in, 0.2, created)
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
		if maha != in.Gaussian.Mahalanobis(v) || puad != in.Fusion.Score(eff, in.Gaussian.Mahalanobis(v)) || anomalous != (puad > f.Threshold.Value) {
			t.Errorf("stored fit scores %v %v, fitted %v %v", maha, puad, in.Gaussian.Mahalanobis(v), in.Fusion.Score(eff, in.Gaussian.Mahalanobis(v)))
		}
	}

	for _, c := range []struct {
		size, extractor string
		field           FitField
		want            string
	}{
		{"m", "student", FieldSize, "belongs to size s, not m"},
		{"s", "teacher", FieldExtractor, "made with the student feature extractor, not teacher"},
	} {
		_, err := LoadFit(path, c.size, c.extractor)
		var mis *MismatchError
		if !errors.As(err, &mis) || mis.Field != c.field || !strings.Contains(err.Error(), c.want) {
			t.Errorf("LoadFit(%s, %s): %v, want a %s mismatch %q", c.size, c.extractor, err, c.field, c.want)
		}
	}
	if _, err := LoadFit(path, "", ""); err != nil {
		t.Errorf("LoadFit accepting any size: %v", err)
	}
	missing := filepath.Join(t.TempDir(), FitFileName)
	if _, err := LoadFit(missing, "m", ""); !errors.Is(err, ErrNoFit) || !errors.Is(err, fs.ErrNotExist) || err.Error() != "no PUAD fit at "+missing {
		t.Errorf("missing file: %v", err)
	}
	if err := os.WriteFile(path, []byte(`{"format": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var fe *FormatError
	if _, err := LoadFit(path, "", ""); !errors.As(err, &fe) || fe.Have != 1 || fe.Want != FitFormat {
		t.Errorf("file of another format: %v", err)
	}
	if err := os.WriteFile(path, mutateFit(t, f, func(m map[string]any) {
		m["feature_mean"], m["inverse_covariance"] = []float64{1, 2}, [][]float64{{1}}
	}), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFit(path, "", ""); err == nil || !strings.Contains(err.Error(), "2 values but an inverse covariance of 1 rows") {
		t.Errorf("inconsistent file: %v", err)
	}
}

func TestNewFitFileErrors(t *testing.T) {
	in := fakeFit(t, 4, 10, 3)
	for i := range in.ValidEfficientAD {
		in.ValidEfficientAD[i] = 0.5
	}
	in.Fusion, _ = FitFusion(in.ValidEfficientAD, in.ValidMahalanobis)
	if _, err := NewFitFile(in, 0.01, time.Now()); !errors.Is(err, ErrZeroStd) {
		t.Errorf("zero standard deviation: %v", err)
	}
	in = fakeFit(t, 4, 10, 3)
	in.ValidPaths = in.ValidPaths[1:]
	if _, err := NewFitFile(in, 0.01, time.Now()); err == nil || !strings.Contains(err.Error(), "2 validation images but 3/3 validation scores") {
		t.Errorf("scores of other images: %v", err)
	}
}

package evaluate

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/datasets/refsplit"
	"github.com/puad-go/puad/internal/pyref"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

type e2eExpected struct {
	DatasetName string `json:"dataset_name"`
	Category    string `json:"category"`
	ImgSize     int64  `json:"img_size"`
	Train       []string
	Valid       []string
	Validation  struct {
		EffMean  float64 `json:"eff_mean"`
		EffStd   float64 `json:"eff_std"`
		MahaMean float64 `json:"maha_mean"`
		MahaStd  float64 `json:"maha_std"`
	}
	Test []struct {
		Path        string
		Class       string
		EfficientAD float64 `json:"efficient_ad"`
		Mahalanobis float64
		PUAD        float64 `json:"puad"`
	}
	EfficientADAUROC float64            `json:"efficient_ad_auroc"`
	PUADAUROC        float64            `json:"puad_auroc"`
	PerClass         map[string]float64 `json:"puad_auroc_per_class"`
}

// Agreement with the reference's float32 Ledoit-Wolf fit (see endToEnd).
const (
	maxMahalanobisRel = 3e-5
	maxPUADDiff       = 5e-5
)

// TestEndToEndAgainstPyTorch builds a small category and random weights with
// PyTorch, scores it with the reference's procedure in Python, and checks
// that Evaluate gives the same numbers for every image.
func TestEndToEndAgainstPyTorch(t *testing.T) {
	cases := []struct {
		name      string
		extractor Extractor
		args      []string
		batch     bool
	}{
		// The split of train/good (no validation folder), student features.
		{"split-student", StudentExtractor, []string{"--extractor", "student"}, true},
		// A validation folder, normalised teacher features.
		{"validation-teacher", TeacherExtractor, []string{"--extractor", "teacher", "--validation-dir", "--n-train", "6", "--seed", "3"}, false},
		// 56 training images split into 48 + 8 validation, 22 test images,
		// at 128 pixels to keep the run short.
		{"large-split-student", StudentExtractor, []string{"--extractor", "student", "--n-train", "56", "--n-test", "8", "--img-size", "128", "--seed", "5"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { endToEnd(t, c.extractor, c.args, c.batch) })
	}
}

func endToEnd(t *testing.T, extractor Extractor, args []string, checkBatch bool) {
	dir := t.TempDir()
	pyref.Run(t, "testdata/e2e_reference.py", append([]string{dir}, args...)...)
	var want e2eExpected
	raw, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	catDir := filepath.Join(dir, "data", want.DatasetName, want.Category)
	ds, err := datasets.Open(catDir, refsplit.Perm)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range ds.Valid {
		if rel, _ := filepath.Rel(catDir, p); rel != want.Valid[i] {
			t.Errorf("validation image %d: %s, want %s", i, rel, want.Valid[i])
		}
	}
	m, err := models.LoadEfficientAD(filepath.Join(dir, "models"), models.Small, want.DatasetName, want.Category, want.ImgSize, tb.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	res, err := Evaluate(context.Background(), ds, m, Options{Extractor: extractor, BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Test) != len(want.Test) {
		t.Fatalf("%d test images, want %d", len(res.Test), len(want.Test))
	}
	var maxEff, maxMaha, maxPUAD float64
	for i, w := range want.Test {
		g := res.Test[i]
		if g.Path != w.Path || g.Class != w.Class {
			t.Fatalf("test image %d: %s (%s), want %s (%s)", i, g.Path, g.Class, w.Path, w.Class)
		}
		maxEff = math.Max(maxEff, relErr(g.EfficientAD, w.EfficientAD))
		maxMaha = math.Max(maxMaha, relErr(g.Mahalanobis, w.Mahalanobis))
		maxPUAD = math.Max(maxPUAD, math.Abs(g.PUAD-w.PUAD)/math.Max(1, math.Abs(w.PUAD)))
	}
	t.Logf("max relative error: EfficientAD score %.2e, Mahalanobis %.2e, PUAD %.2e", maxEff, maxMaha, maxPUAD)
	// EfficientAD scores run the same libtorch kernels in the same order at
	// batch 1: they must be identical. Mahalanobis distances differ because
	// the reference fits Ledoit-Wolf and the pseudo-inverse in float32 and
	// this code in float64: measured up to 8.8e-6 relative, PUAD scores up to
	// 1.6e-5 (relative to max(1, |score|)); the bounds are those times ~3.
	if maxEff != 0 {
		t.Errorf("EfficientAD scores differ from the PyTorch reference (max relative %.2e), want identical", maxEff)
	}
	if maxMaha > maxMahalanobisRel || maxPUAD > maxPUADDiff {
		t.Errorf("Mahalanobis (%.2e) or PUAD (%.2e) beyond %.0e / %.0e", maxMaha, maxPUAD, maxMahalanobisRel, maxPUADDiff)
	}
	// The EfficientAD validation statistics are float32 numpy arithmetic on
	// identical scores: identical. The Mahalanobis ones inherit the
	// distances' difference.
	v := res.Validation
	for _, c := range []struct {
		name      string
		got, want float64
		tol       float64
	}{
		{"eff mean", v.EfficientAD.Mean, want.Validation.EffMean, 0},
		{"eff std", v.EfficientAD.Std, want.Validation.EffStd, 0},
		{"maha mean", v.Mahalanobis.Mean, want.Validation.MahaMean, maxMahalanobisRel},
		{"maha std", v.Mahalanobis.Std, want.Validation.MahaStd, maxMahalanobisRel},
	} {
		if e := relErr(c.got, c.want); e > c.tol {
			t.Errorf("validation %s = %.9g, want %.9g (relative difference %.2e > %.0e)", c.name, c.got, c.want, e, c.tol)
		}
	}
	if res.EfficientADAUROC != want.EfficientADAUROC || res.PUADAUROC != want.PUADAUROC {
		t.Errorf("AUROC EfficientAD %v PUAD %v, want %v %v", res.EfficientADAUROC, res.PUADAUROC, want.EfficientADAUROC, want.PUADAUROC)
	}
	for _, pc := range res.PUADPerClass {
		if w, ok := want.PerClass[pc.Class]; !ok || w != pc.AUROC {
			t.Errorf("PUAD AUROC for %s = %v, want %v", pc.Class, pc.AUROC, w)
		}
	}

	if !checkBatch {
		return
	}
	// Batches of several images: libtorch's convolution may block a batch
	// differently from a single image, so scores may move in the last bits.
	paths := make([]string, 0, len(ds.Test))
	for _, it := range ds.Test {
		paths = append(paths, it.Path)
	}
	sc := &Scorer{Model: m, Extractor: extractor}
	batched, err := RunImages(context.Background(), sc, paths, Need{Score: true}, "test", Options{BatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	var maxBatch float64
	for i, o := range batched {
		maxBatch = math.Max(maxBatch, relErr(o.Score, res.Test[i].EfficientAD))
	}
	t.Logf("batch 4 vs batch 1: max relative difference of EfficientAD scores %.2e", maxBatch)
	if maxBatch > 1e-6 {
		t.Errorf("batched scores differ from single-image scores by %.2e", maxBatch)
	}
}

// relErr is |got − want| relative to |want| (absolute when want is 0).
func relErr(got, want float64) float64 {
	if want == 0 {
		return math.Abs(got)
	}
	return math.Abs(got-want) / math.Abs(want)
}

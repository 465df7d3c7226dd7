package evaluate

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/evaluate/stats"
	"github.com/puad-go/puad/models"
)

// FitFile describes pm, fitted by Fit on ds, as the fit file stats.SaveFit
// stores. The threshold allows maxFPR false positives on the validation
// images (stats.ChooseThreshold).
func (pm *PUADModel) FitFile(ds *datasets.Dataset, maxFPR float64, created time.Time) (*stats.FitFile, error) {
	paths := make([]string, len(ds.Valid))
	for i, path := range ds.Valid {
		rel, err := filepath.Rel(ds.Dir, path)
		if err != nil {
			rel = path
		}
		paths[i] = filepath.ToSlash(rel)
	}
	f, err := stats.NewFitFile(stats.FitInput{
		DatasetName: ds.DatasetName, Category: ds.Category,
		Size: string(pm.Scorer.Model.Size), Extractor: string(pm.Scorer.Extractor), ImgSize: int(pm.Scorer.Model.ImgSize),
		ModelFiles: pm.Scorer.Model.Digests,
		Gaussian:   pm.Gaussian, Fusion: pm.Fusion,
		Depth16: depth16Name(ds.Decode.Grey16), TeacherFile: pm.Scorer.Model.TeacherFile,
		ValidPaths: paths, ValidEfficientAD: pm.ValidEfficientAD, ValidMahalanobis: pm.ValidMahalanobis,
		ValidMaps: pm.ValidMaps,
	}, maxFPR, created)
	if err != nil {
		return nil, fmt.Errorf("fit of %s: %w", ds.Dir, err)
	}
	return f, nil
}

// LabelledFitFile is the fit file of res.Fitted (Evaluate's fit of ds)
// with the threshold chosen on the labelled test images of res by obj
// (stats.FitFile.ChooseLabelled). With only normal test images an
// objective that needs anomalies is a *stats.NoAnomaliesError.
func (res *Result) LabelledFitFile(ds *datasets.Dataset, obj stats.Objective, created time.Time) (*stats.FitFile, error) {
	f, err := res.Fitted.FitFile(ds, stats.DefaultMaxFPR, created)
	if err != nil {
		return nil, err
	}
	scores := make([]float64, len(res.Test))
	anomalous := make([]bool, len(res.Test))
	for i, t := range res.Test {
		scores[i], anomalous[i] = t.PUAD, t.Anomalous
	}
	if err := f.ChooseLabelled(scores, anomalous, obj, "test"); err != nil {
		return nil, fmt.Errorf("threshold on the test images of %s: %w", ds.Dir, err)
	}
	return f, nil
}

// AddOperatingPoints sets res.OperatingPoints: the operating points of the
// fitted threshold (when fitted is not nil) and of the F1-optimal one on
// the test images' PUAD scores, overall and per anomaly class. Without
// anomalous test images there is no F1-optimal threshold.
func (res *Result) AddOperatingPoints(fitted *float64) {
	scores := make([]float64, len(res.Test))
	classes := make([]string, len(res.Test))
	anomalous := make([]bool, len(res.Test))
	for i, t := range res.Test {
		scores[i], classes[i], anomalous[i] = t.PUAD, t.Class, t.Anomalous
	}
	res.OperatingPoints = nil
	if fitted != nil {
		res.OperatingPoints = append(res.OperatingPoints, stats.OperatingByClass("fitted", scores, classes, datasets.NormalClass, *fitted))
	}
	if op, err := stats.ChooseLabelledThreshold(scores, anomalous, stats.Objective{Kind: stats.ObjectiveF1}); err == nil {
		res.OperatingPoints = append(res.OperatingPoints, stats.OperatingByClass("f1_optimal", scores, classes, datasets.NormalClass, op.Threshold))
	}
}

// depth16Name is the fit file's Depth16 of a dataset decoded with mode: empty
// for the default, so that fits of MVTec categories keep their layout.
func depth16Name(mode datasets.Grey16Mode) string {
	if mode == datasets.Grey16Clip {
		return ""
	}
	return mode.String()
}

// CheckFit checks that a loaded fit file can score images with m, the
// model of its category: a known feature extractor, the model's image size
// and feature dimension, and the very model files it was made with (a
// *stats.StaleError when one changed since).
func CheckFit(f *stats.FitFile, m *models.EfficientAD) error {
	if _, err := ParseExtractor(f.Extractor); err != nil {
		return fmt.Errorf("PUAD fit: %w", err)
	}
	if int64(f.ImgSize) != m.ImgSize {
		return fmt.Errorf("PUAD fit was made at image size %d, the model is loaded at %d", f.ImgSize, m.ImgSize)
	}
	if len(f.Mean) != models.TeacherChannels {
		return fmt.Errorf("PUAD fit has %d-dimensional features, the model gives %d", len(f.Mean), models.TeacherChannels)
	}
	return f.CheckModelFiles(m.Digests)
}

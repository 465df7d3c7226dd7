package evaluate

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/evaluate/stats"
	"github.com/puad-go/puad/models"
)

// Rates are the false-positive rates a fit's thresholds allow on the
// validation images (all normal): MaxFPR of their PUAD scores
// (stats.ChooseThreshold) and PixelFPR of their anomaly maps' pixels
// (stats.ChoosePixelThreshold).
type Rates struct {
	MaxFPR, PixelFPR float64
}

// FitFile describes pm, fitted by Fit on ds, as the fit file stats.SaveFit
// stores. The threshold allows maxFPR false positives on the validation
// images (stats.ChooseThreshold), the pixel threshold
// stats.DefaultPixelFPR of their pixels.
func (pm *PUADModel) FitFile(ds *datasets.Dataset, maxFPR float64, created time.Time) (*stats.FitFile, error) {
	return pm.FitFileAt(ds, Rates{MaxFPR: maxFPR, PixelFPR: stats.DefaultPixelFPR}, created)
}

// FitFileAt is FitFile with the thresholds chosen at rates.
func (pm *PUADModel) FitFileAt(ds *datasets.Dataset, rates Rates, created time.Time) (*stats.FitFile, error) {
	paths := make([]string, len(ds.Valid))
	for i, path := range ds.Valid {
		paths[i] = relPath(ds.Dir, path)
	}
	f, err := stats.NewFitFile(stats.FitInput{
		DatasetName: ds.DatasetName, Category: ds.Category,
		Size: string(pm.Scorer.Model.Size), Extractor: string(pm.Scorer.Extractor), ImgSize: int(pm.Scorer.Model.ImgSize),
		ModelFiles: pm.Scorer.Model.Digests,
		Gaussian:   pm.Gaussian, Fusion: pm.Fusion,
		Depth16: depth16Name(ds.Decode.Grey16), TeacherFile: pm.Scorer.Model.TeacherFile,
		ValidPaths: paths, ValidEfficientAD: pm.ValidEfficientAD, ValidMahalanobis: pm.ValidMahalanobis,
		ValidMaps: pm.ValidMaps, PixelFPR: rates.PixelFPR,
	}, rates.MaxFPR, created)
	if err != nil {
		return nil, fmt.Errorf("fit of %s: %w", ds.Dir, err)
	}
	return f, nil
}

// relPath is path relative to base with forward slashes, or path itself
// when it has no relative form.
func relPath(base, path string) string {
	rel, err := filepath.Rel(base, path)
	if err != nil {
		rel = path
	}
	return filepath.ToSlash(rel)
}

// LabelledFitFile is the fit file of pm (Fit's fit of ds, with the pixel
// threshold at pixelFPR) whose threshold is chosen by obj on the labelled
// scores of the images named by from (stats.FitFile.ChooseLabelled;
// stats.FromTest for ds's test images, scored by ScoreLabelled). With only
// normal images an objective that needs anomalies is a
// *stats.NoAnomaliesError.
func (pm *PUADModel) LabelledFitFile(ds *datasets.Dataset, scores []ImageScore, from string, obj stats.Objective, pixelFPR float64, created time.Time) (*stats.FitFile, error) {
	f, err := pm.FitFileAt(ds, Rates{MaxFPR: stats.DefaultMaxFPR, PixelFPR: pixelFPR}, created)
	if err != nil {
		return nil, err
	}
	puad := make([]float64, len(scores))
	anomalous := make([]bool, len(scores))
	for i, t := range scores {
		puad[i], anomalous[i] = t.PUAD, t.Anomalous
	}
	if err := f.ChooseLabelled(puad, anomalous, obj, from); err != nil {
		return nil, fmt.Errorf("threshold on %s: %w", f.Threshold.Source(), err)
	}
	return f, nil
}

// TestFitFile is LabelledFitFile with the threshold chosen on ds's test
// images, scored as Evaluate scores them.
func (pm *PUADModel) TestFitFile(ctx context.Context, ds *datasets.Dataset, obj stats.Objective, pixelFPR float64, opts Options, created time.Time) (*stats.FitFile, error) {
	opts.Decode = ds.Decode
	scores, err := pm.ScoreLabelled(ctx, ds.Test, ds.Dir, "test", opts)
	if err != nil {
		return nil, err
	}
	return pm.LabelledFitFile(ds, scores, stats.FromTest, obj, pixelFPR, created)
}

// FolderFitFile is LabelledFitFile with the threshold chosen on the
// labelled folder dir: good/ and one or more defect folders, the layout of
// a category's test/ (datasets.ImageFolder), its images decoded as ds's
// and scored as Evaluate scores test images. The fit records dir's
// absolute path as where the threshold comes from.
func (pm *PUADModel) FolderFitFile(ctx context.Context, ds *datasets.Dataset, dir string, obj stats.Objective, pixelFPR float64, opts Options, created time.Time) (*stats.FitFile, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("labelled folder %s: %w", dir, err)
	}
	_, items, err := datasets.ImageFolder(dir)
	if err != nil {
		return nil, fmt.Errorf("labelled folder: %w", err)
	}
	opts.Decode = ds.Decode
	scores, err := pm.ScoreLabelled(ctx, items, dir, "labelled", opts)
	if err != nil {
		return nil, err
	}
	return pm.LabelledFitFile(ds, scores, abs, obj, pixelFPR, created)
}

// ScoreLabelled scores labelled images (a category's test items, or those
// of a labelled folder) with pm as Evaluate scores the test images: the
// EfficientAD score, the Mahalanobis distance and the PUAD score of each,
// in order, with its path relative to base. The images are decoded as
// opts.Decode says; stage names them in opts.Progress.
func (pm *PUADModel) ScoreLabelled(ctx context.Context, items []datasets.TestItem, base, stage string, opts Options) ([]ImageScore, error) {
	paths := make([]string, len(items))
	for i, it := range items {
		paths[i] = it.Path
	}
	outs, err := RunImages(ctx, pm.Scorer, paths, Need{Score: true, Feature: true}, stage, opts)
	if err != nil {
		return nil, err
	}
	scores := make([]ImageScore, len(items))
	for i, it := range items {
		scores[i] = pm.imageScore(it, outs[i], base)
	}
	return scores, nil
}

// imageScore is the outcome of a labelled image from its network outputs.
func (pm *PUADModel) imageScore(it datasets.TestItem, o ImageOutput, base string) ImageScore {
	maha := pm.Gaussian.Mahalanobis(o.Feature)
	return ImageScore{
		Path: relPath(base, it.Path), Class: it.Class, Anomalous: it.Anomalous,
		EfficientAD: o.Score, Mahalanobis: maha, PUAD: pm.Fusion.Score(o.Score, maha),
	}
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

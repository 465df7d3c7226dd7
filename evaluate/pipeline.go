package evaluate

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/evaluate/metrics"
	"github.com/puad-go/puad/evaluate/stats"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// Progress receives the progress of a long job: the stage ("train",
// "validation", "test"), images done and the stage's total.
type Progress func(stage string, done, total int)

// Options tune Evaluate.
type Options struct {
	Extractor Extractor
	// BatchSize is the number of images per forward pass (DefaultBatchSize when 0).
	BatchSize int
	// Workers decode and resize images in parallel (runtime.NumCPU() when 0).
	Workers int
	// Progress, if set, is called after every batch.
	Progress Progress
}

// DefaultBatchSize is one image per forward pass: it reproduces the
// reference's numbers bit for bit. With larger batches libtorch's
// convolution (oneDNN) may block the work differently, which moves scores by
// about 1e-7 relative (measured in the end-to-end test) — harmless for
// AUROCs in general, but not bit-exact. On the CPU batching gains little,
// since the forward passes already run near the machine's GEMM peak; on a GPU
// it pays, so the CLI defaults to DefaultCUDABatchSize there.
const DefaultBatchSize = 1

// DefaultCUDABatchSize is the default batch size on CUDA devices.
const DefaultCUDABatchSize = 8

// ImageScore is the outcome for one test image.
type ImageScore struct {
	Path        string  `json:"path"` // relative to the dataset folder
	Class       string  `json:"class"`
	Anomalous   bool    `json:"anomalous"`
	EfficientAD float64 `json:"efficient_ad_score"`
	Mahalanobis float64 `json:"mahalanobis_distance"`
	PUAD        float64 `json:"puad_score"`
}

// Result is the outcome of Evaluate: what the reference's main.py prints and more.
type Result struct {
	DatasetName      string               `json:"dataset_name"`
	Category         string               `json:"category"`
	Size             string               `json:"size"`
	Extractor        string               `json:"feature_extractor"`
	EfficientADAUROC float64              `json:"efficient_ad_auroc"`
	PUADAUROC        float64              `json:"puad_auroc"`
	PUADPerClass     []metrics.ClassAUROC `json:"puad_auroc_per_class"`
	// EfficientADPerClass is EfficientAD's AUROC per anomaly class (the reference's results.txt).
	EfficientADPerClass []metrics.ClassAUROC `json:"efficient_ad_auroc_per_class"`
	Validation          stats.Fusion         `json:"validation"`
	NumTrain            int                  `json:"num_train"`
	NumValidation       int                  `json:"num_validation"`
	Test                []ImageScore         `json:"test"`
	// OperatingPoints, set by AddOperatingPoints, are how thresholds
	// perform on the test images.
	OperatingPoints []stats.OperatingReport `json:"operating_points,omitempty"`
	// Fitted is the fitted PUAD (scorer, Gaussian, validation statistics
	// and scores), for scoring further images the same way.
	Fitted *PUADModel `json:"-"`
}

// PUADModel is a fitted PUAD: the EfficientAD model, the Gaussian of the
// training features and the validation statistics.
type PUADModel struct {
	Scorer   *Scorer
	Gaussian *stats.Gaussian
	Fusion   stats.Fusion
	// ValidEfficientAD and ValidMahalanobis are the validation images'
	// scores (in the order of the dataset's Valid list) that Fusion was fitted on.
	ValidEfficientAD, ValidMahalanobis []float64
	// ValidMaps are their anomaly maps, at the model's resolution.
	ValidMaps [][]float32
}

// Fit fits PUAD on a dataset's train and validation images: feature vectors
// of the training images give the Gaussian (Ledoit-Wolf, pseudo-inverse);
// EfficientAD scores and Mahalanobis distances of the validation images give
// the z-score statistics.
func Fit(ctx context.Context, ds *datasets.Dataset, m *models.EfficientAD, opts Options) (*PUADModel, error) {
	sc := &Scorer{Model: m, Extractor: opts.Extractor}
	trainOut, err := RunImages(ctx, sc, ds.Train, Need{Feature: true}, "train", opts)
	if err != nil {
		return nil, err
	}
	feats := make([][]float32, len(trainOut))
	for i, o := range trainOut {
		feats[i] = o.Feature
	}
	g, err := stats.FitGaussian(feats)
	if err != nil {
		return nil, fmt.Errorf("fit PUAD on %d training images of %s: %w", len(feats), ds.Dir, err)
	}
	validOut, err := RunImages(ctx, sc, ds.Valid, Need{Score: true, Feature: true, Map: true}, "validation", opts)
	if err != nil {
		return nil, err
	}
	eff := make([]float64, len(validOut))
	maha := make([]float64, len(validOut))
	maps := make([][]float32, len(validOut))
	for i, o := range validOut {
		eff[i] = o.Score
		maha[i] = g.Mahalanobis(o.Feature)
		maps[i] = o.Map
	}
	fu, err := stats.FitFusion(eff, maha)
	if err != nil {
		return nil, fmt.Errorf("validation statistics of %s: %w", ds.Dir, err)
	}
	return &PUADModel{Scorer: sc, Gaussian: g, Fusion: fu, ValidEfficientAD: eff, ValidMahalanobis: maha, ValidMaps: maps}, nil
}

// Evaluate runs the reference's main.py on one category: EfficientAD's
// image AUROC on the test set, PUAD's fit on train/validation, and PUAD's
// AUROC overall and per anomaly class. Each image goes through the networks
// once, and only through those its role needs.
func Evaluate(ctx context.Context, ds *datasets.Dataset, m *models.EfficientAD, opts Options) (*Result, error) {
	if opts.Extractor == "" {
		opts.Extractor = StudentExtractor
	}
	pm, err := Fit(ctx, ds, m, opts)
	if err != nil {
		return nil, err
	}
	paths := make([]string, len(ds.Test))
	for i, it := range ds.Test {
		paths[i] = it.Path
	}
	testOut, err := RunImages(ctx, pm.Scorer, paths, Need{Score: true, Feature: true}, "test", opts)
	if err != nil {
		return nil, err
	}
	res := &Result{
		DatasetName: ds.DatasetName, Category: ds.Category, Size: string(m.Size), Extractor: string(opts.Extractor),
		Validation: pm.Fusion, NumTrain: len(ds.Train), NumValidation: len(ds.Valid), Fitted: pm,
	}
	classes := make([]string, len(ds.Test))
	effScores := make([]float64, len(ds.Test))
	puadScores := make([]float64, len(ds.Test))
	for i, it := range ds.Test {
		maha := pm.Gaussian.Mahalanobis(testOut[i].Feature)
		rel, err := filepath.Rel(ds.Dir, it.Path)
		if err != nil {
			rel = it.Path
		}
		sc := ImageScore{
			Path: filepath.ToSlash(rel), Class: it.Class, Anomalous: it.Anomalous,
			EfficientAD: testOut[i].Score, Mahalanobis: maha, PUAD: pm.Fusion.Score(testOut[i].Score, maha),
		}
		res.Test = append(res.Test, sc)
		classes[i] = it.Class
		effScores[i] = sc.EfficientAD
		puadScores[i] = sc.PUAD
	}
	if res.EfficientADAUROC, res.EfficientADPerClass, err = metrics.PerClassAUROC(classes, effScores, datasets.NormalClass); err != nil {
		return nil, fmt.Errorf("EfficientAD AUROC of %s: %w", ds.Dir, err)
	}
	if res.PUADAUROC, res.PUADPerClass, err = metrics.PerClassAUROC(classes, puadScores, datasets.NormalClass); err != nil {
		return nil, fmt.Errorf("PUAD AUROC of %s: %w", ds.Dir, err)
	}
	return res, nil
}

// RunImages loads paths (decoding and resizing in parallel while libtorch
// computes), runs them through sc in batches and returns one output per path,
// in order. An unreadable image is an error naming the file.
func RunImages(ctx context.Context, sc *Scorer, paths []string, need Need, stage string, opts Options) ([]ImageOutput, error) {
	bs := opts.BatchSize
	if bs <= 0 {
		bs = DefaultBatchSize
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	size := int(sc.Model.ImgSize)
	stream := datasets.Stream(ctx, paths, size, workers, 2*bs+workers)
	outs := make([]ImageOutput, 0, len(paths))
	batch := make([]float32, 0, bs*3*size*size)
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		o, err := ScoreBatch(sc, batch, n, need)
		if err != nil {
			return err
		}
		outs = append(outs, o...)
		batch, n = batch[:0], 0
		if opts.Progress != nil {
			opts.Progress(stage, len(outs), len(paths))
		}
		return nil
	}
	for it := range stream {
		if it.Err != nil {
			return nil, fmt.Errorf("%s images: %w", stage, it.Err)
		}
		batch = append(batch, it.Data...)
		n++
		if n == bs {
			if err := flush(); err != nil {
				return nil, fmt.Errorf("%s images: %w", stage, err)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, fmt.Errorf("%s images: %w", stage, err)
	}
	if len(outs) != len(paths) {
		return nil, fmt.Errorf("%s images: %d of %d processed", stage, len(outs), len(paths))
	}
	return outs, nil
}

// ScoreBatch runs n loaded images (float32 CHW at the model's ImgSize, one
// after the other in data, as datasets.Stream delivers them) through sc on
// its model's device: one step of RunImages, for callers that load images
// themselves.
func ScoreBatch(sc *Scorer, data []float32, n int, need Need) ([]ImageOutput, error) {
	size := sc.Model.ImgSize
	x, err := tb.FromSlice(data, int64(n), 3, size, size)
	if err != nil {
		return nil, err
	}
	defer x.Close()
	xd := x
	if sc.Model.Device != tb.CPU {
		if xd, err = x.ToDevice(sc.Model.Device); err != nil {
			return nil, err
		}
		defer xd.Close()
	}
	return sc.Run(xd, need)
}

package evaluate

import (
	"context"
	"fmt"
	"runtime"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/evaluate/localize"
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
	// Decode is how RunImages decodes images; Fit, Evaluate and
	// EfficientADTestAUROC take it from their dataset.
	Decode datasets.DecodeOptions
	// MapsDir, if set, receives Evaluate's test anomaly maps at the
	// images' own sizes as float TIFFs (WriteMap's layout).
	MapsDir string
	// MasksDir, if set, receives Evaluate's test defect masks: the maps
	// of MapsDir cut at MaskThreshold (defectmask.New), as PNG files in
	// the same layout (defectmask.Path).
	MasksDir      string
	MaskThreshold float64
	// Precision is the networks' arithmetic: RunImages (so Fit and
	// Evaluate) converts the model's weights to it once
	// (models.EfficientAD.SetPrecision; float32 is the reference's); the
	// maps, features, statistics and fusion stay float32. "" leaves the
	// model in its precision (float32 unless converted before).
	Precision models.Precision
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
	// Metrics are the pixel-level results of EfficientAD's maps; nil (and
	// absent from the JSON) when the category has no ground truth.
	*localize.Metrics
	Validation    stats.Fusion `json:"validation"`
	NumTrain      int          `json:"num_train"`
	NumValidation int          `json:"num_validation"`
	Test          []ImageScore `json:"test"`
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
	if n := len(ds.Valid); n < MinValidation {
		return nil, fmt.Errorf("%s: need at least %d validation images to standardise the scores, found %d", ds.Dir, MinValidation, n)
	}
	opts.Decode = ds.Decode
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

// MinValidation is the fewest validation images Fit accepts: a standard
// deviation needs two.
const MinValidation = 2

// Evaluate runs the reference's main.py on one category: EfficientAD's
// image AUROC on the test set, PUAD's fit on train/validation, and PUAD's
// AUROC overall and per anomaly class. Each image goes through the networks
// once, and only through those its role needs.
func Evaluate(ctx context.Context, ds *datasets.Dataset, m *models.EfficientAD, opts Options) (*Result, error) {
	if opts.Extractor == "" {
		opts.Extractor = StudentExtractor
	}
	if opts.MapsDir != "" {
		err := CheckMapPaths(opts.MapsDir, ds.Category, len(ds.Test), func(i int) (string, string) { return ds.Test[i].Class, ds.Test[i].Path })
		if err != nil {
			return nil, err
		}
	}
	pm, err := Fit(ctx, ds, m, opts)
	if err != nil {
		return nil, err
	}
	opts.Decode = ds.Decode
	paths := make([]string, len(ds.Test))
	for i, it := range ds.Test {
		paths[i] = it.Path
	}
	maps, err := newTestMaps(ds, int(m.ImgSize), opts)
	if err != nil {
		return nil, err
	}
	testOut := make([]ImageOutput, len(paths))
	err = EachImage(ctx, pm.Scorer, paths, Need{Score: true, Feature: true, Map: maps != nil}, "test", opts,
		func(i int, o ImageOutput) error {
			if maps != nil {
				if err := maps.add(ds.Test[i], o.Map); err != nil {
					return err
				}
				o.Map = nil
			}
			testOut[i] = o
			return nil
		})
	if err != nil {
		return nil, err
	}
	loc, err := maps.result()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ds.Dir, err)
	}
	res := &Result{
		DatasetName: ds.DatasetName, Category: ds.Category, Size: string(m.Size), Extractor: string(opts.Extractor),
		Validation: pm.Fusion, NumTrain: len(ds.Train), NumValidation: len(ds.Valid), Fitted: pm, Metrics: loc,
	}
	classes := make([]string, len(ds.Test))
	effScores := make([]float64, len(ds.Test))
	puadScores := make([]float64, len(ds.Test))
	for i, it := range ds.Test {
		sc := pm.imageScore(it, testOut[i], ds.Dir)
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
	outs := make([]ImageOutput, 0, len(paths))
	err := EachImage(ctx, sc, paths, need, stage, opts, func(_ int, o ImageOutput) error {
		outs = append(outs, o)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return outs, nil
}

// EachImage is RunImages handing each output to fn, in path order, as soon
// as its batch is done, instead of collecting them: outputs with anomaly
// maps need not all be held. An error from fn stops the run and is
// returned.
func EachImage(ctx context.Context, sc *Scorer, paths []string, need Need, stage string, opts Options, fn func(i int, o ImageOutput) error) error {
	if opts.Precision != "" {
		if err := sc.Model.SetPrecision(opts.Precision); err != nil {
			return err
		}
	}
	bs := opts.BatchSize
	if bs <= 0 {
		bs = DefaultBatchSize
	}
	// No batch is larger than the images there are: memory follows the
	// work, not the setting.
	bs = max(1, min(bs, len(paths)))
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	size := int(sc.Model.ImgSize)
	stream := opts.Decode.Stream(ctx, paths, size, workers, 2*bs+workers)
	batch := make([]float32, 0, bs*3*size*size)
	n, done := 0, 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		o, err := ScoreBatch(sc, batch, n, need)
		if err != nil {
			return err
		}
		for _, out := range o {
			if err := fn(done, out); err != nil {
				return err
			}
			done++
		}
		batch, n = batch[:0], 0
		if opts.Progress != nil {
			opts.Progress(stage, done, len(paths))
		}
		return nil
	}
	for it := range stream {
		if it.Err != nil {
			return fmt.Errorf("%s images: %w", stage, it.Err)
		}
		batch = append(batch, it.Data...)
		n++
		if n == bs {
			if err := flush(); err != nil {
				return fmt.Errorf("%s images: %w", stage, err)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := flush(); err != nil {
		return fmt.Errorf("%s images: %w", stage, err)
	}
	if done != len(paths) {
		return fmt.Errorf("%s images: %d of %d processed", stage, done, len(paths))
	}
	return nil
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

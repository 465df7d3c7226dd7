// Package evalsetup opens a dataset category and its EfficientAD model for
// evaluation: the one place where the reference's split, the model's image
// size and the device's batch size are chosen for `eval`, `fit` and
// `reproduce`.
package evalsetup

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/datasets/refsplit"
	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/evaluate/stats"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// DefaultImgSize is the reference's image size.
const DefaultImgSize = 256

// Settings select a category's model and how it runs.
type Settings struct {
	Size      models.Size
	Extractor evaluate.Extractor
	Device    tb.Device
	// BatchSize is the number of images per forward pass (0: one on the CPU,
	// evaluate.DefaultCUDABatchSize on CUDA).
	BatchSize int
	// ImgSize is the model's image size (0: DefaultImgSize).
	ImgSize int
}

// Load opens the category folder datasetDir (split as the reference does)
// and its model from modelDir. The caller closes the model; Options carry
// the extractor and batch size, and no progress callback.
func Load(datasetDir, modelDir string, s Settings) (*datasets.Dataset, *models.EfficientAD, evaluate.Options, error) {
	opts := evaluate.Options{Extractor: s.Extractor, BatchSize: s.BatchSize}
	if info, err := os.Stat(modelDir); err != nil || !info.IsDir() {
		return nil, nil, opts, fmt.Errorf("model directory %s: not found", modelDir)
	}
	ds, err := datasets.Open(datasetDir, refsplit.Perm)
	if err != nil {
		return nil, nil, opts, err
	}
	imgSize := int64(s.ImgSize)
	if imgSize <= 0 {
		imgSize = DefaultImgSize
	}
	m, err := models.LoadEfficientAD(modelDir, s.Size, ds.DatasetName, ds.Category, imgSize, s.Device)
	if err != nil {
		return nil, nil, opts, err
	}
	if opts.BatchSize <= 0 && s.Device.IsCUDA() {
		opts.BatchSize = evaluate.DefaultCUDABatchSize
	}
	return ds, m, opts, nil
}

// FitPath is where `puad fit` stores the PUAD fit of a category:
// <modelDir>/<size>_size/<dataset>/<category>/puad_fit.json.
func FitPath(modelDir string, size models.Size, datasetName, category string) string {
	return filepath.Join(models.Layout{Root: modelDir, Size: size}.CategoryDir(datasetName, category), stats.FitFileName)
}

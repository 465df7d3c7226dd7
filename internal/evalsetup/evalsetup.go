// Package evalsetup opens a dataset category and its EfficientAD model for
// evaluation: the one place where the reference's split, the model's image
// size and the device's batch size are chosen for `eval`, `fit` and
// `reproduce`.
package evalsetup

import (
	"errors"
	"fmt"
	"io/fs"
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
	// Need is what the dataset must provide (0: training and test images,
	// as evaluation needs).
	Need datasets.Need
	// MVTecOnly opens the dataset with datasets.Open alone: a category in
	// the MVTec layout, with the reference's exact rules.
	MVTecOnly bool
	// Name names a plain folder's model (empty: the folder's base name).
	Name string
	// TeacherFile replaces the model directory's teacher (any
	// models.TeacherLayout); empty for teacher.pt.
	TeacherFile string
	// Precision is the networks' arithmetic ("": float32, the reference's).
	Precision models.Precision
}

// Load opens the dataset folder datasetDir (a category in the MVTec layout,
// split as the reference does, or a plain folder: datasets.OpenFor) and its
// model from modelDir. The caller closes the model; Options carry
// the extractor and batch size, and no progress callback.
func Load(datasetDir, modelDir string, s Settings) (*datasets.Dataset, *models.EfficientAD, evaluate.Options, error) {
	opts := evaluate.Options{Extractor: s.Extractor, BatchSize: s.BatchSize, Precision: s.Precision}
	if err := checkDir(modelDir); err != nil {
		return nil, nil, opts, fmt.Errorf("model directory %w", err)
	}
	if s.BatchSize < 0 {
		return nil, nil, opts, fmt.Errorf("batch size %d: want at least 1", s.BatchSize)
	}
	if s.ImgSize != 0 {
		if err := models.CheckImgSize(s.ImgSize); err != nil {
			return nil, nil, opts, err
		}
	}
	need := s.Need
	if need == 0 {
		need = datasets.NeedTrain | datasets.NeedTest
	}
	var ds *datasets.Dataset
	var err error
	if s.MVTecOnly {
		ds, err = datasets.Open(datasetDir, refsplit.Perm)
	} else {
		ds, err = datasets.OpenFor(datasetDir, refsplit.Perm, need, s.Name)
	}
	if err != nil {
		return nil, nil, opts, err
	}
	imgSize := int64(s.ImgSize)
	if imgSize <= 0 {
		imgSize = DefaultImgSize
	}
	ref := models.ModelRef{Root: modelDir, Size: s.Size, DatasetName: ds.DatasetName, Category: ds.Category, TeacherFile: s.TeacherFile}
	m, err := ref.Load(imgSize, s.Device)
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

// checkDir returns an error, starting with the path, unless dir is a directory.
func checkDir(dir string) error {
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: not found", dir)
	case err != nil:
		return fmt.Errorf("%s: %w", dir, err)
	case !info.IsDir():
		return fmt.Errorf("%s: not a directory", dir)
	}
	return nil
}

package detector

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sync"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/evaluate/stats"
	"github.com/puad-go/puad/internal/evalsetup"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// ErrClosed is returned by the methods of a Detector after Close.
var ErrClosed = errors.New("detector: closed")

// Options select the model of a category and how it runs. The zero value
// loads EfficientAD-S on the CPU with the fit's feature extractor.
type Options struct {
	// Size is the EfficientAD size (models.Small when empty).
	Size models.Size
	// Extractor is the PUAD feature extractor the fit must have been made
	// with; empty accepts the fit's.
	Extractor evaluate.Extractor
	// Device is where the networks run (the zero value is the CPU).
	Device tb.Device
	// BatchSize is the largest number of images PredictBatch sends through
	// the networks at once: 0 means evaluate.DefaultBatchSize on the CPU
	// (bit for bit the reference's numbers) and evaluate.DefaultCUDABatchSize
	// on CUDA.
	BatchSize int
	// Decode limits the decoding of encoded images; how 16-bit greyscale
	// becomes 8-bit (Grey16) is taken from the fit, as the fit's images
	// were decoded.
	Decode datasets.DecodeOptions
	// TeacherFile replaces the teacher the fit was made with (any
	// models.TeacherLayout); empty for the fit's.
	TeacherFile string
	// Threshold, when set, replaces the fit's decision threshold on the
	// PUAD score.
	Threshold *float64
	// Precision is the networks' arithmetic ("": float32, the reference's
	// and bit-exact; models.BF16 or models.FP16 where the device supports
	// it). The maps, features and statistics stay float32.
	Precision models.Precision
}

// Detector scores images with one category's EfficientAD model and PUAD fit.
type Detector struct {
	datasetName, category string
	fitPath               string
	fit                   *stats.FitFile
	gauss                 *stats.Gaussian
	model                 *models.EfficientAD
	scorer                *evaluate.Scorer
	batch                 int
	decode                datasets.DecodeOptions
	threshold             float64 // in force
	precision             models.Precision

	life   sync.RWMutex // read-held by calls in progress, write-held by Close
	closed bool
	run    sync.Mutex // one forward pass at a time
}

// CategoryNames returns the dataset name and the category named by a path
// <dataset>/<category> (a category folder, or just those two names).
func CategoryNames(path string) (datasetName, category string, err error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", "", fmt.Errorf("category %s: %w", path, err)
	}
	category, datasetName = filepath.Base(abs), filepath.Base(filepath.Dir(abs))
	if category == string(filepath.Separator) || datasetName == string(filepath.Separator) || datasetName == "." {
		return "", "", fmt.Errorf("category %s: want a path <dataset>/<category>", path)
	}
	return datasetName, category, nil
}

// Load opens the model of the category named by category (a path whose last
// two elements are the dataset name and the category, such as the category's
// dataset folder) below modelDir, and the PUAD fit stored beside it
// (evalsetup.FitPath). Errors of the fit file are those of stats.LoadFit
// (ErrNoFit, *stats.FormatError, *stats.MismatchError) and of
// evaluate.CheckFit (a *stats.StaleError when a model file changed since
// the fit), wrapped.
func Load(modelDir, category string, opts Options) (*Detector, error) {
	datasetName, cat, err := CategoryNames(category)
	if err != nil {
		return nil, err
	}
	return load(modelDir, datasetName, cat, opts)
}

// LoadName is Load for the model of a plain folder, named name:
// <modelDir>/<size>_size/custom/<name> (datasets.PlainDatasetName).
func LoadName(modelDir, name string, opts Options) (*Detector, error) {
	if err := datasets.CheckName(name); err != nil {
		return nil, err
	}
	return load(modelDir, datasets.PlainDatasetName, name, opts)
}

// load opens the model and the fit of a dataset's category and checks that
// they belong together.
func load(modelDir, datasetName, cat string, opts Options) (*Detector, error) {
	size := cmp.Or(opts.Size, models.Small)
	fp := evalsetup.FitPath(modelDir, size, datasetName, cat)
	fit, err := stats.LoadFit(fp, string(size), string(opts.Extractor))
	if err != nil {
		return nil, err
	}
	if fit.DatasetName != datasetName || fit.Category != cat {
		return nil, fmt.Errorf("PUAD fit %s is of %s/%s, not %s/%s", fp, fit.DatasetName, fit.Category, datasetName, cat)
	}
	threshold := fit.Threshold.Value
	if opts.Threshold != nil {
		if threshold = *opts.Threshold; math.IsNaN(threshold) || math.IsInf(threshold, 0) {
			return nil, fmt.Errorf("threshold %v: want a finite number", threshold)
		}
	}
	decode := opts.Decode
	if decode.Grey16, err = datasets.ParseGrey16Mode(fit.Depth16); err != nil {
		return nil, fmt.Errorf("PUAD fit %s: %w", fp, err)
	}
	ref := models.ModelRef{Root: modelDir, Size: size, DatasetName: datasetName, Category: cat, TeacherFile: cmp.Or(opts.TeacherFile, fit.TeacherFile)}
	m, err := ref.Load(int64(fit.ImgSize), opts.Device)
	if err != nil {
		return nil, err
	}
	if err := evaluate.CheckFit(fit, m); err != nil {
		m.Close()
		return nil, fmt.Errorf("%s: %w", fp, err)
	}
	if err := m.SetPrecision(opts.Precision); err != nil {
		m.Close()
		return nil, err
	}
	batch := opts.BatchSize
	if batch <= 0 {
		batch = evaluate.DefaultBatchSize
		if opts.Device.IsCUDA() {
			batch = evaluate.DefaultCUDABatchSize
		}
	}
	return &Detector{
		datasetName: datasetName, category: cat, fitPath: fp, fit: fit, gauss: fit.Gaussian(),
		model: m, scorer: &evaluate.Scorer{Model: m, Extractor: evaluate.Extractor(fit.Extractor)},
		batch: batch, decode: decode, threshold: threshold, precision: opts.Precision,
	}, nil
}

// Close releases the networks after the calls in progress have returned.
// Later calls fail with ErrClosed; closing twice does nothing.
func (d *Detector) Close() error {
	d.life.Lock()
	defer d.life.Unlock()
	if !d.closed {
		d.closed = true
		d.model.Close()
	}
	return nil
}

// acquire marks a call in progress; release ends it.
func (d *Detector) acquire() error {
	d.life.RLock()
	if d.closed {
		d.life.RUnlock()
		return ErrClosed
	}
	return nil
}

func (d *Detector) release() { d.life.RUnlock() }

// DatasetName is the name of the dataset the category belongs to.
func (d *Detector) DatasetName() string { return d.datasetName }

// Category is the category's name.
func (d *Detector) Category() string { return d.category }

// FitPath is the fit file the detector was loaded with.
func (d *Detector) FitPath() string { return d.fitPath }

// Fit is the loaded PUAD fit; callers must not change it.
func (d *Detector) Fit() *stats.FitFile { return d.fit }

// CheckResolution says whether the networks' precision resolves the
// EfficientAD scores of the validation images the fit standardises with
// (evaluate.CheckResolution): a *evaluate.ResolutionError when its rounding
// may reorder them, else nil.
func (d *Detector) CheckResolution() error {
	return evaluate.CheckResolution(d.fit.Fusion, d.precision)
}

// Threshold is the decision threshold in force (the fit's, unless
// Options.Threshold replaced it): an image is anomalous when its PUAD score
// is greater than it.
func (d *Detector) Threshold() float64 { return d.threshold }

// ImgSize is the side of the square images the networks see.
func (d *Detector) ImgSize() int { return int(d.model.ImgSize) }

// BatchSize is the largest number of images of one forward pass.
func (d *Detector) BatchSize() int { return d.batch }

package stats

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/puad-go/puad/internal/atomicfile"
)

// FitFileName is the file that stores a fitted PUAD next to a category's
// model files (<model_dir>/<size>_size/<dataset>/<category>/puad_fit.json).
const FitFileName = "puad_fit.json"

// FitFormat is the version of the fit file's layout.
const FitFormat = 1

// ValidationScore is one validation image's scores in a fit file.
type ValidationScore struct {
	Path        string  `json:"path"` // relative to the dataset folder
	EfficientAD float64 `json:"efficient_ad_score"`
	Mahalanobis float64 `json:"mahalanobis_distance"`
	PUAD        float64 `json:"puad_score"`
}

// FitFile is a stored fitted PUAD: what scoring a new image needs besides
// the EfficientAD model (the Gaussian of the training features, the
// validation z-score statistics) and the decision threshold.
type FitFile struct {
	Format        int       `json:"format"`
	Created       time.Time `json:"created"`
	DatasetName   string    `json:"dataset_name"`
	Category      string    `json:"category"`
	Size          string    `json:"size"`
	Extractor     string    `json:"feature_extractor"`
	ImgSize       int       `json:"img_size"`
	NumTrain      int       `json:"num_train"`
	NumValidation int       `json:"num_validation"`
	// Mean is the mean training feature vector; CovInv the pseudo-inverse of
	// the Ledoit-Wolf covariance, row by row; Shrinkage its shrinkage.
	Mean       []float64         `json:"feature_mean"`
	CovInv     [][]float64       `json:"inverse_covariance"`
	Shrinkage  float64           `json:"shrinkage"`
	Fusion     Fusion            `json:"zscore"`
	Threshold  Threshold         `json:"threshold"`
	Validation []ValidationScore `json:"validation"`
	// PixelThreshold makes defect masks of anomaly maps; fits made
	// without the validation maps have none.
	PixelThreshold *PixelThreshold `json:"pixel_threshold,omitempty"`
}

// FitInput is what a fit file is made from: a fitted PUAD of one dataset
// category and the scores of its validation images.
type FitInput struct {
	DatasetName string
	Category    string
	// Size is the EfficientAD size ("s" or "m"), Extractor the name of the
	// feature extractor and ImgSize the side of the model's input images.
	Size      string
	Extractor string
	ImgSize   int
	// Gaussian is the model of the training features, Fusion the
	// standardisation fitted on the validation scores.
	Gaussian *Gaussian
	Fusion   Fusion
	// ValidPaths are the validation images, relative to the dataset folder
	// with forward slashes; ValidEfficientAD and ValidMahalanobis are their
	// scores, in the same order.
	ValidPaths                         []string
	ValidEfficientAD, ValidMahalanobis []float64
	// ValidMaps are the validation images' anomaly maps at the model's
	// resolution; when given, the fit gets a pixel threshold at
	// DefaultPixelFPR (ChoosePixelThreshold).
	ValidMaps [][]float32
}

// NewFitFile describes the fitted PUAD in as a fit file created at created.
// The threshold allows maxFPR false positives on the validation images
// (ChooseThreshold). It returns an error when the fusion is degenerate
// (Fusion.Check), when the validation scores do not match the validation
// images, or when no threshold can be chosen.
func NewFitFile(in FitInput, maxFPR float64, created time.Time) (*FitFile, error) {
	g := in.Gaussian
	if err := in.Fusion.Check(); err != nil {
		return nil, err
	}
	n := len(in.ValidPaths)
	if len(in.ValidEfficientAD) != n || len(in.ValidMahalanobis) != n {
		return nil, fmt.Errorf("%d validation images but %d/%d validation scores", n, len(in.ValidEfficientAD), len(in.ValidMahalanobis))
	}
	f := &FitFile{
		Format: FitFormat, Created: created.UTC().Truncate(time.Second),
		DatasetName: in.DatasetName, Category: in.Category,
		Size: in.Size, Extractor: in.Extractor, ImgSize: in.ImgSize,
		NumTrain: g.N, NumValidation: n,
		Mean: append([]float64(nil), g.Mean...), Shrinkage: g.Shrinkage, Fusion: in.Fusion,
	}
	p := g.Dim()
	raw := g.CovInv.RawMatrix()
	for i := 0; i < p; i++ {
		f.CovInv = append(f.CovInv, append([]float64(nil), raw.Data[i*raw.Stride:i*raw.Stride+p]...))
	}
	puad := make([]float64, n)
	for i, path := range in.ValidPaths {
		eff, maha := in.ValidEfficientAD[i], in.ValidMahalanobis[i]
		puad[i] = in.Fusion.Score(eff, maha)
		f.Validation = append(f.Validation, ValidationScore{Path: path, EfficientAD: eff, Mahalanobis: maha, PUAD: puad[i]})
	}
	th, err := ChooseThreshold(puad, maxFPR)
	if err != nil {
		return nil, err
	}
	f.Threshold = th
	if len(in.ValidMaps) > 0 {
		pt, err := ChoosePixelThreshold(in.ValidMaps, DefaultPixelFPR)
		if err != nil {
			return nil, err
		}
		f.PixelThreshold = &pt
	}
	return f, nil
}

// Gaussian returns the feature model of the fit (Mean and CovInv; the
// covariance itself is not stored).
func (f *FitFile) Gaussian() *Gaussian {
	p := len(f.Mean)
	inv := mat.NewDense(p, p, nil)
	for i, row := range f.CovInv {
		inv.SetRow(i, row)
	}
	return &Gaussian{Mean: f.Mean, CovInv: inv, Shrinkage: f.Shrinkage, N: f.NumTrain}
}

// Score returns the Mahalanobis distance and the PUAD score of an image
// from its EfficientAD score and feature vector, and whether the PUAD score
// is above the threshold.
func (f *FitFile) Score(g *Gaussian, eff float64, feature []float32) (maha, puad float64, anomalous bool) {
	maha = g.Mahalanobis(feature)
	puad = f.Fusion.Score(eff, maha)
	return maha, puad, puad > f.Threshold.Value
}

// ErrNoFit is returned (wrapped) by LoadFit when the fit file does not
// exist. errors.Is(err, fs.ErrNotExist) holds for it too.
var ErrNoFit error = noFitError{}

type noFitError struct{}

func (noFitError) Error() string { return "no PUAD fit" }
func (noFitError) Unwrap() error { return fs.ErrNotExist }

// FormatError is returned (wrapped) by LoadFit and SaveFit for a fit file
// of another layout version than FitFormat.
type FormatError struct {
	Have, Want int
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("format %d, this program reads format %d", e.Have, e.Want)
}

// FitField names what a fit file was made for.
type FitField string

// The fields LoadFit checks.
const (
	FieldSize      FitField = "size"
	FieldExtractor FitField = "feature extractor"
)

// MismatchError is returned by LoadFit when the fit file was made for
// another EfficientAD size or feature extractor than the one asked for.
type MismatchError struct {
	Path  string
	Field FitField
	// Have is the file's value, Want the one asked for.
	Have, Want string
}

func (e *MismatchError) Error() string {
	if e.Field == FieldSize {
		return fmt.Sprintf("PUAD fit %s belongs to size %s, not %s", e.Path, e.Have, e.Want)
	}
	return fmt.Sprintf("PUAD fit %s was made with the %s %s, not %s", e.Path, e.Have, e.Field, e.Want)
}

// validate checks the shapes and values a loaded file must have.
func (f *FitFile) validate() error {
	if f.Format != FitFormat {
		return &FormatError{Have: f.Format, Want: FitFormat}
	}
	p := len(f.Mean)
	if p == 0 || len(f.CovInv) != p {
		return fmt.Errorf("feature mean of %d values but an inverse covariance of %d rows", p, len(f.CovInv))
	}
	for i, row := range f.CovInv {
		if len(row) != p {
			return fmt.Errorf("inverse covariance row %d has %d values, want %d", i, len(row), p)
		}
	}
	if err := f.Fusion.Check(); err != nil {
		return err
	}
	if math.IsNaN(f.Threshold.Value) || math.IsInf(f.Threshold.Value, 0) {
		return fmt.Errorf("threshold %v", f.Threshold.Value)
	}
	return nil
}

// SaveFit writes f as JSON to path with internal/atomicfile, so a reader
// never sees a partial file.
func SaveFit(path string, f *FitFile) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, append(data, '\n'), atomicfile.DefaultPerm); err != nil {
		return fmt.Errorf("save PUAD fit: %w", err)
	}
	return nil
}

// LoadFit reads a fit file and checks that it was fitted for size and
// extractor (either may be empty to accept any). A missing file is an
// error wrapping ErrNoFit, another layout version one wrapping a
// *FormatError, and a fit of another size or extractor a *MismatchError.
func LoadFit(path, size, extractor string) (*FitFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s", ErrNoFit, path)
	}
	if err != nil {
		return nil, fmt.Errorf("load PUAD fit: %w", err)
	}
	var f FitFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("load PUAD fit %s: %w", path, err)
	}
	if err := f.validate(); err != nil {
		return nil, fmt.Errorf("load PUAD fit %s: %w", path, err)
	}
	if size != "" && f.Size != size {
		return nil, &MismatchError{Path: path, Field: FieldSize, Have: f.Size, Want: size}
	}
	if extractor != "" && f.Extractor != extractor {
		return nil, &MismatchError{Path: path, Field: FieldExtractor, Have: f.Extractor, Want: extractor}
	}
	return &f, nil
}

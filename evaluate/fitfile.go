package evaluate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/puad-go/puad/datasets"
)

// FitFileName is the file that stores a fitted PUAD next to a category's
// model files (<model_dir>/<size>_size/<dataset>/<category>/puad_fit.json).
const FitFileName = "puad_fit.json"

// FitFormat is the version of the fit file's layout.
const FitFormat = 1

// DefaultMaxFPR is the default false-positive rate the decision threshold
// allows on the validation images. With the validation sets of MVTec LOCO AD
// (60 to 100 images) it allows no validation image above the threshold, so
// the threshold is the largest validation PUAD score; see ChooseThreshold.
const DefaultMaxFPR = 0.01

// Threshold is the decision threshold on the PUAD score: an image is
// anomalous when its score is greater than Value.
type Threshold struct {
	Value float64 `json:"value"`
	// MaxFPR is the false-positive rate that was asked for on the validation images.
	MaxFPR float64 `json:"max_fpr"`
	// Allowed is floor(MaxFPR·n): how many of the n validation images may
	// score above Value.
	Allowed int `json:"allowed_false_positives"`
	// ValidationFPR is the rate of validation images above Value (at most MaxFPR).
	ValidationFPR float64 `json:"validation_fpr"`
	// ExpectedFPR is (Allowed+1)/(n+1): the probability that a new normal
	// image, exchangeable with the validation images, scores above Value.
	// It exceeds MaxFPR when the validation set is small.
	ExpectedFPR float64 `json:"expected_fpr"`
	// NumValidation is n.
	NumValidation int `json:"num_validation"`
}

// ChooseThreshold picks the decision threshold on the PUAD scores of the
// validation images (all normal) so that at most maxFPR of them are above
// it: with n scores sorted from the largest, k = floor(maxFPR·n) may be
// false positives, and the threshold is the (k+1)-th largest score, so that
// the rule "score > threshold" flags at most the k above it (fewer with
// ties). This is the empirical upper quantile taken at an observed score,
// without interpolation: with n = 60 to 100 validation images an
// interpolated quantile would be an arbitrary point between two images.
//
// Small validation sets cannot resolve small rates: below 1/n, k is 0 and
// the threshold is the largest validation score. On new normal images the
// expected false-positive rate is then (k+1)/(n+1), not maxFPR (for n = 60,
// about 1.6%); Threshold.ExpectedFPR records it.
func ChooseThreshold(validScores []float64, maxFPR float64) (Threshold, error) {
	n := len(validScores)
	if n == 0 {
		return Threshold{}, errors.New("evaluate: a threshold needs validation scores, got none")
	}
	if !(maxFPR >= 0 && maxFPR < 1) {
		return Threshold{}, fmt.Errorf("evaluate: maximum false-positive rate %v not in [0, 1)", maxFPR)
	}
	s := append([]float64(nil), validScores...)
	for i, v := range s {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return Threshold{}, fmt.Errorf("evaluate: validation PUAD score %d is %v", i, v)
		}
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(s)))
	// The small epsilon keeps 0.05·100 from becoming 4.999… → 4.
	k := int(math.Floor(maxFPR*float64(n) + 1e-9))
	th := Threshold{Value: s[k], MaxFPR: maxFPR, Allowed: k, NumValidation: n,
		ExpectedFPR: float64(k+1) / float64(n+1)}
	above := 0
	for _, v := range s {
		if v > th.Value {
			above++
		}
	}
	th.ValidationFPR = float64(above) / float64(n)
	return th, nil
}

// ValidationScore is one validation image's scores in a fit file.
type ValidationScore struct {
	Path        string  `json:"path"` // relative to the dataset folder
	EfficientAD float64 `json:"efficient_ad_score"`
	Mahalanobis float64 `json:"mahalanobis_distance"`
	PUAD        float64 `json:"puad_score"`
}

// FitFile is a fitted PUAD as `puad fit` stores it: what scoring a new image
// needs besides the EfficientAD model (the Gaussian of the training
// features, the validation z-score statistics) and the decision threshold.
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
}

// NewFitFile describes a fitted PUAD of a dataset category: pm must come
// from Fit on ds. The threshold allows maxFPR false positives on the
// validation images (ChooseThreshold).
func NewFitFile(pm *PUADModel, ds *datasets.Dataset, maxFPR float64, created time.Time) (*FitFile, error) {
	g := pm.Gaussian
	if err := pm.Fusion.Check(); err != nil {
		return nil, fmt.Errorf("fit of %s: %w", ds.Dir, err)
	}
	if len(pm.ValidEfficientAD) != len(ds.Valid) || len(pm.ValidMahalanobis) != len(ds.Valid) {
		return nil, fmt.Errorf("fit of %s: %d validation images but %d/%d validation scores", ds.Dir, len(ds.Valid), len(pm.ValidEfficientAD), len(pm.ValidMahalanobis))
	}
	f := &FitFile{
		Format: FitFormat, Created: created.UTC().Truncate(time.Second),
		DatasetName: ds.DatasetName, Category: ds.Category,
		Size: string(pm.Scorer.Model.Size), Extractor: string(pm.Scorer.Extractor), ImgSize: int(pm.Scorer.Model.ImgSize),
		NumTrain: g.N, NumValidation: len(ds.Valid),
		Mean: append([]float64(nil), g.Mean...), Shrinkage: g.Shrinkage, Fusion: pm.Fusion,
	}
	p := g.Dim()
	raw := g.CovInv.RawMatrix()
	for i := 0; i < p; i++ {
		f.CovInv = append(f.CovInv, append([]float64(nil), raw.Data[i*raw.Stride:i*raw.Stride+p]...))
	}
	puad := make([]float64, len(ds.Valid))
	for i, path := range ds.Valid {
		rel, err := filepath.Rel(ds.Dir, path)
		if err != nil {
			rel = path
		}
		puad[i] = pm.Fusion.Score(pm.ValidEfficientAD[i], pm.ValidMahalanobis[i])
		f.Validation = append(f.Validation, ValidationScore{Path: filepath.ToSlash(rel),
			EfficientAD: pm.ValidEfficientAD[i], Mahalanobis: pm.ValidMahalanobis[i], PUAD: puad[i]})
	}
	th, err := ChooseThreshold(puad, maxFPR)
	if err != nil {
		return nil, fmt.Errorf("fit of %s: %w", ds.Dir, err)
	}
	f.Threshold = th
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

// validate checks the shapes and values a loaded file must have.
func (f *FitFile) validate() error {
	if f.Format != FitFormat {
		return fmt.Errorf("format %d, this program reads format %d (run `puad fit` again)", f.Format, FitFormat)
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

// SaveFit writes f as JSON to path atomically (a temporary file in the same
// folder, renamed into place).
func SaveFit(path string, f *FitFile) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := writeFileAtomic(path, append(data, '\n')); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// LoadFit reads a fit file and checks that it was fitted for size and
// extractor (either may be empty to accept any). A missing file is an error
// that says how to create it.
func LoadFit(path, size, extractor string) (*FitFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no PUAD fit at %s: run `puad fit DATASET MODELS --size %s` for this category first", path, orAny(size))
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
		return nil, fmt.Errorf("PUAD fit %s belongs to size %s, not %s: run `puad fit` with --size %s", path, f.Size, size, size)
	}
	if extractor != "" && f.Extractor != extractor {
		return nil, fmt.Errorf("PUAD fit %s was made with the %s feature extractor, not %s: run `puad fit` with --feature-extractor %s", path, f.Extractor, extractor, extractor)
	}
	return &f, nil
}

func orAny(s string) string {
	if s == "" {
		return "s"
	}
	return s
}

// writeFileAtomic writes data to a temporary file beside path and renames it.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Chmod(0o644)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), path)
	}
	if werr != nil {
		os.Remove(f.Name())
	}
	return werr
}

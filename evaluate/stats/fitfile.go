package stats

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"slices"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/puad-go/puad/internal/atomicfile"
)

// FitFileName is the file that stores a fitted PUAD next to a category's
// model files (<model_dir>/<size>_size/<dataset>/<category>/puad_fit.json).
const FitFileName = "puad_fit.json"

// FitFormat is the version of the fit file's layout. Format 2 records the
// digests of the model files the fit was made with.
const FitFormat = 2

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
	Format      int       `json:"format"`
	Created     time.Time `json:"created"`
	DatasetName string    `json:"dataset_name"`
	Category    string    `json:"category"`
	Size        string    `json:"size"`
	Extractor   string    `json:"feature_extractor"`
	ImgSize     int       `json:"img_size"`
	// Depth16 is how the images' 16-bit greyscale samples were brought to
	// 8 bits: "" (clipped, as the reference) or "scale" (see
	// datasets.ParseGrey16Mode).
	Depth16 string `json:"depth16,omitempty"`
	// TeacherFile is the teacher the fit was made with when it is not the
	// model directory's own teacher.pt.
	TeacherFile   string `json:"teacher_file,omitempty"`
	NumTrain      int    `json:"num_train"`
	NumValidation int    `json:"num_validation"`
	// ModelFiles are the SHA-256 digests (hex) of the model files the fit
	// was made with, keyed by their paths below the model directory's size
	// folder (models.Layout.FileDigests).
	ModelFiles map[string]string `json:"model_files"`
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
	// Depth16 and TeacherFile are stored as FitFile describes them.
	Depth16, TeacherFile string
	// ModelFiles are the digests of the model's files (FitFile.ModelFiles).
	ModelFiles map[string]string
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
	// resolution; when given, the fit gets a pixel threshold allowing
	// PixelFPR of their pixels above it (ChoosePixelThreshold).
	ValidMaps [][]float32
	PixelFPR  float64
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
		Size: in.Size, Extractor: in.Extractor, ImgSize: in.ImgSize, Depth16: in.Depth16, TeacherFile: in.TeacherFile,
		ModelFiles: in.ModelFiles,
		NumTrain:   g.N, NumValidation: n,
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
		pt, err := ChoosePixelThreshold(in.ValidMaps, in.PixelFPR)
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

// Verdict is the decision on one image.
type Verdict int

// The verdicts: an image scoring above the threshold is anomalous, and one
// whose score is not a number (NaN or infinite, from a broken model or fit)
// is invalid, never normal.
const (
	VerdictNormal Verdict = iota
	VerdictAnomalous
	VerdictInvalid
)

func (v Verdict) String() string {
	switch v {
	case VerdictNormal:
		return "normal"
	case VerdictAnomalous:
		return "anomalous"
	}
	return "invalid"
}

// Verdict returns the decision for a PUAD score by the fit's threshold.
func (f *FitFile) Verdict(puad float64) Verdict {
	return VerdictAt(puad, f.Threshold.Value)
}

// VerdictAt returns the decision for a PUAD score by the given threshold.
func VerdictAt(puad, threshold float64) Verdict {
	switch {
	case !finite(puad):
		return VerdictInvalid
	case puad > threshold:
		return VerdictAnomalous
	}
	return VerdictNormal
}

// JSONScore is a score as JSON can hold it: nil (written as null) when it
// is NaN or infinite, as the scores of an invalid verdict may be.
func JSONScore(v float64) *float64 {
	if !finite(v) {
		return nil
	}
	return &v
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

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

// validate checks the shapes and values a loaded file must have: every
// field present, the dimensions consistent, every number finite, the
// standard deviations positive.
func (f *FitFile) validate() error {
	if f.Format != FitFormat {
		return &FormatError{Have: f.Format, Want: FitFormat}
	}
	if f.Size == "" || f.Extractor == "" || f.DatasetName == "" || f.Category == "" {
		return errors.New("size, feature extractor, dataset name or category missing")
	}
	if f.ImgSize <= 0 || f.NumTrain < 1 || f.NumValidation < 1 {
		return fmt.Errorf("image size %d, %d training and %d validation images", f.ImgSize, f.NumTrain, f.NumValidation)
	}
	if len(f.ModelFiles) == 0 {
		return errors.New("the model files it was made with are not recorded")
	}
	if err := f.checkGaussian(); err != nil {
		return err
	}
	if err := f.Fusion.Check(); err != nil {
		return err
	}
	return f.checkThreshold()
}

// checkGaussian checks the feature model's shapes and values.
func (f *FitFile) checkGaussian() error {
	p := len(f.Mean)
	if p == 0 || len(f.CovInv) != p {
		return fmt.Errorf("feature mean of %d values but an inverse covariance of %d rows", p, len(f.CovInv))
	}
	if i := nonFinite(f.Mean); i >= 0 {
		return fmt.Errorf("feature mean value %d is %v", i, f.Mean[i])
	}
	for i, row := range f.CovInv {
		if len(row) != p {
			return fmt.Errorf("inverse covariance row %d has %d values, want %d", i, len(row), p)
		}
		if j := nonFinite(row); j >= 0 {
			return fmt.Errorf("inverse covariance value (%d, %d) is %v", i, j, row[j])
		}
	}
	if nonFinite([]float64{f.Shrinkage}) >= 0 {
		return fmt.Errorf("shrinkage %v", f.Shrinkage)
	}
	return nil
}

// checkThreshold checks that the threshold was stored and is a number, and
// so is the pixel threshold when there is one.
func (f *FitFile) checkThreshold() error {
	th := f.Threshold
	if th.NumValidation < 1 {
		return errors.New("no threshold")
	}
	if nonFinite([]float64{th.Value, th.MaxFPR, th.ValidationFPR, th.ExpectedFPR}) >= 0 {
		return fmt.Errorf("threshold %v (max false-positive rate %v) is not a number", th.Value, th.MaxFPR)
	}
	if f.PixelThreshold != nil {
		return f.PixelThreshold.check()
	}
	return nil
}

// nonFinite returns the index of the first NaN or infinity in v, or -1.
func nonFinite(v []float64) int {
	for i, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return i
		}
	}
	return -1
}

// StaleError is returned by FitFile.CheckModelFiles when a model file
// changed since the fit was made (e.g. the student was retrained): the fit's
// statistics no longer describe the model.
type StaleError struct {
	// File is the model file (below the size folder) that differs.
	File string
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("model file %s changed since the PUAD fit was made", e.File)
}

// CheckModelFiles compares the digests of the model's files (as
// models.Layout.FileDigests gives them) with those recorded in the fit; a
// changed, missing or extra file is a *StaleError.
func (f *FitFile) CheckModelFiles(have map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(f.ModelFiles)) {
		if have[name] != f.ModelFiles[name] {
			return &StaleError{File: name}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(have)) {
		if _, ok := f.ModelFiles[name]; !ok {
			return &StaleError{File: name}
		}
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

// MaxFitFileSize is the largest fit file LoadFit reads (a fit of 384
// features takes about 4 MB).
const MaxFitFileSize = 64 << 20

// LoadFit reads a fit file and checks that it was fitted for size and
// extractor (either may be empty to accept any). A missing file is an
// error wrapping ErrNoFit, another layout version one wrapping a
// *FormatError, and a fit of another size or extractor a *MismatchError.
func LoadFit(path, size, extractor string) (*FitFile, error) {
	data, err := readFitFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s", ErrNoFit, path)
	}
	if err != nil {
		return nil, fmt.Errorf("load PUAD fit: %w", err)
	}
	f, err := ParseFit(data)
	if err != nil {
		return nil, fmt.Errorf("load PUAD fit %s: %w", path, err)
	}
	if size != "" && f.Size != size {
		return nil, &MismatchError{Path: path, Field: FieldSize, Have: f.Size, Want: size}
	}
	if extractor != "" && f.Extractor != extractor {
		return nil, &MismatchError{Path: path, Field: FieldExtractor, Have: f.Extractor, Want: extractor}
	}
	return f, nil
}

// readFitFile reads a regular file of at most MaxFitFileSize bytes.
func readFitFile(path string) ([]byte, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if info.Size() > MaxFitFileSize {
		return nil, fmt.Errorf("%s has %d bytes, more than a fit file's %d", path, info.Size(), MaxFitFileSize)
	}
	data, err := io.ReadAll(io.LimitReader(file, MaxFitFileSize+1))
	if err == nil && len(data) > MaxFitFileSize {
		err = fmt.Errorf("%s grew past %d bytes while read", path, MaxFitFileSize)
	}
	return data, err
}

// ParseFit decodes a fit file's content and validates every field (see
// LoadFit); another layout version is a *FormatError.
func ParseFit(data []byte) (*FitFile, error) {
	var f FitFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("not a PUAD fit file: %w", err)
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

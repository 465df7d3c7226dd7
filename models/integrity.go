package models

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"

	"github.com/puad-go/puad/internal/atomicfile"
	tb "github.com/puad-go/puad/torchbind"
)

// ManifestFile lists a category folder's model files with their SHA-256
// digests. Save writes it last, so that a folder whose update was cut short
// is recognised; the reference's own folders have none.
const ManifestFile = "manifest.json"

// manifestFormat is the version of ManifestFile's layout.
const manifestFormat = 1

// manifest is ManifestFile's content. Complete is false while Save is
// replacing the files.
type manifest struct {
	Format   int               `json:"format"`
	Complete bool              `json:"complete"`
	Files    map[string]string `json:"files"`
}

// ErrMixedModel is matched (errors.Is) by the error of a category folder
// whose files are not the set its manifest lists: an update of the folder
// was interrupted, or a file was replaced by hand.
var ErrMixedModel = errors.New("model files do not form one set")

// MixedModelError names the folder and what does not match its manifest.
type MixedModelError struct {
	Dir    string
	Reason string
}

func (e *MixedModelError) Error() string {
	return fmt.Sprintf("model folder %s: %s (%v)", e.Dir, e.Reason, ErrMixedModel)
}

// Is makes errors.Is(err, ErrMixedModel) true.
func (e *MixedModelError) Is(target error) bool { return target == ErrMixedModel }

// HashFile returns the hex SHA-256 digest of a file's content.
func HashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// FileDigests returns the SHA-256 digests of the files LoadEfficientAD reads
// for a category (ModelFiles), keyed by their paths relative to SizeDir
// with forward slashes (e.g. "teacher/teacher.pt").
func (l Layout) FileDigests(datasetName, category string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range l.ModelFiles(datasetName, category) {
		rel, err := filepath.Rel(l.SizeDir(), p)
		if err != nil {
			return nil, err
		}
		if out[filepath.ToSlash(rel)], err = HashFile(p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// beginUpdate marks dir's manifest incomplete before its files are replaced.
func beginUpdate(dir string) error {
	return writeManifest(dir, manifest{Format: manifestFormat, Files: map[string]string{}})
}

// finishUpdate records the digests of dir's CategoryFiles as a complete set.
func finishUpdate(dir string) error {
	mf := manifest{Format: manifestFormat, Complete: true, Files: map[string]string{}}
	for _, name := range CategoryFiles {
		d, err := HashFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		mf.Files[name] = d
	}
	return writeManifest(dir, mf)
}

func writeManifest(dir string, mf manifest) error {
	return atomicfile.WriteJSON(filepath.Join(dir, ManifestFile), mf)
}

// checkManifest verifies that the category's files, whose digests (by
// FileDigests) are given, are the set its manifest lists; a folder without a
// manifest (the reference's) passes. A *MixedModelError says what does not
// match.
func checkManifest(l Layout, datasetName, category string, digests map[string]string) error {
	dir := l.CategoryDir(datasetName, category)
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("model folder %s: %w", dir, err)
	}
	var mf manifest
	if err := json.Unmarshal(data, &mf); err != nil || mf.Format != manifestFormat {
		return &MixedModelError{Dir: dir, Reason: ManifestFile + " is not readable"}
	}
	if !mf.Complete {
		return &MixedModelError{Dir: dir, Reason: "an update of its files did not finish"}
	}
	for _, name := range CategoryFiles {
		want, ok := mf.Files[name]
		if !ok {
			return &MixedModelError{Dir: dir, Reason: fmt.Sprintf("%s does not list %s", ManifestFile, name)}
		}
		if digests[path.Join(datasetName, category, name)] != want {
			return &MixedModelError{Dir: dir, Reason: fmt.Sprintf("%s is not the file written with the others", name)}
		}
	}
	return nil
}

// ErrNonFinite is matched (errors.Is) by the error of a weights file
// holding NaN or infinite values.
var ErrNonFinite = errors.New("non-finite values")

// checkFinite returns an error wrapping ErrNonFinite when t holds a NaN or
// an infinity (x - x is NaN exactly for those).
func checkFinite(t *tb.Tensor, source, key string) error {
	info, err := t.Info()
	if err != nil {
		return err
	}
	if !slices.Contains([]tb.DType{tb.Float32, tb.Float64, tb.Float16, tb.BFloat16}, info.DType) {
		return nil
	}
	s := tb.NewScope()
	defer s.Close()
	bad := s.T(tb.Any(s.T(tb.IsNaN(s.T(tb.Sub(t, t)))), nil, false))
	if err := s.Err(); err != nil {
		return fmt.Errorf("%s: key %q: %w", source, key, err)
	}
	v, err := bad.Item()
	if err != nil {
		return fmt.Errorf("%s: key %q: %w", source, key, err)
	}
	if v != 0 {
		if key == "" {
			return fmt.Errorf("%s: %w", source, ErrNonFinite)
		}
		return fmt.Errorf("%s: key %q: %w", source, key, ErrNonFinite)
	}
	return nil
}

// checkQuantiles refuses quantiles that are not finite or that would make
// the map normalisation divide by zero or flip (q_b <= q_a).
func checkQuantiles(source string, q map[string]float64) error {
	for _, k := range QuantileKeys {
		if v := q[k]; math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s: key %q is %v: %w", source, k, v, ErrNonFinite)
		}
	}
	for _, p := range [][2]string{{QuantileStudentA, QuantileStudentB}, {QuantileAutoEncoderA, QuantileAutoEncoderB}} {
		if !(q[p[1]] > q[p[0]]) {
			return fmt.Errorf("%s: %s = %v is not above %s = %v: the anomaly map cannot be normalised", source, p[1], q[p[1]], p[0], q[p[0]])
		}
	}
	return nil
}

// CheckImgSize returns an error unless the networks can be built for
// size×size inputs: at least 128 pixels, with the autoencoder's output the
// size of the PDN's (multiples of 4 work; the reference uses 256).
func CheckImgSize(size int) error {
	if size < MinImgSize || size > MaxImgSize || PDNOutputSize(size) != AutoEncoderOutputSize(size) {
		return fmt.Errorf("image size %d: the networks need %d to %d pixels with the autoencoder's output the size of the PDN's (multiples of 4 work; the reference uses 256)", size, MinImgSize, MaxImgSize)
	}
	return nil
}

// The image sizes CheckImgSize accepts.
const (
	MinImgSize = 128
	MaxImgSize = 4096
)

// PDNOutputSize is the output side of an unpadded PDN (S or M) on
// size×size images, and AutoEncoderOutputSize the autoencoder's.
func PDNOutputSize(size int) int { return ((size-3)/2-3)/2 - 2 - 3 }

// AutoEncoderOutputSize is the side of the autoencoder's output on size×size
// images before it is resized (see PDNOutputSize).
func AutoEncoderOutputSize(size int) int { return size/4 - 8 }

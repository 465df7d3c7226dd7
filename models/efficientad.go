package models

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	tb "github.com/puad-go/puad/torchbind"
)

// Layout is the reference's model directory:
//
//	<Root>/<size>_size/teacher/{teacher.pt, mu.pt, sigma.pt}
//	<Root>/<size>_size/<dataset_name>/<category>/{student.pt, autoencoder.pt, mu.pt, sigma.pt, quantile.pt, results.txt}
type Layout struct {
	Root string
	Size Size
}

// SizeDir is <Root>/<size>_size.
func (l Layout) SizeDir() string { return filepath.Join(l.Root, string(l.Size)+"_size") }

// TeacherDir is where the teacher and the ImageNet feature statistics live.
func (l Layout) TeacherDir() string { return filepath.Join(l.SizeDir(), "teacher") }

// CategoryDir is where a category's student, autoencoder and statistics live.
func (l Layout) CategoryDir(datasetName, category string) string {
	return filepath.Join(l.SizeDir(), datasetName, category)
}

// ModelFiles are the paths of the files LoadEfficientAD reads for a
// category: the teacher, then CategoryFiles in their order.
func (l Layout) ModelFiles(datasetName, category string) []string {
	files := []string{l.TeacherPath()}
	for _, f := range CategoryFiles {
		files = append(files, filepath.Join(l.CategoryDir(datasetName, category), f))
	}
	return files
}

// MissingFiles are the paths of ModelFiles that do not exist.
func (l Layout) MissingFiles(datasetName, category string) []string {
	return missingFiles(l.ModelFiles(datasetName, category))
}

// missingFiles are the paths of files that do not exist.
func missingFiles(files []string) []string {
	var missing []string
	for _, f := range files {
		if _, err := os.Stat(f); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, f)
		}
	}
	return missing
}

// EfficientAD is a trained EfficientAD model of one category: the networks,
// the teacher-output statistics (mu, sigma) of the category, and the
// quantiles that normalise the two anomaly maps. Tensors live on Device.
type EfficientAD struct {
	Size        Size
	ImgSize     int64
	Device      tb.Device
	Teacher     *PDN
	Student     *PDN
	AutoEncoder *AutoEncoder
	// Mu and Sigma are [384] float32: the per-channel mean and std of the
	// teacher's output on the category's training images.
	Mu, Sigma *tb.Tensor
	// Quantiles holds q_a_student, q_b_student, q_a_autoencoder and
	// q_b_autoencoder as 0-d float32 tensors.
	Quantiles map[string]*tb.Tensor
	// TeacherFile is the teacher's state dict when it was loaded from
	// another file than the model directory's teacher.pt (ModelRef).
	TeacherFile string
	// Digests are the SHA-256 digests of the files LoadEfficientAD read
	// (Layout.FileDigests); nil for a model built in memory.
	Digests map[string]string
}

// NewEfficientAD allocates the networks of a model of the given size (no tensors yet).
func NewEfficientAD(size Size, imgSize int64, dev tb.Device) (*EfficientAD, error) {
	teacher, err := NewPDN(size, TeacherChannels, false)
	if err != nil {
		return nil, err
	}
	student, err := NewPDN(size, 2*TeacherChannels, false)
	if err != nil {
		return nil, err
	}
	return &EfficientAD{
		Size: size, ImgSize: imgSize, Device: dev,
		Teacher: teacher, Student: student,
		AutoEncoder: NewAutoEncoder(TeacherChannels, imgSize, false),
		Quantiles:   map[string]*tb.Tensor{},
	}, nil
}

// Close frees every tensor of the model.
func (m *EfficientAD) Close() {
	if m == nil {
		return
	}
	Close(m.Teacher)
	Close(m.Student)
	Close(m.AutoEncoder)
	m.Mu.Close()
	m.Sigma.Close()
	for _, q := range m.Quantiles {
		q.Close()
	}
	m.Mu, m.Sigma, m.Quantiles = nil, nil, map[string]*tb.Tensor{}
}

// LoadEfficientAD loads a category's model from a reference model directory:
// the teacher from <root>/<size>_size/teacher/teacher.pt and the rest from
// <root>/<size>_size/<datasetName>/<category>/. Missing or mismatched files
// are reported by name, key and shape (a *ShapeError for a tensor of
// another shape).
func LoadEfficientAD(root string, size Size, datasetName, category string, imgSize int64, dev tb.Device) (*EfficientAD, error) {
	return ModelRef{Root: root, Size: size, DatasetName: datasetName, Category: category}.Load(imgSize, dev)
}

// ModelRef names a category's model in a model directory (see Layout).
type ModelRef struct {
	Root                  string
	Size                  Size
	DatasetName, Category string
	// TeacherFile, when set, is the teacher to use instead of the model
	// directory's teacher.pt: a state dict in any TeacherLayout.
	TeacherFile string
}

// files are the paths of the files Load reads: the teacher, then
// CategoryFiles in their order.
func (r ModelRef) files() []string {
	files := Layout{Root: r.Root, Size: r.Size}.ModelFiles(r.DatasetName, r.Category)
	if r.TeacherFile != "" {
		files[0] = r.TeacherFile
	}
	return files
}

// Load reads the model r names for images of imgSize pixels onto dev, as
// LoadEfficientAD describes; a TeacherFile in a layout other than the
// reference's is converted on the way (a *TeacherKeyError when it is in none).
func (r ModelRef) Load(imgSize int64, dev tb.Device) (*EfficientAD, error) {
	files := r.files()
	var missing []error
	for _, f := range missingFiles(files) {
		missing = append(missing, fmt.Errorf("missing model file %s", f))
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("model directory %s (size %s, %s/%s): %w", r.Root, r.Size, r.DatasetName, r.Category, errors.Join(missing...))
	}
	l := Layout{Root: r.Root, Size: r.Size}
	digests, err := l.FileDigests(r.DatasetName, r.Category)
	if err != nil {
		return nil, err
	}
	if err := checkManifest(l, r.DatasetName, r.Category, digests); err != nil {
		return nil, err
	}
	m, err := NewEfficientAD(r.Size, imgSize, dev)
	if err != nil {
		return nil, err
	}
	m.Digests = digests
	ok := false
	defer func() {
		if !ok {
			m.Close()
		}
	}()
	if r.TeacherFile != "" {
		t, _, err := LoadTeacher(r.TeacherFile, r.Size, dev)
		if err != nil {
			return nil, err
		}
		Close(m.Teacher)
		m.Teacher = t
		if m.TeacherFile, err = filepath.Abs(r.TeacherFile); err != nil {
			return nil, err
		}
	} else if err := loadModuleFile(m.Teacher, files[0], dev); err != nil {
		return nil, err
	}
	for i, mod := range []Module{m.Student, m.AutoEncoder} {
		if err := loadModuleFile(mod, files[i+1], dev); err != nil {
			return nil, err
		}
	}
	if m.Mu, err = loadVector(files[3], TeacherChannels, dev); err != nil {
		return nil, err
	}
	if m.Sigma, err = loadVector(files[4], TeacherChannels, dev); err != nil {
		return nil, err
	}
	if m.Quantiles, err = loadQuantiles(files[5], dev); err != nil {
		return nil, err
	}
	ok = true
	return m, nil
}

// loadQuantiles reads QuantileFile's scalars (checkQuantiles) onto dev.
func loadQuantiles(path string, dev tb.Device) (_ map[string]*tb.Tensor, err error) {
	sd, err := tb.LoadStateDict(path)
	if err != nil {
		return nil, err
	}
	defer sd.Close()
	out := map[string]*tb.Tensor{}
	defer func() {
		if err != nil {
			for _, t := range out {
				t.Close()
			}
		}
	}()
	values := map[string]float64{}
	for _, k := range QuantileKeys {
		t, found := sd.Tensors[k]
		if !found {
			return nil, fmt.Errorf("%s: missing key %q", path, k)
		}
		if n := t.Numel(); n != 1 {
			return nil, fmt.Errorf("%s: key %q: expected a scalar, found shape %v", path, k, t.Shape())
		}
		q, err := t.To(dev, tb.Float32)
		if err != nil {
			return nil, fmt.Errorf("%s: key %q: %w", path, k, err)
		}
		out[k] = q
		if values[k], err = q.Item(); err != nil {
			return nil, fmt.Errorf("%s: key %q: %w", path, k, err)
		}
	}
	if err := checkQuantiles(path, values); err != nil {
		return nil, err
	}
	return out, nil
}

func loadModuleFile(m Module, path string, dev tb.Device) error {
	sd, err := tb.LoadStateDict(path)
	if err != nil {
		return err
	}
	defer sd.Close()
	return LoadStateDict(m, sd, dev, path)
}

func loadVector(path string, n int64, dev tb.Device) (*tb.Tensor, error) {
	t, err := tb.LoadTensor(path)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	if shape := t.Shape(); len(shape) != 1 || shape[0] != n {
		return nil, &ShapeError{File: path, Want: []int64{n}, Got: shape}
	}
	if err := checkFinite(t, path, ""); err != nil {
		return nil, err
	}
	return t.To(dev, tb.Float32)
}

// Save writes the category's files (student.pt, autoencoder.pt, mu.pt,
// sigma.pt, quantile.pt) into dir, each atomically, in the reference's
// format, as one set: ManifestFile is marked incomplete first and lists the
// files' digests last, so that LoadEfficientAD refuses a folder whose
// update was cut short.
func (m *EfficientAD) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := beginUpdate(dir); err != nil {
		return err
	}
	if err := m.saveFiles(dir); err != nil {
		return err
	}
	return finishUpdate(dir)
}

// saveFiles writes the category's files into dir (see Save).
func (m *EfficientAD) saveFiles(dir string) error {
	for name, mod := range map[string]Module{StudentFile: m.Student, AutoEncoderFile: m.AutoEncoder} {
		sd, err := StateDict(mod)
		if err != nil {
			return err
		}
		err = tb.SaveStateDict(filepath.Join(dir, name), sd)
		sd.Close()
		if err != nil {
			return err
		}
	}
	if err := tb.SaveTensor(filepath.Join(dir, MuFile), m.Mu); err != nil {
		return err
	}
	if err := tb.SaveTensor(filepath.Join(dir, SigmaFile), m.Sigma); err != nil {
		return err
	}
	q := tb.NewStateDict()
	defer func() {
		// The tensors belong to m; take them back out before q is dropped.
		for _, k := range QuantileKeys {
			q.Take(k)
		}
	}()
	for _, k := range QuantileKeys {
		t, found := m.Quantiles[k]
		if !found {
			return fmt.Errorf("save %s: quantile %q not computed", dir, k)
		}
		q.Set(k, t)
	}
	return tb.SaveStateDict(filepath.Join(dir, QuantileFile), q)
}

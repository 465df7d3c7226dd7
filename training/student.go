package training

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"sync"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/datasets/refsplit"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// StudentConfig configures TrainStudent. Zero values take the reference's
// defaults.
type StudentConfig struct {
	// ImageNetDir is an ImageNet-style folder for the student's ImageNet
	// penalty; "" disables the penalty (a warning says so on Log).
	ImageNetDir string
	// DatasetDir is the dataset folder (a category in the MVTec layout or a
	// plain folder of good images, see datasets.OpenFor) and ModelDir the
	// model directory; the teacher is read from <ModelDir>/<size>_size/teacher/
	// and the results go to <ModelDir>/<size>_size/<dataset>/<category>/
	// (<ModelDir>/<size>_size/custom/<name>/ for a plain folder).
	DatasetDir, ModelDir string
	// Name names a plain folder's model (empty: the folder's name).
	Name string
	// TeacherFile, when set, is the teacher to train against, in any
	// models.TeacherLayout; it is written to the model directory's teacher
	// folder in the reference layout (ErrTeacherConflict when another
	// teacher is there).
	TeacherFile string
	Size        models.Size
	// Iterations (70000), BatchSize (1: the reference's) and ImgSize (256).
	Iterations, BatchSize, ImgSize int
	// Seed selects every random stream of the run.
	Seed uint64
	// ReferenceRNG draws every random number from one CPU generator seeded
	// with Seed, in the order of the reference's
	// train_student_and_autoencoder run after torch.manual_seed(Seed) (see
	// refrng.go); CPU only (ErrReferenceRNGDevice). Off, the run draws from
	// its own streams.
	ReferenceRNG bool
	Device       tb.Device
	// CheckpointEvery saves a checkpoint every that many iterations (0: only
	// when interrupted); Resume continues from the checkpoint.
	CheckpointEvery int
	Resume          bool
	Progress        Progress
	// Log receives information and warnings, one line each (nil: discarded).
	Log io.Writer
	// Workers decode images in parallel (runtime.NumCPU() when 0).
	Workers int

	// decode is how the dataset's images are decoded (set by TrainStudent).
	decode datasets.DecodeOptions
	// Precision of the training steps' networks ("": float32): with BF16
	// or FP16 the convolutions run in that type on copies of the weights
	// cast at each step, while the losses, the optimiser and its float32
	// master weights, the category statistics and the quantiles stay
	// float32. FP16 (CUDA only) scales the loss dynamically (lossScaler).
	Precision models.Precision
	// lossScale, when not 0, scales the loss from this initial scale in any
	// precision (tests).
	lossScale float32
}

func (c *StudentConfig) fillDefaults() {
	orDefault(&c.Iterations, DefaultStudentIterations)
	orDefault(&c.BatchSize, DefaultStudentBatchSize)
	orDefault(&c.ImgSize, DefaultImgSize)
	orDefault(&c.Size, models.Small)
	defaultSinks(&c.Progress, &c.Log)
}

// StudentResult is the outcome of TrainStudent.
type StudentResult struct {
	// Dir is the category's model folder.
	Dir string
	// Dataset is the category trained on (its test images are for the
	// caller to score).
	Dataset *datasets.Dataset
	// FinalLoss is the total loss of the last iteration (NaN when there was none).
	FinalLoss float64
}

// Losses are the terms of one student/autoencoder iteration.
type Losses struct {
	Total     float64 // Hard + Penalty + AE + StudentAE
	Hard      float64 // hard-feature loss of the student against the teacher
	Penalty   float64 // ImageNet penalty (0 when disabled)
	AE        float64 // autoencoder against the teacher
	StudentAE float64 // student's second half against the autoencoder
}

// pdnOutputSize is the output size of an unpadded PDN (S or M) on
// size×size images, and aeOutputSize the autoencoder's; training needs them
// equal (models.CheckImgSize).
func pdnOutputSize(size int) int { return models.PDNOutputSize(size) }
func aeOutputSize(size int) int  { return models.AutoEncoderOutputSize(size) }

// studentRunConfig is what a student checkpoint must agree on to be resumed.
type studentRunConfig struct {
	Size       string `json:"size"`
	Iterations int    `json:"iterations"`
	BatchSize  int    `json:"batch_size"`
	ImgSize    int    `json:"img_size"`
	Seed       uint64 `json:"seed"`
	Train      int    `json:"train_images"`
	ImageNet   int    `json:"imagenet_images"`
	// ReferenceRNG is left out when off, as in checkpoints of earlier versions.
	ReferenceRNG bool `json:"reference_rng,omitempty"`
}

// learningRate is the reference's schedule: 1e-4, and 1e-5 after the
// iteration at 95% (after iteration 66500 of 70000, counting from 0).
func lrAt(iteration, total int) float64 {
	if iteration > total*95/100 {
		return finalLearningRate
	}
	return learningRate
}

func (c *StudentConfig) validate() error {
	if _, err := models.ParseSize(string(c.Size)); err != nil {
		return err
	}
	if c.Iterations < 0 || c.BatchSize < 1 || c.BatchSize > MaxBatchSize || c.CheckpointEvery < 0 {
		return fmt.Errorf("train student: invalid settings (iterations %d, batch size %d, checkpoint every %d)", c.Iterations, c.BatchSize, c.CheckpointEvery)
	}
	if err := checkTrainingPrecision(c.Precision, c.Device); err != nil {
		return err
	}
	if err := models.CheckImgSize(c.ImgSize); err != nil {
		return fmt.Errorf("train student: %w", err)
	}
	return checkReferenceDevice(c.ReferenceRNG, c.Device)
}

// TrainStudent trains the student and the autoencoder of one category as
// the reference's train_student_and_autoencoder does, computes the
// quantiles of the validation maps, writes the category's student.pt,
// autoencoder.pt, mu.pt, sigma.pt and quantile.pt, and keeps a loss log
// (train_loss.csv). Scoring the test set (the reference's results.txt) is
// left to the caller.
func TrainStudent(ctx context.Context, cfg StudentConfig) (*StudentResult, error) {
	cfg.fillDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ds, err := datasets.OpenFor(cfg.DatasetDir, refsplit.Perm, datasets.NeedTrain, cfg.Name)
	if err != nil {
		return nil, err
	}
	cfg.decode = ds.Decode
	layout := models.Layout{Root: cfg.ModelDir, Size: cfg.Size}
	if cfg.TeacherFile != "" {
		if err := installTeacher(cfg.TeacherFile, layout, cfg.Log); err != nil {
			return nil, err
		}
	}
	if !exists(layout.TeacherPath()) {
		return nil, newRunError(ErrNoTeacher, "before training the student, the teacher must have been trained: no %s", layout.TeacherPath())
	}
	dir := layout.CategoryDir(ds.DatasetName, ds.Category)
	resume, err := resumeFrom(dir, cfg.Resume, cfg.Log)
	if err != nil {
		return nil, err
	}
	imagenet, err := penaltyImages(cfg)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var ref *tb.Generator // the reference random stream, if asked for
	if cfg.ReferenceRNG {
		if ref, err = newReferenceStream(cfg.Seed, cfg.Device); err != nil {
			return nil, err
		}
		defer ref.Close()
	}
	m, err := newStudentModel(cfg, layout.TeacherPath(), ref)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	finalLoss, err := trainStudent(ctx, cfg, resume, m, ds, imagenet, ref)
	if err != nil {
		return nil, err
	}
	return &StudentResult{Dir: dir, Dataset: ds, FinalLoss: finalLoss}, nil
}

// penaltyImages lists the ImageNet images of the student's penalty (none,
// with a warning, when there is no ImageNet folder).
func penaltyImages(cfg StudentConfig) ([]string, error) {
	if cfg.ImageNetDir == "" {
		fmt.Fprintln(cfg.Log, "warning: no ImageNet folder: training without the ImageNet penalty (the reference uses it)")
		return nil, nil
	}
	_, items, err := datasets.ImageFolder(cfg.ImageNetDir)
	if err != nil {
		return nil, fmt.Errorf("ImageNet folder: %w", err)
	}
	paths := make([]string, len(items))
	for i, it := range items {
		paths[i] = it.Path
	}
	return paths, nil
}

// newStudentModel returns the model to train: the trained teacher and the
// initial student and autoencoder, on the device. With the reference random
// stream ref (not nil), the networks draw their initial weights from it as
// the reference builds them: the teacher (whose weights are then loaded),
// the student, the autoencoder.
func newStudentModel(cfg StudentConfig, teacherPath string, ref *tb.Generator) (_ *models.EfficientAD, err error) {
	m, err := models.NewEfficientAD(cfg.Size, int64(cfg.ImgSize), cfg.Device)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	if ref != nil {
		err = models.InitReference(m.Teacher, ref)
	}
	if err == nil {
		err = loadModule(m.Teacher, teacherPath, cfg.Device)
	}
	if err != nil {
		return nil, err
	}
	if ref != nil {
		if err = models.InitReference(m.Student, ref); err == nil {
			err = models.InitReference(m.AutoEncoder, ref)
		}
	} else {
		err = initModules(cfg.Seed, m.Student, m.AutoEncoder)
	}
	if err != nil {
		return nil, err
	}
	for _, mod := range []models.Module{m.Student, m.AutoEncoder} {
		if err := models.To(mod, cfg.Device); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// studentStreams are the random streams of a student run: the run's data
// and dropout streams, or the reference random stream ref for both.
type studentStreams struct {
	data, dropout *tb.Generator
	ref           *tb.Generator
}

func newStudentStreams(cfg StudentConfig, ref *tb.Generator) (studentStreams, error) {
	if ref != nil {
		return studentStreams{data: ref, dropout: ref, ref: ref}, nil
	}
	data, err := newStream(cfg.Seed, streamData, tb.CPU)
	if err != nil {
		return studentStreams{}, err
	}
	drop, err := newStream(cfg.Seed, streamDropout, cfg.Device)
	if err != nil {
		data.Close()
		return studentStreams{}, err
	}
	return studentStreams{data: data, dropout: drop}, nil
}

// Close frees the run's own streams (ref belongs to the caller).
func (s studentStreams) Close() {
	if s.ref == nil {
		s.data.Close()
		s.dropout.Close()
	}
}

// setup returns the data stream and the other streams as openRun takes
// them: with the reference random stream, every draw comes from ref,
// which the checkpoints keep as it is after each step.
func (s studentStreams) setup() (*tb.Generator, map[string]*tb.Generator) {
	if s.ref != nil {
		return nil, map[string]*tb.Generator{streamReference: s.ref}
	}
	return s.data, map[string]*tb.Generator{streamDropout: s.dropout}
}

// trainStudent runs the training loop, then computes the quantiles and
// saves the model; it returns the last iteration's loss.
func trainStudent(ctx context.Context, cfg StudentConfig, resume bool, m *models.EfficientAD, ds *datasets.Dataset, imagenet []string, ref *tb.Generator) (float64, error) {
	rs, err := newStudentStreams(cfg, ref)
	if err != nil {
		return 0, err
	}
	defer rs.Close()
	m.AutoEncoder.Gen = rs.dropout
	m.AutoEncoder.Training = true
	data, streams := rs.setup()
	r, err := openRun(runSetup{
		dir: models.Layout{Root: cfg.ModelDir, Size: cfg.Size}.CategoryDir(ds.DatasetName, ds.Category), resume: resume,
		config: studentRunConfig{
			Size: string(cfg.Size), Iterations: cfg.Iterations, BatchSize: cfg.BatchSize, ImgSize: cfg.ImgSize,
			Seed: cfg.Seed, Train: len(ds.Train), ImageNet: len(imagenet), ReferenceRNG: cfg.ReferenceRNG,
		},
		modules: []namedModule{{"student", m.Student}, {"autoencoder", m.AutoEncoder}},
		params: func() []*tb.Tensor {
			return append(models.Parameters(m.AutoEncoder), models.Parameters(m.Student)...)
		},
		data: data, streams: streams,
		logHeader: "iteration,loss_total,loss_hard,loss_penalty,loss_ae,loss_student_ae,lr",
		total:     cfg.Iterations, dev: cfg.Device, log: cfg.Log,
	})
	if err != nil {
		return 0, err
	}
	defer r.Close()
	if err := categoryStats(ctx, r, m, ds.Train, cfg, ref); err != nil {
		return 0, err
	}
	step, err := newStudentStep(m, r.opt, cfg.Precision)
	if err != nil {
		return 0, err
	}
	defer step.Close()
	if step.scaler, err = runLossScaler(r, cfg.Precision, cfg.lossScale, cfg.Device, cfg.Log); err != nil {
		return 0, err
	}
	sd := &studentData{train: ds.Train, imagenet: imagenet, size: cfg.ImgSize, batch: cfg.BatchSize, gen: rs.data, reference: ref != nil, next: r.start, total: cfg.Iterations}
	sd.cache.init(len(ds.Train), cfg.ImgSize, cfg.decode)
	if err := trainLoop(ctx, r, step.iterations(cfg, sd)); err != nil {
		return 0, err
	}
	if err := finishStudent(ctx, r, m, ds.Valid, cfg); err != nil {
		return 0, err
	}
	return r.lastLoss, nil
}

// categoryStats sets the model's Mu and Sigma: from the checkpoint when the
// run resumes, else from the teacher's outputs on the training images. They
// go into every checkpoint. With the reference random stream ref (not nil),
// computing them draws what the reference's pass draws: its training
// transform's RandomAugment for every training image, in order.
func categoryStats(ctx context.Context, r *run, m *models.EfficientAD, train []string, cfg StudentConfig, ref *tb.Generator) error {
	if r.resumed {
		m.Mu, m.Sigma = r.take("mu"), r.take("sigma")
		if m.Mu == nil || m.Sigma == nil {
			return newRunError(ErrCheckpointMismatch, "checkpoint %s: no teacher statistics", r.ckptPath)
		}
	} else {
		for i := 0; ref != nil && i < len(train); i++ {
			if _, err := drawAugment(ref); err != nil {
				return err
			}
		}
		var err error
		if m.Mu, m.Sigma, err = teacherOutputStats(ctx, m.Teacher, train, cfg); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted while computing the teacher statistics: %w", err)
			}
			return err
		}
	}
	r.extra = map[string]*tb.Tensor{"mu": m.Mu, "sigma": m.Sigma}
	return nil
}

// finishStudent computes the quantiles of the trained model, saves it and
// removes the checkpoint. An interruption here saves a checkpoint of the
// last iteration (unless there is one): resuming goes straight to these steps.
func finishStudent(ctx context.Context, r *run, m *models.EfficientAD, valid []string, cfg StudentConfig) error {
	m.AutoEncoder.Training = false
	for _, mod := range []models.Module{m.Student, m.AutoEncoder} {
		if err := models.SetRequiresGrad(mod, false); err != nil {
			return err
		}
	}
	q, err := validationQuantiles(ctx, m, valid, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return r.interrupted(ctx, cfg.Iterations)
		}
		return err
	}
	m.Quantiles = q
	if err := m.Save(r.dir); err != nil {
		return err
	}
	return r.finish()
}

// iterations describes the student's training iterations.
func (s *studentStep) iterations(cfg StudentConfig, data *studentData) schedule[studentJob, studentBatch] {
	return schedule[studentJob, studentBatch]{
		total: cfg.Iterations, next: data.draw, load: data.load, workers: cfg.Workers,
		dataState: func(j studentJob) []byte { return j.rng },
		lr:        func(i int) float64 { return lrAt(i, cfg.Iterations) },
		step: func(b studentBatch, j studentJob) ([]float64, error) {
			l, err := s.stepSlices(b, int64(cfg.ImgSize))
			return []float64{l.Total, l.Hard, l.Penalty, l.AE, l.StudentAE}, err
		},
		stage: StageTrain, progress: cfg.Progress,
		// With checkpoints on, one after the last iteration lets a killed
		// computation of the quantiles resume without training again.
		every: cfg.CheckpointEvery, atEnd: cfg.CheckpointEvery > 0,
		// The reference random stream goes on with the step's dropout.
		shared: data.sharedStream(),
	}
}

func loadModule(m models.Module, path string, dev tb.Device) error {
	sd, err := tb.LoadStateDict(path)
	if err != nil {
		return err
	}
	defer sd.Close()
	return models.LoadStateDict(m, sd, dev, path)
}

// studentJob is what one iteration draws: per image of the batch, a
// training image, its augmentation, and an ImageNet image with its
// grayscale decision; and the data stream's state after the draws.
type studentJob struct {
	train    []int
	aug      []Augment
	imagenet []int
	gray     []bool
	rng      []byte
}

// studentBatch holds one iteration's inputs as normalised CHW values,
// images one after the other.
type studentBatch struct {
	train, aug, imagenet []float32
}

// studentData draws and loads the inputs of the iterations.
type studentData struct {
	train, imagenet []string
	size, batch     int
	gen             *tb.Generator
	// reference draws as the reference's data loaders and transforms do
	// (drawReference), from gen, the reference random stream.
	reference   bool
	next, total int
	cache       imageCache
}

// draw makes the random decisions of the next iteration, in a fixed order:
// for each image of the batch, a training image (uniform), the augmentation
// (kind uniform in 1..3, then the factor), an ImageNet image (uniform) and
// whether it is converted to grayscale (p = 0.3).
func (d *studentData) draw() (studentJob, bool, error) {
	if d.next >= d.total {
		return studentJob{}, false, nil
	}
	d.next++
	if d.reference {
		j, err := d.drawReference()
		return j, err == nil, err
	}
	var j studentJob
	for b := 0; b < d.batch; b++ {
		k, err := randInt(d.gen, 0, int64(len(d.train)))
		if err != nil {
			return j, false, err
		}
		a, err := drawAugment(d.gen)
		if err != nil {
			return j, false, err
		}
		j.train = append(j.train, int(k))
		j.aug = append(j.aug, a)
		if len(d.imagenet) > 0 {
			k, err := randInt(d.gen, 0, int64(len(d.imagenet)))
			if err != nil {
				return j, false, err
			}
			g, err := drawGrayscale(d.gen, imagenetGrayscaleP)
			if err != nil {
				return j, false, err
			}
			j.imagenet = append(j.imagenet, int(k))
			j.gray = append(j.gray, g)
		}
	}
	var err error
	j.rng, err = d.gen.State()
	return j, true, err
}

// sharedStream is the stream the draws share with the steps: the reference
// random stream (nil: the run's data stream, used by the draws alone).
func (d *studentData) sharedStream() *tb.Generator {
	if d.reference {
		return d.gen
	}
	return nil
}

// drawReference makes the draws of one iteration of the reference:
// next(iter(...)) of the training loader (loaderBatch), RandomAugment for
// each image of the batch, then next(iter(...)) of the ImageNet loader and
// RandomGrayscale(0.3) for each of its images. The job keeps no stream
// state: the stream goes on with the step's dropout masks.
func (d *studentData) drawReference() (studentJob, error) {
	var j studentJob
	var err error
	if j.train, err = loaderBatch(d.gen, len(d.train), d.batch); err != nil {
		return j, err
	}
	for range j.train {
		a, err := drawAugment(d.gen)
		if err != nil {
			return j, err
		}
		j.aug = append(j.aug, a)
	}
	if len(d.imagenet) == 0 {
		return j, nil
	}
	if j.imagenet, err = loaderBatch(d.gen, len(d.imagenet), d.batch); err != nil {
		return j, err
	}
	for range j.imagenet {
		g, err := drawGrayscale(d.gen, imagenetGrayscaleP)
		if err != nil {
			return j, err
		}
		j.gray = append(j.gray, g)
	}
	return j, nil
}

// load decodes and transforms the images of a job.
func (d *studentData) load(j studentJob) (studentBatch, error) {
	var b studentBatch
	for i, k := range j.train {
		img, err := d.cache.get(k, d.train[k], d.size)
		if err != nil {
			return b, err
		}
		chw := datasets.ToTensor(img)
		x, aug, err := studentInputs(chw, j.aug[i], d.size)
		if err != nil {
			return b, err
		}
		b.train = append(b.train, x...)
		b.aug = append(b.aug, aug...)
	}
	for i, k := range j.imagenet {
		x, err := imagenetInput(d.imagenet[k], j.gray[i], d.size)
		if err != nil {
			return b, err
		}
		b.imagenet = append(b.imagenet, x...)
	}
	return b, nil
}

// studentInputs are the reference's two training inputs of an image given
// as ToTensor values: normalize(img) and normalize(augment(img)).
func studentInputs(chw []float32, a Augment, size int) (x, aug []float32, err error) {
	aug, err = augmentSlice(a, chw, size)
	if err != nil {
		return nil, nil, err
	}
	x = append([]float32(nil), chw...)
	datasets.Normalize(x, datasets.ImageNetMean, datasets.ImageNetStd)
	return x, aug, nil
}

// imagenetInput is the reference's ImageNet transform of the penalty:
// Resize((512, 512)), RandomGrayscale(0.3), CenterCrop(size), ToTensor,
// Normalize.
func imagenetInput(path string, gray bool, size int) ([]float32, error) {
	img, err := datasets.DecodeFile(path)
	if err != nil {
		return nil, err
	}
	if img.W == 0 || img.H == 0 {
		return nil, fmt.Errorf("decode %s: empty image", path)
	}
	img = datasets.Resize(img, 512, 512)
	if gray {
		img = Grayscale(img)
	}
	return datasets.ToNormalizedTensor(CenterCrop(img, size, size)), nil
}

// imageCache keeps the resized training images (when they fit in
// maxCacheBytes), so that each is decoded once.
type imageCache struct {
	mu     sync.Mutex
	on     bool
	imgs   map[int]datasets.RGB
	decode datasets.DecodeOptions
}

const maxCacheBytes = 1 << 30

func (c *imageCache) init(n, size int, decode datasets.DecodeOptions) {
	c.on = int64(n)*int64(3*size*size) <= maxCacheBytes
	c.imgs = map[int]datasets.RGB{}
	c.decode = decode
}

func (c *imageCache) get(k int, path string, size int) (datasets.RGB, error) {
	c.mu.Lock()
	img, ok := c.imgs[k]
	c.mu.Unlock()
	if ok {
		return img, nil
	}
	img, err := c.decode.LoadRGB(path, size)
	if err != nil {
		return img, err
	}
	if c.on {
		c.mu.Lock()
		c.imgs[k] = img
		c.mu.Unlock()
	}
	return img, nil
}

// studentStep is one iteration of student and autoencoder training.
type studentStep struct {
	m   *models.EfficientAD
	opt *tb.Adam
	dev tb.Device
	// prec is the networks' precision; teacher is m.Teacher in it (a copy
	// cast once, since the teacher does not learn).
	prec    models.Precision
	teacher *models.PDN
	// scaler scales the loss (nil: no scaling).
	scaler *lossScaler
}

// newStudentStep prepares the steps of a run in precision p.
func newStudentStep(m *models.EfficientAD, opt *tb.Adam, p models.Precision) (*studentStep, error) {
	s := &studentStep{m: m, opt: opt, dev: m.Device, prec: p, teacher: m.Teacher}
	if p == models.FP32 || p == "" {
		return s, nil
	}
	err := tb.NoGrad(func() error {
		var err error
		s.teacher, err = m.Teacher.Cast(models.NetTeacher, p)
		return err
	})
	return s, err
}

// Close frees the teacher's copy, if any, and the loss scale.
func (s *studentStep) Close() {
	if s.teacher != nil && s.teacher != s.m.Teacher {
		models.Close(s.teacher)
	}
	s.teacher = nil
	s.scaler.Close()
	s.scaler = nil
}

// checkTrainingPrecision refuses what the device cannot run.
func checkTrainingPrecision(p models.Precision, dev tb.Device) error {
	return p.Check(dev)
}

// normalizedTeacher is the normalised teacher output (float32), without
// gradient, of x in the step's precision.
func (s *studentStep) normalizedTeacher(sc *tb.Scope, x *tb.Tensor) *tb.Tensor {
	var out *tb.Tensor
	sc.Fail(tb.NoGrad(func() error {
		out = sc.T(s.m.NormalizeTeacher(sc.T(s.prec.Forward(s.teacher, x))))
		return nil
	}))
	return out
}

// stepNets returns the student and autoencoder one step runs: the model's
// own in float32, else copies cast from them, through which the gradients
// reach the float32 weights. release frees the copies.
func (s *studentStep) stepNets() (student, ae models.Network, release func(), err error) {
	if s.prec == models.FP32 || s.prec == "" {
		return s.m.Student, s.m.AutoEncoder, func() {}, nil
	}
	st, err := s.m.Student.Cast(models.NetStudent, s.prec)
	if err != nil {
		return nil, nil, nil, err
	}
	a, err := s.m.AutoEncoder.Cast(s.m.Size, s.prec)
	if err != nil {
		models.Close(st)
		return nil, nil, nil, err
	}
	return st, a, func() { models.Close(st); models.Close(a) }, nil
}

// backward computes the losses of one iteration on the training images
// xTrain, their augmented versions xAug and the ImageNet images xImg (nil:
// no penalty), zeroes and fills the gradients, in the reference's order of
// operations (which fixes the order of the dropout draws).
func (s *studentStep) backward(xTrain, xAug, xImg *tb.Tensor) (Losses, error) {
	var l Losses
	err := tb.WithGrad(func() error {
		sc := tb.NewScope()
		defer sc.Close()
		if err := s.opt.ZeroGrad(); err != nil {
			return err
		}
		student, autoencoder, release, err := s.stepNets()
		if err != nil {
			return err
		}
		defer release()
		p := s.prec
		xTrain, xAug := sc.T(p.Input(xTrain)), sc.T(p.Input(xAug))
		if xImg != nil {
			xImg = sc.T(p.Input(xImg))
		}
		c := int64(models.TeacherChannels)
		tn := s.normalizedTeacher(sc, xTrain)
		st := sc.T(tb.Narrow(sc.T(p.Forward(student, xTrain)), 1, 0, c))
		diff := sc.T(tb.PowScalar(sc.T(tb.Sub(tn, st)), 2))
		thr := sc.T(tb.Quantile(sc.T(tb.Detach(diff)), 0.999, nil, false))
		hard := sc.T(tb.Mean(sc.T(tb.MaskedSelect(diff, sc.T(tb.Ge(diff, thr)))), nil, false))
		lossStudent := hard
		var pen *tb.Tensor
		if xImg != nil {
			si := sc.T(tb.Narrow(sc.T(p.Forward(student, xImg)), 1, 0, c))
			pen = sc.T(tb.Mean(sc.T(tb.PowScalar(si, 2)), nil, false))
			lossStudent = sc.T(tb.Add(hard, pen))
		}
		ae := sc.T(p.Forward(autoencoder, xAug))
		ta := s.normalizedTeacher(sc, xAug)
		sa := sc.T(tb.Narrow(sc.T(p.Forward(student, xAug)), 1, c, c))
		lossAE := sc.T(tb.Mean(sc.T(tb.PowScalar(sc.T(tb.Sub(ta, ae)), 2)), nil, false))
		lossSAE := sc.T(tb.Mean(sc.T(tb.PowScalar(sc.T(tb.Sub(ae, sa)), 2)), nil, false))
		total := sc.T(tb.Add(sc.T(tb.Add(lossStudent, lossAE)), lossSAE))
		grads := total
		if s.scaler != nil {
			grads = sc.T(s.scaler.scaled(total))
		}
		if err := sc.Err(); err != nil {
			return err
		}
		if err := grads.Backward(); err != nil {
			return err
		}
		item := func(t *tb.Tensor, dst *float64) {
			if err == nil && t != nil {
				*dst, err = t.Item()
			}
		}
		item(total, &l.Total)
		item(hard, &l.Hard)
		item(pen, &l.Penalty)
		item(lossAE, &l.AE)
		item(lossSAE, &l.StudentAE)
		return err
	})
	return l, err
}

// stepSlices runs one optimisation step on a batch of size×size images
// (the ImageNet images may be fewer than the training images: a reference
// loader's batch is no larger than its folder).
func (s *studentStep) stepSlices(b studentBatch, size int64) (Losses, error) {
	sc := tb.NewScope()
	defer sc.Close()
	load := func(v []float32) *tb.Tensor {
		n := int64(len(v)) / (3 * size * size)
		return sc.T(toDevice(sc.T(tb.FromSlice(v, n, 3, size, size)), s.dev))
	}
	xTrain, xAug := load(b.train), load(b.aug)
	var xImg *tb.Tensor
	if len(b.imagenet) > 0 {
		xImg = load(b.imagenet)
	}
	if err := sc.Err(); err != nil {
		return Losses{}, err
	}
	l, err := s.backward(xTrain, xAug, xImg)
	if err != nil {
		return l, err
	}
	_, err = s.scaler.step(s.opt)
	return l, err
}

// teacherOutputStats returns the per-channel mean and unbiased standard
// deviation of the teacher's outputs on the training images over (image,
// h, w), as the reference computes mu and sigma of a category (in float64,
// merging per-image statistics, then rounded to float32).
func teacherOutputStats(ctx context.Context, teacher *models.PDN, paths []string, cfg StudentConfig) (mu, sigma *tb.Tensor, err error) {
	const c = models.TeacherChannels
	var n float64
	mean := make([]float64, c)
	m2 := make([]float64, c)
	done := 0
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream := cfg.decode.Stream(ctx, paths, cfg.ImgSize, cfg.Workers, 0)
	for it := range stream {
		if it.Err != nil {
			return nil, nil, it.Err
		}
		var v []float64
		err := tb.InferenceMode(func() error {
			sc := tb.NewScope()
			defer sc.Close()
			x := sc.T(toDevice(sc.T(tb.FromSlice(it.Data, 1, 3, int64(cfg.ImgSize), int64(cfg.ImgSize))), cfg.Device))
			out := sc.T(teacher.Forward(x))
			if err := sc.Err(); err != nil {
				return err
			}
			var err error
			v, err = out.Float64s()
			return err
		})
		if err != nil {
			return nil, nil, fmt.Errorf("teacher statistics: %s: %w", it.Path, err)
		}
		hw := len(v) / c
		k := float64(hw)
		for ch := 0; ch < c; ch++ {
			xs := v[ch*hw : (ch+1)*hw]
			var s float64
			for _, x := range xs {
				s += x
			}
			mi := s / k
			var q float64
			for _, x := range xs {
				q += (x - mi) * (x - mi)
			}
			// Chan et al.'s merge of (n, mean, m2) with (k, mi, q).
			delta := mi - mean[ch]
			mean[ch] += delta * k / (n + k)
			m2[ch] += q + delta*delta*n*k/(n+k)
		}
		n += k
		done++
		cfg.Progress(StageCategoryStat, done, len(paths), math.NaN())
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if done != len(paths) || n < 2 {
		return nil, nil, fmt.Errorf("teacher statistics: %d of %d training images processed", done, len(paths))
	}
	mu32 := make([]float32, c)
	sd32 := make([]float32, c)
	for ch := range mu32 {
		mu32[ch] = float32(mean[ch])
		sd32[ch] = float32(math.Sqrt(m2[ch] / (n - 1)))
	}
	s := tb.NewScope()
	defer s.Close()
	mu = s.T(toDevice(s.T(tb.FromSlice(mu32)), cfg.Device))
	sigma = s.T(toDevice(s.T(tb.FromSlice(sd32)), cfg.Device))
	if err := s.Err(); err != nil {
		return nil, nil, err
	}
	return s.Keep(mu), s.Keep(sigma), nil
}

// validationMaps returns the student-teacher and autoencoder-student maps
// of the validation images (models.EfficientAD.Maps), image after image.
func validationMaps(ctx context.Context, m *models.EfficientAD, paths []string, decode datasets.DecodeOptions, workers int, progress func(done, total int)) (st, ae []float32, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := 0
	c := int64(models.TeacherChannels)
	size := m.ImgSize
	for it := range decode.Stream(ctx, paths, int(size), workers, 0) {
		if it.Err != nil {
			return nil, nil, it.Err
		}
		err := tb.InferenceMode(func() error {
			s := tb.NewScope()
			defer s.Close()
			x := s.T(toDevice(s.T(tb.FromSlice(it.Data, 1, 3, size, size)), m.Device))
			t := s.T(m.Teacher.Forward(x))
			so := s.T(m.Student.Forward(x))
			a := s.T(m.AutoEncoder.Forward(x))
			tn := s.T(m.NormalizeTeacher(t))
			sST, sAE := s.T(tb.Narrow(so, 1, 0, c)), s.T(tb.Narrow(so, 1, c, c))
			if err := s.Err(); err != nil {
				return err
			}
			stMap, aeMap, err := m.Maps(tn, sST, sAE, a)
			if err != nil {
				return err
			}
			s.Own(stMap)
			s.Own(aeMap)
			vst, err := stMap.Float32s()
			if err != nil {
				return err
			}
			vae, err := aeMap.Float32s()
			st, ae = append(st, vst...), append(ae, vae...)
			return err
		})
		if err != nil {
			return nil, nil, fmt.Errorf("validation %s: %w", it.Path, err)
		}
		done++
		progress(done, len(paths))
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if done != len(paths) {
		return nil, nil, fmt.Errorf("validation: %d of %d images processed", done, len(paths))
	}
	return st, ae, nil
}

// validationQuantiles computes quantile.pt's entries: the 0.9 and 0.995
// quantiles (torch.quantile's linear interpolation, over all pixels of all
// validation maps) of each kind of map.
func validationQuantiles(ctx context.Context, m *models.EfficientAD, paths []string, cfg StudentConfig) (_ map[string]*tb.Tensor, err error) {
	st, ae, err := validationMaps(ctx, m, paths, cfg.decode, cfg.Workers, func(done, total int) {
		cfg.Progress(StageQuantiles, done, total, math.NaN())
	})
	if err != nil {
		return nil, err
	}
	s := tb.NewScope()
	defer s.Close()
	q := map[string]*tb.Tensor{}
	defer func() {
		if err != nil {
			closeAll(q)
		}
	}()
	for _, e := range []struct {
		key  string
		maps []float32
		p    float64
	}{
		{models.QuantileStudentA, st, 0.9}, {models.QuantileStudentB, st, 0.995},
		{models.QuantileAutoEncoderA, ae, 0.9}, {models.QuantileAutoEncoderB, ae, 0.995},
	} {
		all := s.T(tb.FromSlice(e.maps))
		v := s.T(tb.Quantile(all, e.p, nil, false))
		v = s.T(toDevice(v, m.Device))
		if err := s.Err(); err != nil {
			return nil, fmt.Errorf("quantile %s: %w", e.key, err)
		}
		q[e.key] = s.Keep(v)
	}
	return q, nil
}

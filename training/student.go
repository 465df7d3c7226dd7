package training

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/datasets/refsplit"
	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/internal/atomicfile"
	"github.com/puad-go/puad/internal/prefetch"
	"github.com/puad-go/puad/internal/pyfmt"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// StudentConfig configures TrainStudent. Zero values take the reference's
// defaults.
type StudentConfig struct {
	// ImageNetDir is an ImageNet-style folder for the student's ImageNet
	// penalty; "" disables the penalty (a warning says so on Log).
	ImageNetDir string
	// DatasetDir is the category folder (MVTec layout) and ModelDir the
	// model directory; the teacher is read from <ModelDir>/<size>_size/teacher/
	// and the results go to <ModelDir>/<size>_size/<dataset>/<category>/.
	DatasetDir, ModelDir string
	Size                 models.Size
	// Iterations (70000), BatchSize (1: the reference's) and ImgSize (256).
	Iterations, BatchSize, ImgSize int
	// Seed selects every random stream of the run.
	Seed   uint64
	Device tb.Device
	// CheckpointEvery saves a checkpoint every that many iterations (0: only
	// when interrupted); Resume continues from the checkpoint.
	CheckpointEvery int
	Resume          bool
	Progress        Progress
	// Log receives information and warnings, one line each (nil: discarded).
	Log io.Writer
	// Workers decode images in parallel (runtime.NumCPU() when 0).
	Workers int
}

func (c *StudentConfig) fillDefaults() {
	if c.Iterations == 0 {
		c.Iterations = DefaultStudentIterations
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultStudentBatchSize
	}
	if c.ImgSize == 0 {
		c.ImgSize = DefaultImgSize
	}
	if c.Size == "" {
		c.Size = models.Small
	}
	if c.Progress == nil {
		c.Progress = func(string, int, int, float64) {}
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// StudentResult is the outcome of TrainStudent.
type StudentResult struct {
	// Dir is the category's model folder.
	Dir string
	// AUROC is EfficientAD's image AUROC on the test set and PerClass the
	// AUROC of each anomaly class (results.txt).
	AUROC    float64
	PerClass []evaluate.ClassAUROC
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
// size×size images, and aeOutputSize the autoencoder's; training needs them equal.
func pdnOutputSize(size int) int { return ((size-3)/2-3)/2 - 2 - 3 }
func aeOutputSize(size int) int  { return size/4 - 8 }

// studentRunConfig is what a student checkpoint must agree on to be resumed.
type studentRunConfig struct {
	Size       string `json:"size"`
	Iterations int    `json:"iterations"`
	BatchSize  int    `json:"batch_size"`
	ImgSize    int    `json:"img_size"`
	Seed       uint64 `json:"seed"`
	Train      int    `json:"train_images"`
	ImageNet   int    `json:"imagenet_images"`
}

// learningRate is the reference's schedule: 1e-4, and 1e-5 after the
// iteration at 95% (after iteration 66500 of 70000, counting from 0).
func lrAt(iteration, total int) float64 {
	if iteration > total*95/100 {
		return finalLearningRate
	}
	return learningRate
}

// TrainStudent trains the student and the autoencoder of one category as
// the reference's train_student_and_autoencoder does, computes the
// quantiles of the validation maps, writes the category's student.pt,
// autoencoder.pt, mu.pt, sigma.pt and quantile.pt, evaluates EfficientAD on
// the test set into results.txt (the reference's format), and keeps a loss
// log (train_loss.csv).
func TrainStudent(ctx context.Context, cfg StudentConfig) (*StudentResult, error) {
	cfg.fillDefaults()
	if _, err := models.ParseSize(string(cfg.Size)); err != nil {
		return nil, err
	}
	if cfg.Iterations < 0 || cfg.BatchSize < 1 || cfg.CheckpointEvery < 0 {
		return nil, fmt.Errorf("train student: invalid settings (iterations %d, batch size %d, checkpoint every %d)", cfg.Iterations, cfg.BatchSize, cfg.CheckpointEvery)
	}
	if cfg.ImgSize < 128 || pdnOutputSize(cfg.ImgSize) != aeOutputSize(cfg.ImgSize) {
		return nil, fmt.Errorf("train student: image size %d: the autoencoder needs at least 128 pixels and an output the size of the PDN's (multiples of 4 work; the reference uses 256)", cfg.ImgSize)
	}
	ds, err := datasets.Open(cfg.DatasetDir, refsplit.Perm)
	if err != nil {
		return nil, err
	}
	layout := models.Layout{Root: cfg.ModelDir, Size: cfg.Size}
	teacherPath := filepath.Join(layout.TeacherDir(), "teacher.pt")
	if !exists(teacherPath) {
		return nil, fmt.Errorf("before training the student, the teacher must have been trained: no %s (puad train teacher writes it)", teacherPath)
	}
	dir := layout.CategoryDir(ds.DatasetName, ds.Category)
	ckptPath := filepath.Join(dir, CheckpointFile)
	resume := cfg.Resume && exists(ckptPath)
	if cfg.Resume && !resume {
		fmt.Fprintf(cfg.Log, "no checkpoint in %s: starting from the beginning\n", dir)
	}
	if !cfg.Resume && exists(ckptPath) {
		return nil, fmt.Errorf("an interrupted run left %s: use --resume to continue it, or delete it to start over", ckptPath)
	}
	var imagenet []string
	if cfg.ImageNetDir == "" {
		fmt.Fprintln(cfg.Log, "warning: no ImageNet folder: training without the ImageNet penalty (the reference uses it)")
	} else {
		_, items, err := datasets.ImageFolder(cfg.ImageNetDir)
		if err != nil {
			return nil, fmt.Errorf("ImageNet folder: %w", err)
		}
		for _, it := range items {
			imagenet = append(imagenet, it.Path)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}

	m, err := models.NewEfficientAD(cfg.Size, int64(cfg.ImgSize), cfg.Device)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if err := loadModule(m.Teacher, teacherPath, cfg.Device); err != nil {
		return nil, err
	}
	if err := initModules(cfg.Seed, m.Student, m.AutoEncoder); err != nil {
		return nil, err
	}
	for _, mod := range []models.Module{m.Student, m.AutoEncoder} {
		if err := models.To(mod, cfg.Device); err != nil {
			return nil, err
		}
	}
	dataGen, err := newStream(cfg.Seed, streamData, tb.CPU)
	if err != nil {
		return nil, err
	}
	defer dataGen.Close()
	dropGen, err := newStream(cfg.Seed, streamDropout, cfg.Device)
	if err != nil {
		return nil, err
	}
	defer dropGen.Close()
	m.AutoEncoder.Gen = dropGen
	m.AutoEncoder.Training = true

	runCfg, _ := json.Marshal(studentRunConfig{
		Size: string(cfg.Size), Iterations: cfg.Iterations, BatchSize: cfg.BatchSize, ImgSize: cfg.ImgSize,
		Seed: cfg.Seed, Train: len(ds.Train), ImageNet: len(imagenet),
	})
	mods := []namedModule{{"student", m.Student}, {"autoencoder", m.AutoEncoder}}
	nParams := len(models.Parameters(m.AutoEncoder)) + len(models.Parameters(m.Student))
	start, logAt, lastLoss := 0, int64(-1), math.NaN()
	var adamState []tb.AdamState
	if resume {
		st, as, err := loadCheckpoint(ckptPath, mods, nParams, cfg.Device)
		if err != nil {
			return nil, err
		}
		adamState = as
		m.Mu, m.Sigma = st.Extra["mu"], st.Extra["sigma"]
		delete(st.Extra, "mu")
		delete(st.Extra, "sigma")
		for _, t := range st.Extra {
			t.Close()
		}
		err = nil
		switch {
		case st.Config != string(runCfg):
			err = fmt.Errorf("checkpoint %s was written by a run with other settings (%s, now %s)", ckptPath, st.Config, runCfg)
		case m.Mu == nil || m.Sigma == nil:
			err = fmt.Errorf("checkpoint %s: no teacher statistics", ckptPath)
		}
		if err == nil {
			err = dataGen.SetState(st.RNG[streamData])
		}
		if err == nil {
			err = dropGen.SetState(st.RNG[streamDropout])
		}
		if err != nil {
			closeAdamState(adamState)
			return nil, err
		}
		start, logAt, lastLoss = st.Iteration, st.LogOffset, st.LastLoss
		fmt.Fprintf(cfg.Log, "resuming from %s at iteration %d\n", ckptPath, start)
	} else {
		if m.Mu, m.Sigma, err = teacherOutputStats(ctx, m.Teacher, ds.Train, cfg); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("interrupted while computing the teacher statistics: %w", err)
			}
			return nil, err
		}
	}

	for _, mod := range []models.Module{m.Student, m.AutoEncoder} {
		if err := models.SetRequiresGrad(mod, true); err != nil {
			closeAdamState(adamState)
			return nil, err
		}
	}
	params := append(models.Parameters(m.AutoEncoder), models.Parameters(m.Student)...)
	opt := tb.NewAdam(params, learningRate, weightDecay)
	defer opt.Close()
	if adamState != nil {
		if err := opt.SetState(adamState); err != nil {
			closeAdamState(adamState)
			return nil, err
		}
	}
	step, err := newStudentStep(m, opt)
	if err != nil {
		return nil, err
	}
	defer step.close()

	log, err := openLossLog(filepath.Join(dir, "train_loss.csv"), "iteration,loss_total,loss_hard,loss_penalty,loss_ae,loss_student_ae,lr", logAt)
	if err != nil {
		return nil, err
	}
	defer log.Close()

	rngState, err := dataGen.State()
	if err != nil {
		return nil, err
	}
	res := &StudentResult{Dir: dir, FinalLoss: lastLoss}
	save := func(done int) error {
		off, err := log.Sync()
		if err != nil {
			return err
		}
		dropState, err := dropGen.State()
		if err != nil {
			return err
		}
		return saveCheckpoint(ckptPath, checkpointState{
			Iteration: done, LogOffset: off, Config: string(runCfg), LastLoss: res.FinalLoss,
			RNG:   map[string][]byte{streamData: rngState, streamDropout: dropState},
			Extra: map[string]*tb.Tensor{"mu": m.Mu, "sigma": m.Sigma},
		}, mods, opt)
	}

	data := &studentData{train: ds.Train, imagenet: imagenet, size: cfg.ImgSize, batch: cfg.BatchSize, gen: dataGen}
	data.cache.init(len(ds.Train), cfg.ImgSize)
	ctx2, cancel := context.WithCancel(ctx)
	defer cancel()
	data.next = start
	data.total = cfg.Iterations
	stream := prefetch.Ordered(ctx2, cfg.Workers, 0, data.draw, data.load)
	for i := start; i < cfg.Iterations; i++ {
		if ctx.Err() != nil {
			return nil, interrupted(ctx, i, ckptPath, save)
		}
		f, ok := <-stream
		if !ok {
			return nil, interrupted(ctx, i, ckptPath, save)
		}
		if f.Err != nil {
			return nil, fmt.Errorf("iteration %d: %w", i+1, f.Err)
		}
		opt.LR = lrAt(i, cfg.Iterations)
		losses, err := step.stepSlices(f.Out, int64(len(f.Job.train)), int64(cfg.ImgSize))
		if err != nil {
			return nil, fmt.Errorf("iteration %d: %w", i+1, err)
		}
		rngState = f.Job.rng
		log.Row(i+1, losses.Total, losses.Hard, losses.Penalty, losses.AE, losses.StudentAE, opt.LR)
		res.FinalLoss = losses.Total
		cfg.Progress(StageTrain, i+1, cfg.Iterations, losses.Total)
		if cfg.CheckpointEvery > 0 && (i+1)%cfg.CheckpointEvery == 0 || i+1 == cfg.Iterations {
			// The last one lets an interrupted evaluation resume without training again.
			if err := save(i + 1); err != nil {
				return nil, err
			}
		}
	}
	cancel()
	if err := log.Close(); err != nil {
		return nil, err
	}

	m.AutoEncoder.Training = false
	for _, mod := range []models.Module{m.Student, m.AutoEncoder} {
		if err := models.SetRequiresGrad(mod, false); err != nil {
			return nil, err
		}
	}
	// An interruption from here on keeps the last checkpoint: resuming
	// goes straight to these steps.
	afterTraining := func(err error) error {
		if ctx.Err() != nil {
			return &InterruptedError{Iteration: cfg.Iterations, Checkpoint: ckptPath, Cause: ctx.Err()}
		}
		return err
	}
	q, err := validationQuantiles(ctx, m, ds.Valid, cfg)
	if err != nil {
		return nil, afterTraining(err)
	}
	m.Quantiles = q
	if err := m.Save(dir); err != nil {
		return nil, err
	}
	if res.AUROC, res.PerClass, err = testAUROC(ctx, m, ds, cfg); err != nil {
		return nil, afterTraining(err)
	}
	if err := writeResults(filepath.Join(dir, "results.txt"), res.AUROC, res.PerClass); err != nil {
		return nil, err
	}
	if err := os.Remove(ckptPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return res, nil
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
	next, total     int
	cache           imageCache
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
	var j studentJob
	for b := 0; b < d.batch; b++ {
		k, err := randInt(d.gen, 0, int64(len(d.train)))
		if err != nil {
			return j, false, err
		}
		kind, err := randInt(d.gen, 1, 4)
		if err != nil {
			return j, false, err
		}
		u, err := randUniform(d.gen)
		if err != nil {
			return j, false, err
		}
		j.train = append(j.train, int(k))
		j.aug = append(j.aug, Augment{Kind: AugmentKind(kind), Factor: AugmentFactor(u)})
		if len(d.imagenet) > 0 {
			k, err := randInt(d.gen, 0, int64(len(d.imagenet)))
			if err != nil {
				return j, false, err
			}
			u, err := randUniform(d.gen)
			if err != nil {
				return j, false, err
			}
			j.imagenet = append(j.imagenet, int(k))
			j.gray = append(j.gray, u < imagenetGrayscaleP)
		}
	}
	var err error
	j.rng, err = d.gen.State()
	return j, true, err
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
	mu   sync.Mutex
	on   bool
	imgs map[int]datasets.RGB
}

const maxCacheBytes = 1 << 30

func (c *imageCache) init(n, size int) {
	c.on = int64(n)*int64(3*size*size) <= maxCacheBytes
	c.imgs = map[int]datasets.RGB{}
}

func (c *imageCache) get(k int, path string, size int) (datasets.RGB, error) {
	c.mu.Lock()
	img, ok := c.imgs[k]
	c.mu.Unlock()
	if ok {
		return img, nil
	}
	img, err := datasets.LoadRGB(path, size)
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
	m         *models.EfficientAD
	mu, sigma *tb.Tensor // [384, 1, 1] views
	opt       *tb.Adam
	dev       tb.Device
}

func newStudentStep(m *models.EfficientAD, opt *tb.Adam) (*studentStep, error) {
	s := &studentStep{m: m, opt: opt, dev: m.Device}
	var err error
	if s.mu, err = tb.View(m.Mu, -1, 1, 1); err != nil {
		return nil, err
	}
	if s.sigma, err = tb.View(m.Sigma, -1, 1, 1); err != nil {
		s.mu.Close()
		return nil, err
	}
	return s, nil
}

func (s *studentStep) close() {
	s.mu.Close()
	s.sigma.Close()
}

// normalizedTeacher is transforms.Normalize(mu, sigma) of the teacher's output.
func (s *studentStep) normalizedTeacher(sc *tb.Scope, x *tb.Tensor) *tb.Tensor {
	var out *tb.Tensor
	sc.Fail(tb.NoGrad(func() error {
		t := sc.T(s.m.Teacher.Forward(x))
		out = sc.T(tb.Div(sc.T(tb.Sub(t, s.mu)), s.sigma))
		return nil
	}))
	return out
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
		c := int64(models.TeacherChannels)
		tn := s.normalizedTeacher(sc, xTrain)
		st := sc.T(tb.Narrow(sc.T(s.m.Student.Forward(xTrain)), 1, 0, c))
		diff := sc.T(tb.PowScalar(sc.T(tb.Sub(tn, st)), 2))
		thr := sc.T(tb.Quantile(sc.T(tb.Detach(diff)), 0.999))
		hard := sc.T(tb.Mean(sc.T(tb.MaskedSelect(diff, sc.T(tb.Ge(diff, thr)))), nil, false))
		lossStudent := hard
		var pen *tb.Tensor
		if xImg != nil {
			si := sc.T(tb.Narrow(sc.T(s.m.Student.Forward(xImg)), 1, 0, c))
			pen = sc.T(tb.Mean(sc.T(tb.PowScalar(si, 2)), nil, false))
			lossStudent = sc.T(tb.Add(hard, pen))
		}
		ae := sc.T(s.m.AutoEncoder.Forward(xAug))
		ta := s.normalizedTeacher(sc, xAug)
		sa := sc.T(tb.Narrow(sc.T(s.m.Student.Forward(xAug)), 1, c, c))
		lossAE := sc.T(tb.Mean(sc.T(tb.PowScalar(sc.T(tb.Sub(ta, ae)), 2)), nil, false))
		lossSAE := sc.T(tb.Mean(sc.T(tb.PowScalar(sc.T(tb.Sub(ae, sa)), 2)), nil, false))
		total := sc.T(tb.Add(sc.T(tb.Add(lossStudent, lossAE)), lossSAE))
		if err := sc.Err(); err != nil {
			return err
		}
		if err := total.Backward(); err != nil {
			return err
		}
		var err error
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

// stepSlices runs one optimisation step on a batch of n images.
func (s *studentStep) stepSlices(b studentBatch, n, size int64) (Losses, error) {
	sc := tb.NewScope()
	defer sc.Close()
	load := func(v []float32) *tb.Tensor {
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
	return l, s.opt.Step()
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
	stream := datasets.Stream(ctx, paths, cfg.ImgSize, cfg.Workers, 0)
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
// of the validation images, each resized to size×size as the reference
// does before its quantiles, image after image.
func validationMaps(ctx context.Context, m *models.EfficientAD, mu, sigma *tb.Tensor, paths []string, size, workers int, progress func(done, total int)) (st, ae []float32, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := 0
	c := int64(models.TeacherChannels)
	for it := range datasets.Stream(ctx, paths, size, workers, 0) {
		if it.Err != nil {
			return nil, nil, it.Err
		}
		err := tb.InferenceMode(func() error {
			s := tb.NewScope()
			defer s.Close()
			x := s.T(toDevice(s.T(tb.FromSlice(it.Data, 1, 3, int64(size), int64(size))), m.Device))
			t := s.T(m.Teacher.Forward(x))
			so := s.T(m.Student.Forward(x))
			a := s.T(m.AutoEncoder.Forward(x))
			tn := s.T(tb.Div(s.T(tb.Sub(t, mu)), sigma))
			mp := func(p, q *tb.Tensor) []float32 {
				d := s.T(tb.PowScalar(s.T(tb.Sub(p, q)), 2))
				r := s.T(tb.Mean(d, []int64{1}, true))
				r = s.T(tb.UpsampleBilinear(r, int64(size), int64(size), false))
				if s.Err() != nil {
					return nil
				}
				v, err := r.Float32s()
				s.Fail(err)
				return v
			}
			st = append(st, mp(tn, s.T(tb.Narrow(so, 1, 0, c)))...)
			ae = append(ae, mp(a, s.T(tb.Narrow(so, 1, c, c)))...)
			return s.Err()
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
func validationQuantiles(ctx context.Context, m *models.EfficientAD, paths []string, cfg StudentConfig) (map[string]*tb.Tensor, error) {
	s := tb.NewScope()
	defer s.Close()
	mu := s.T(tb.View(m.Mu, -1, 1, 1))
	sigma := s.T(tb.View(m.Sigma, -1, 1, 1))
	if err := s.Err(); err != nil {
		return nil, err
	}
	st, ae, err := validationMaps(ctx, m, mu, sigma, paths, cfg.ImgSize, cfg.Workers, func(done, total int) {
		cfg.Progress(StageQuantiles, done, total, math.NaN())
	})
	if err != nil {
		return nil, err
	}
	q := map[string]*tb.Tensor{}
	for _, e := range []struct {
		key  string
		maps []float32
		p    float64
	}{
		{"q_a_student", st, 0.9}, {"q_b_student", st, 0.995},
		{"q_a_autoencoder", ae, 0.9}, {"q_b_autoencoder", ae, 0.995},
	} {
		all := s.T(tb.FromSlice(e.maps))
		v := s.T(tb.Quantile(all, e.p))
		v = s.T(toDevice(v, m.Device))
		if err := s.Err(); err != nil {
			for _, t := range q {
				t.Close()
			}
			return nil, fmt.Errorf("quantile %s: %w", e.key, err)
		}
		q[e.key] = s.Keep(v)
	}
	return q, nil
}

// testAUROC scores the test images with the trained model as the
// reference's inference does.
func testAUROC(ctx context.Context, m *models.EfficientAD, ds *datasets.Dataset, cfg StudentConfig) (float64, []evaluate.ClassAUROC, error) {
	paths := make([]string, len(ds.Test))
	classes := make([]string, len(ds.Test))
	for i, it := range ds.Test {
		paths[i], classes[i] = it.Path, it.Class
	}
	sc := &evaluate.Scorer{Model: m, Extractor: evaluate.StudentExtractor}
	outs, err := evaluate.RunImages(ctx, sc, paths, evaluate.Need{Score: true}, StageTest, evaluate.Options{
		Workers:  cfg.Workers,
		Progress: func(stage string, done, total int) { cfg.Progress(stage, done, total, math.NaN()) },
	})
	if err != nil {
		return 0, nil, err
	}
	scores := make([]float64, len(outs))
	for i, o := range outs {
		scores[i] = o.Score
	}
	return evaluate.PerClassAUROC(classes, scores, datasets.NormalClass)
}

// writeResults writes results.txt as the reference's inference prints it.
func writeResults(path string, auroc float64, perClass []evaluate.ClassAUROC) error {
	var b strings.Builder
	fmt.Fprintf(&b, "auroc score = %s\n", pyfmt.Float(auroc))
	for _, pc := range perClass {
		fmt.Fprintf(&b, "%s auroc score = %s\n", pc.Class, pyfmt.Float(pc.AUROC))
	}
	return atomicfile.WriteFile(path, []byte(b.String()), atomicfile.DefaultPerm)
}

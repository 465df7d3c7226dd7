package training

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/internal/prefetch"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
	"github.com/puad-go/puad/torchbind/dist"
)

// Progress receives the progress of a long stage: iter of total steps are
// done; loss is the last training loss, NaN in stages without one.
type Progress func(stage string, iter, total int, loss float64)

// Stage names reported through Progress.
const (
	StageTeacherMean  = "imagenet mean"
	StageTeacherStd   = "imagenet std"
	StageDistill      = "distill"
	StageCategoryStat = "teacher stats"
	StageTrain        = "train"
	StageQuantiles    = "quantiles"
)

// Defaults of the reference's training runs.
const (
	DefaultTeacherIterations = 60000
	DefaultTeacherBatchSize  = 16
	DefaultStatSamples       = 10000
	DefaultStudentIterations = 70000
	DefaultStudentBatchSize  = 1
	DefaultImgSize           = 256
	DefaultCheckpointEvery   = 500

	// statSeed seeds the generator that picks the ImageNet images of the
	// teacher statistics (torch.randint with a generator seeded with 42).
	statSeed = 42
	// teacherGrayscaleP and imagenetGrayscaleP are the probabilities of
	// RandomGrayscale in teacher distillation and in the student's
	// ImageNet penalty.
	teacherGrayscaleP  = 0.1
	imagenetGrayscaleP = 0.3
	learningRate       = 1e-4
	finalLearningRate  = 1e-5
	weightDecay        = 1e-5
)

// TeacherConfig configures TrainTeacher. Zero values take the reference's
// defaults.
type TeacherConfig struct {
	// ImageNetDir is an ImageNet-style folder (class folders of images,
	// read in torchvision ImageFolder order).
	ImageNetDir string
	// ModelDir is the model directory; the teacher goes to
	// <ModelDir>/<size>_size/teacher/.
	ModelDir string
	Size     models.Size
	// WRNWeights is torchvision's wide_resnet101_2 checkpoint
	// (models.WRN101WeightsFile).
	WRNWeights string
	// Iterations (60000), BatchSize (16) and StatSamples (10000, the
	// ImageNet images of the feature statistics).
	Iterations, BatchSize, StatSamples int
	// ImgSize is the teacher's input size (256); the extractor sees images
	// of twice that size.
	ImgSize int
	// Seed selects every random stream of the run.
	Seed uint64
	// ReferenceRNG draws every random number from one CPU generator seeded
	// with Seed, in the order of the reference's train_teacher run after
	// torch.manual_seed(Seed) (see refrng.go); CPU only
	// (ErrReferenceRNGDevice). Off, the run draws from its own streams.
	ReferenceRNG bool
	Device       tb.Device
	// Force overwrites an existing teacher.pt.
	Force bool
	// CheckpointEvery saves a checkpoint every that many iterations (0: only
	// when interrupted); Resume continues from the checkpoint.
	CheckpointEvery int
	Resume          bool
	Progress        Progress
	// Log receives information and warnings, one line each (nil: discarded).
	Log io.Writer
	// Workers decode images in parallel (runtime.NumCPU() when 0).
	Workers int
	// Precision of the distilled PDN in the training steps ("": float32),
	// as StudentConfig.Precision: with BF16 or FP16 its convolutions run in
	// that type on a copy of the weights cast at each step, the loss and
	// the optimiser in float32 (FP16, CUDA only, with a dynamic loss scale);
	// the extractor and the statistics stay float32.
	Precision models.Precision
	// lossScale, when not 0, scales the loss from this initial scale in any
	// precision (tests).
	lossScale float32
	// Group, when not nil, is the process group of a data-parallel run:
	// every rank calls TrainTeacher with its own group and the same
	// settings (rank 0's seed is used by all), the batch is split evenly
	// over the ranks, and only rank 0 writes to ModelDir. Nil trains in
	// this process alone.
	Group *dist.Group
}

func (c *TeacherConfig) fillDefaults() {
	orDefault(&c.Iterations, DefaultTeacherIterations)
	orDefault(&c.BatchSize, DefaultTeacherBatchSize)
	orDefault(&c.StatSamples, DefaultStatSamples)
	orDefault(&c.ImgSize, DefaultImgSize)
	orDefault(&c.Size, models.Small)
	defaultSinks(&c.Progress, &c.Log)
}

// orDefault sets *v to def when it holds its zero value (a setting left out).
func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// defaultSinks gives a run without a progress callback or log ones that
// discard what they get.
func defaultSinks(progress *Progress, log *io.Writer) {
	if *progress == nil {
		*progress = func(string, int, int, float64) {}
	}
	if *log == nil {
		*log = io.Discard
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// WRNWeightsHelp says where torchvision's WideResNet101-2 weights come from.
func WRNWeightsHelp() string {
	return "the teacher is distilled from torchvision's ImageNet WideResNet101-2 weights, the file " + models.WRN101WeightsFile +
		" (about 500 MB) of torchvision's model zoo (https://download.pytorch.org/models/" + models.WRN101WeightsFile +
		"; in Python, torchvision.models.wide_resnet101_2(weights=\"IMAGENET1K_V1\") downloads it to ~/.cache/torch/hub/checkpoints/);" +
		" nothing is downloaded here"
}

// checkWRNWeights fails with ErrNoWRNWeights when path is empty or absent.
func checkWRNWeights(path string) error {
	if path == "" {
		return newRunError(ErrNoWRNWeights, "no WideResNet101-2 weights: %s", WRNWeightsHelp())
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return newRunError(ErrNoWRNWeights, "WideResNet101-2 weights %s not found: %s", path, WRNWeightsHelp())
	}
	return nil
}

// RandomTeacher writes <modelDir>/<size>_size/teacher/teacher.pt with
// weights drawn from PyTorch's default Conv2d initialisation (seeded), for
// trying the pipeline where no distilled teacher is available. It refuses
// to overwrite an existing teacher unless force (ErrOutputExists). It
// returns the file's path.
func RandomTeacher(modelDir string, size models.Size, seed uint64, force bool) (string, error) {
	layout := models.Layout{Root: modelDir, Size: size}
	path := layout.TeacherPath()
	if exists(path) && !force {
		return "", newRunError(ErrOutputExists, "teacher %s already exists", path)
	}
	pdn, err := models.NewPDN(size, models.TeacherChannels, false)
	if err != nil {
		return "", err
	}
	defer models.Close(pdn)
	if err := initModules(seed, pdn); err != nil {
		return "", err
	}
	if err := os.MkdirAll(layout.TeacherDir(), 0o755); err != nil {
		return "", err
	}
	if err := saveModule(path, pdn); err != nil {
		return "", err
	}
	return path, nil
}

// saveModule writes a network's state dict to path.
func saveModule(path string, m models.Module) error {
	sd, err := models.StateDict(m)
	if err != nil {
		return err
	}
	defer sd.Close()
	return tb.SaveStateDict(path, sd)
}

// initModules draws the initial weights of ms, in order, from the run's
// init stream (on the CPU, so that the weights do not depend on the device).
func initModules(seed uint64, ms ...models.Module) error {
	g, err := newStream(seed, streamInit, tb.CPU)
	if err != nil {
		return err
	}
	defer g.Close()
	for _, m := range ms {
		if err := models.InitDefault(m, g, tb.CPU); err != nil {
			return err
		}
	}
	return nil
}

// paddedPDNOutputSize is the output size of a padded PDN (S or M) on
// size×size images; extractorOutputSize that of the wide ResNet extractor
// (layer2's). Distillation needs them equal (64 on 256 and 512 pixels).
func paddedPDNOutputSize(size int) int {
	a := (size+3)/2 + 1
	a = (a+3)/2 + 1
	return a - 3
}

func extractorOutputSize(size int) int {
	a := (size-1)/2 + 1 // conv1, 7×7 stride 2 padding 3
	a = (a-1)/2 + 1     // max pool, 3×3 stride 2 padding 1
	return (a-1)/2 + 1  // layer2, stride 2
}

// teacherRunConfig is what a teacher checkpoint must agree on to be resumed.
type teacherRunConfig struct {
	Size       string `json:"size"`
	Iterations int    `json:"iterations"`
	BatchSize  int    `json:"batch_size"`
	ImgSize    int    `json:"img_size"`
	Seed       uint64 `json:"seed"`
	Images     int    `json:"images"`
	// ReferenceRNG is left out when off, as in checkpoints of earlier versions.
	ReferenceRNG bool `json:"reference_rng,omitempty"`
}

func (c *TeacherConfig) validate() error {
	if _, err := models.ParseSize(string(c.Size)); err != nil {
		return err
	}
	if c.Iterations < 0 || c.BatchSize < 1 || c.BatchSize > MaxBatchSize || c.StatSamples < 1 || c.ImgSize < 32 || c.ImgSize > models.MaxImgSize || c.CheckpointEvery < 0 {
		return fmt.Errorf("train teacher: invalid settings (iterations %d, batch size %d, stat samples %d, image size %d, checkpoint every %d)",
			c.Iterations, c.BatchSize, c.StatSamples, c.ImgSize, c.CheckpointEvery)
	}
	if err := checkTrainingPrecision(c.Precision, c.Device); err != nil {
		return err
	}
	if p, e := paddedPDNOutputSize(c.ImgSize), extractorOutputSize(2*c.ImgSize); p != e {
		return fmt.Errorf("train teacher: image size %d: the padded PDN's output (%d×%d) does not match the extractor's on %d-pixel images (%d×%d); the reference uses 256", c.ImgSize, p, p, 2*c.ImgSize, e, e)
	}
	return checkReferenceDevice(c.ReferenceRNG, c.Device)
}

// TrainTeacher distils the teacher PDN from the WideResNet101-2 features as
// the reference's train_teacher does, and writes teacher.pt, mu.pt and
// sigma.pt to <ModelDir>/<size>_size/teacher/ (mu.pt and sigma.pt, the
// extractor's feature statistics on ImageNet, are reused when present).
// With cfg.Group, every rank of the group calls it (see TeacherConfig.Group).
func TrainTeacher(ctx context.Context, cfg TeacherConfig) error {
	cfg.fillDefaults()
	rep := replicas{g: cfg.Group, dev: cfg.Device}
	if err := rep.adoptSettings(&cfg); err != nil {
		return err
	}
	t, err := prepareTeacher(cfg, rep)
	if err = rep.agree(err); err != nil {
		t.Close()
		return err
	}
	defer t.Close()
	mu, sigma, err := loadOrComputeStats(ctx, cfg, rep, t.dir, t.fe, t.paths, t.ref)
	if err != nil {
		return err
	}
	defer mu.Close()
	defer sigma.Close()
	d := &distiller{fe: t.fe, pdn: t.pdn, mu: mu, sigma: sigma, prec: cfg.Precision, rep: rep}
	return distill(ctx, cfg, t.resume, d, t.paths, t.ref)
}

// teacherSetup is what a distillation run prepares before its statistics:
// the output folder, whether it resumes, the ImageNet images, the
// extractor, the reference random stream (nil when not asked for) and the
// PDN with its initial weights. Close frees them.
type teacherSetup struct {
	dir    string
	resume bool
	paths  []string
	fe     *models.WRNExtractor
	ref    *tb.Generator
	pdn    *models.PDN
}

func (t *teacherSetup) Close() {
	if t == nil {
		return
	}
	if t.pdn != nil {
		models.Close(t.pdn)
	}
	t.ref.Close()
	if t.fe != nil {
		models.Close(t.fe)
	}
}

// prepareTeacher checks the settings and the output folder (rank 0 only
// looks at the folder) and loads what the run needs.
func prepareTeacher(cfg TeacherConfig, rep replicas) (_ *teacherSetup, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	layout := models.Layout{Root: cfg.ModelDir, Size: cfg.Size}
	t := &teacherSetup{dir: layout.TeacherDir()}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	if rep.root() {
		if exists(layout.TeacherPath()) && !cfg.Force {
			return nil, newRunError(ErrOutputExists, "trained teacher model already exists in %s; stopped to avoid overwriting it", t.dir)
		}
		if t.resume, err = resumeFrom(t.dir, cfg.Resume, cfg.Log); err != nil {
			return nil, err
		}
	}
	if err := checkWRNWeights(cfg.WRNWeights); err != nil {
		return nil, err
	}
	_, items, err := datasets.ImageFolder(cfg.ImageNetDir)
	if err != nil {
		return nil, fmt.Errorf("ImageNet folder: %w", err)
	}
	for _, it := range items {
		t.paths = append(t.paths, it.Path)
	}
	if rep.size() > 1 && len(t.paths) < cfg.BatchSize {
		return nil, newRunError(ErrGroupSettings, "ImageNet folder %s has %d images, fewer than a batch of %d to split over %d processes", cfg.ImageNetDir, len(t.paths), cfg.BatchSize, rep.size())
	}
	if rep.root() {
		if err := os.MkdirAll(t.dir, 0o755); err != nil {
			return nil, err
		}
	}
	if t.fe, err = models.LoadWRNExtractor(cfg.WRNWeights, models.TeacherChannels, cfg.Device); err != nil {
		return nil, err
	}
	if t.fe.Blocks != models.WRN101Blocks {
		fmt.Fprintf(cfg.Log, "warning: %s has %v blocks in layer1–3, not WideResNet101-2's %v\n", cfg.WRNWeights, t.fe.Blocks, models.WRN101Blocks)
	}
	if cfg.ReferenceRNG {
		if t.ref, err = newReferenceStream(cfg.Seed, cfg.Device); err != nil {
			return nil, err
		}
		if err := models.DrawWRN101Init(t.ref); err != nil {
			return nil, err
		}
	}
	if t.pdn, err = newTeacherPDN(cfg, t.ref); err != nil {
		return nil, err
	}
	return t, nil
}

// newTeacherPDN returns the teacher PDN to distil with its initial weights
// (drawn from ref when not nil), on the device.
func newTeacherPDN(cfg TeacherConfig, ref *tb.Generator) (_ *models.PDN, err error) {
	pdn, err := models.NewPDN(cfg.Size, models.TeacherChannels, true)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			models.Close(pdn)
		}
	}()
	if ref != nil {
		err = models.InitReference(pdn, ref)
	} else {
		err = initModules(cfg.Seed, pdn)
	}
	if err != nil {
		return nil, err
	}
	return pdn, models.To(pdn, cfg.Device)
}

// distill trains d's teacher PDN from its initial weights (or the
// checkpoint) and writes teacher.pt. The data come from ref when not nil,
// else from the run's data stream.
func distill(ctx context.Context, cfg TeacherConfig, resume bool, d *distiller, paths []string, ref *tb.Generator) error {
	layout := models.Layout{Root: cfg.ModelDir, Size: cfg.Size}
	pdn := d.pdn
	dataGen := ref
	if ref == nil {
		var err error
		if dataGen, err = newStream(cfg.Seed, streamData, tb.CPU); err != nil {
			return err
		}
		defer dataGen.Close()
	}
	r, err := openRun(runSetup{
		dir: layout.TeacherDir(), resume: resume,
		config: teacherRunConfig{
			Size: string(cfg.Size), Iterations: cfg.Iterations,
			BatchSize: cfg.BatchSize, ImgSize: cfg.ImgSize, Seed: cfg.Seed, Images: len(paths),
			ReferenceRNG: cfg.ReferenceRNG,
		},
		modules: []namedModule{{"teacher", pdn}},
		params:  func() []*tb.Tensor { return models.Parameters(pdn) },
		data:    dataGen, logHeader: "iteration,loss,lr", total: cfg.Iterations, dev: cfg.Device, log: cfg.Log,
		replica: !d.rep.root(),
	})
	if err = d.rep.agree(err); err != nil {
		if r != nil {
			r.Close()
		}
		return err
	}
	defer r.Close()
	d.opt = r.opt
	if d.scaler, err = runLossScaler(r, cfg.Precision, cfg.lossScale, cfg.Device, cfg.Log); err != nil {
		return err
	}
	defer func() { d.scaler.Close(); d.scaler = nil }()
	if err := d.rep.syncStart(r, dataGen); err != nil {
		return err
	}
	if err := d.rep.syncLossScale(d.scaler); err != nil {
		return err
	}
	if err := trainLoop(ctx, r, d.iterations(cfg, paths, dataGen, r.start)); err != nil {
		return err
	}
	if d.rep.root() {
		if err = saveModule(layout.TeacherPath(), pdn); err == nil {
			err = r.finish()
		}
	}
	// Every rank ends with rank 0's files written (or its failure).
	return d.rep.agree(err)
}

// teacherJob is what one distillation iteration draws: distinct ImageNet
// images and their grayscale decisions; and the data stream's state after
// the draws.
type teacherJob struct {
	idx  []int
	gray []bool
	rng  []byte
}

// teacherBatch holds an iteration's inputs as normalised CHW values,
// images one after the other: the extractor's and the PDN's; n images (the
// rank's share of the job's).
type teacherBatch struct {
	fe, pdn []float32
	n       int
}

// iterations describes the distillation iterations from start on.
func (d *distiller) iterations(cfg TeacherConfig, paths []string, gen *tb.Generator, start int) schedule[teacherJob, teacherBatch] {
	it := start
	next := func() (teacherJob, bool, error) {
		if it >= cfg.Iterations {
			return teacherJob{}, false, nil
		}
		it++
		pick := sampleDistinct
		if cfg.ReferenceRNG {
			pick = loaderBatch
		}
		idx, err := pick(gen, len(paths), cfg.BatchSize)
		if err != nil {
			return teacherJob{}, false, err
		}
		j := teacherJob{idx: idx, gray: make([]bool, len(idx))}
		for i := range idx {
			if j.gray[i], err = drawGrayscale(gen, teacherGrayscaleP); err != nil {
				return teacherJob{}, false, err
			}
		}
		j.rng, err = gen.State()
		return j, true, err
	}
	load := func(j teacherJob) (teacherBatch, error) {
		lo, hi := d.rep.share(len(j.idx))
		b := teacherBatch{n: hi - lo}
		for i := lo; i < hi; i++ {
			f, p, err := teacherInputs(paths[j.idx[i]], j.gray[i], cfg.ImgSize)
			if err != nil {
				return b, err
			}
			b.fe = append(b.fe, f...)
			b.pdn = append(b.pdn, p...)
		}
		return b, nil
	}
	// Each worker loads whole batches; as many batches as workers are in flight.
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	sc := schedule[teacherJob, teacherBatch]{
		total: cfg.Iterations, next: next, load: load, workers: workers, ahead: workers,
		dataState: func(j teacherJob) []byte { return j.rng },
		lr:        func(int) float64 { return learningRate },
		step: func(b teacherBatch, j teacherJob) ([]float64, error) {
			s2, s1 := int64(2*cfg.ImgSize), int64(cfg.ImgSize)
			loss, err := d.stepSlices(b.fe, b.pdn, int64(b.n), s2, s1, cfg.Device)
			return []float64{loss}, err
		},
		stage: StageDistill, progress: cfg.Progress,
		every: cfg.CheckpointEvery,
	}
	if d.rep.g != nil {
		sc.agree = func(losses []float64, stop bool) ([]float64, bool, error) {
			loss, stop, err := d.rep.meanLoss(losses[0], stop)
			return []float64{loss}, stop, err
		}
	}
	return sc
}

// teacherInputs loads one ImageNet image as the reference's teacher
// transform does: RandomGrayscale on the decoded image, then the extractor's
// input Resize((2·size, 2·size)) and the PDN's Resize((size, size)), each
// followed by ToTensor and the ImageNet normalisation.
func teacherInputs(path string, gray bool, size int) (fe, pdn []float32, err error) {
	img, err := datasets.DecodeFile(path)
	if err != nil {
		return nil, nil, err
	}
	if img.W == 0 || img.H == 0 {
		return nil, nil, fmt.Errorf("decode %s: empty image", path)
	}
	if gray {
		img = Grayscale(img)
	}
	fe = datasets.ToNormalizedTensor(datasets.Resize(img, 2*size, 2*size))
	pdn = datasets.ToNormalizedTensor(datasets.Resize(img, size, size))
	return fe, pdn, nil
}

// distiller is one step of teacher distillation.
type distiller struct {
	fe        *models.WRNExtractor
	pdn       *models.PDN
	mu, sigma *tb.Tensor // [384] on the device: the extractor's feature statistics
	opt       *tb.Adam
	prec      models.Precision // the PDN's precision in the steps
	// scaler scales the loss (nil: no scaling).
	scaler *lossScaler
	// rep is the process group whose ranks average their gradients.
	rep replicas
}

// observeStep, when not nil, is handed the time of each distillation step
// (inputs, forward, backward, gradient all-reduce and optimiser step) and
// of its all-reduce. Benchmarks set it.
var observeStep func(step, reduce time.Duration)

// backward computes the distillation loss of a batch (the extractor's
// input xFE and the PDN's input xPDN), zeroes and fills the gradients, and
// returns the loss.
func (d *distiller) backward(xFE, xPDN *tb.Tensor) (float64, error) {
	var loss float64
	err := tb.WithGrad(func() error {
		s := tb.NewScope()
		defer s.Close()
		if err := d.opt.ZeroGrad(); err != nil {
			return err
		}
		var target *tb.Tensor
		if err := tb.NoGrad(func() error {
			f := s.T(d.fe.Forward(xFE))
			target = s.T(models.NormalizeChannels(f, d.mu, d.sigma))
			return s.Err()
		}); err != nil {
			return err
		}
		net, x := d.pdn, xPDN
		if d.prec != models.FP32 && d.prec != "" {
			c, err := d.pdn.Cast(models.NetTeacher, d.prec)
			if err != nil {
				return err
			}
			defer models.Close(c)
			net, x = c, s.T(d.prec.Input(xPDN))
		}
		out := s.T(d.prec.Forward(net, x))
		l := s.T(tb.MSELoss(target, out, tb.ReduceMean))
		grads := l
		if d.scaler != nil {
			grads = s.T(d.scaler.scaled(l))
		}
		if err := s.Err(); err != nil {
			return err
		}
		if err := grads.Backward(); err != nil {
			return err
		}
		var err error
		loss, err = l.Item()
		return err
	})
	return loss, err
}

// stepSlices runs one optimisation step on a batch of n images given as
// normalised CHW values.
func (d *distiller) stepSlices(fe, pdn []float32, n, feSize, pdnSize int64, dev tb.Device) (float64, error) {
	s := tb.NewScope()
	defer s.Close()
	xFE := s.T(toDevice(s.T(tb.FromSlice(fe, n, 3, feSize, feSize)), dev))
	xPDN := s.T(toDevice(s.T(tb.FromSlice(pdn, n, 3, pdnSize, pdnSize)), dev))
	if err := s.Err(); err != nil {
		return 0, err
	}
	start := time.Now()
	loss, err := d.backward(xFE, xPDN)
	if err != nil {
		return 0, err
	}
	reduce, err := d.rep.averageGrads(d.opt.Params)
	if err != nil {
		return 0, err
	}
	// After the all-reduce every rank has the same gradients, so all skip
	// the same steps.
	if _, err := d.scaler.step(d.opt); err != nil {
		return 0, err
	}
	if observeStep != nil {
		observeStep(time.Since(start), reduce)
	}
	return loss, nil
}

// toDevice returns t on dev (a new handle).
func toDevice(t *tb.Tensor, dev tb.Device) (*tb.Tensor, error) {
	if t == nil {
		return nil, errors.New("no tensor")
	}
	return t.ToDevice(dev)
}

// statSample is one ImageNet image of the feature statistics.
type statSample struct {
	Path string
	Gray bool
}

// statDraws are the samples of the two statistics passes (observeDraws).
type statDraws struct{ pass1, pass2 []statSample }

// statSamples picks the images of the two statistics passes as the
// reference does: StatSamples indices from torch.randint(len, (n,)) with a
// CPU generator seeded with 42, the same for both passes; each pass has its
// own RandomGrayscale(0.1) decisions (statGrayscale).
func statSamples(paths []string, n int, seed uint64, ref *tb.Generator, need [2]bool) (pass1, pass2 []statSample, err error) {
	g, err := tb.NewGenerator(statSeed, tb.CPU)
	if err != nil {
		return nil, nil, err
	}
	defer g.Close()
	t, err := tb.RandInt(g, 0, int64(len(paths)), []int64{int64(n)}, tb.CPU)
	if err != nil {
		return nil, nil, err
	}
	idx, err := tb.Values[int64](t)
	t.Close()
	if err != nil {
		return nil, nil, err
	}
	gray, err := statGrayscale(n, seed, ref, need)
	if err != nil {
		return nil, nil, err
	}
	for i, k := range idx {
		pass1 = append(pass1, statSample{Path: paths[k], Gray: gray[0][i]})
		pass2 = append(pass2, statSample{Path: paths[k], Gray: gray[1][i]})
	}
	return pass1, pass2, nil
}

// statGrayscale draws the grayscale decisions of the n images of each
// statistics pass. From the run's stats stream, both passes' are drawn up
// front, so that pass 2 sees the same decisions whether or not pass 1 ran.
// From the reference random stream ref (when not nil) they are drawn image
// by image for the passes that run (need), as the reference draws them
// only while it computes a statistic; a pass that does not run has none.
func statGrayscale(n int, seed uint64, ref *tb.Generator, need [2]bool) (gray [2][]bool, err error) {
	gray = [2][]bool{make([]bool, n), make([]bool, n)}
	if ref != nil {
		for p := range gray {
			for i := 0; need[p] && i < n; i++ {
				if gray[p][i], err = drawGrayscale(ref, teacherGrayscaleP); err != nil {
					return gray, err
				}
			}
		}
		return gray, nil
	}
	sg, err := newStream(seed, streamStats, tb.CPU)
	if err != nil {
		return gray, err
	}
	defer sg.Close()
	u, err := tb.Rand(sg, []int64{int64(2 * n)}, tb.Float32, tb.CPU)
	if err != nil {
		return gray, err
	}
	us, err := tb.Values[float32](u)
	u.Close()
	if err != nil {
		return gray, err
	}
	for i := 0; i < n; i++ {
		gray[0][i], gray[1][i] = us[i] < teacherGrayscaleP, us[n+i] < teacherGrayscaleP
	}
	return gray, nil
}

// loadOrComputeStats returns the teacher folder's mu and sigma (on the
// device), computing and saving each one that is missing (the grayscale
// decisions from ref when not nil, see statGrayscale). In a data-parallel
// run, rank 0's folder decides what is missing, the ranks compute it
// together and every rank gets rank 0's values.
func loadOrComputeStats(ctx context.Context, cfg TeacherConfig, rep replicas, dir string, fe *models.WRNExtractor, paths []string, ref *tb.Generator) (mu, sigma *tb.Tensor, err error) {
	muPath, sigmaPath := filepath.Join(dir, models.MuFile), filepath.Join(dir, models.SigmaFile)
	need, err := rep.rootFlags(!exists(muPath), !exists(sigmaPath))
	if err != nil {
		return nil, nil, err
	}
	pass1, pass2, err := statSamples(paths, cfg.StatSamples, cfg.Seed, ref, need)
	if err != nil {
		return nil, nil, err
	}
	if observeDraws != nil {
		observeDraws(statDraws{pass1, pass2})
	}
	fs := featureStats{fe: fe, size: 2 * cfg.ImgSize, dev: cfg.Device, workers: cfg.Workers, rep: rep}
	mu, err = rep.stat(muPath, need[0], cfg.Log, func() (*tb.Tensor, error) {
		return fs.mean(ctx, pass1, func(i, n int) { cfg.Progress(StageTeacherMean, i, n, math.NaN()) })
	})
	if err != nil {
		return nil, nil, err
	}
	defer mu.Close()
	sigma, err = rep.stat(sigmaPath, need[1], cfg.Log, func() (*tb.Tensor, error) {
		return fs.std(ctx, pass2, mu, func(i, n int) { cfg.Progress(StageTeacherStd, i, n, math.NaN()) })
	})
	if err != nil {
		return nil, nil, err
	}
	defer sigma.Close()
	devMu, err := mu.ToDevice(cfg.Device)
	if err != nil {
		return nil, nil, err
	}
	devSigma, err := sigma.ToDevice(cfg.Device)
	if err != nil {
		devMu.Close()
		return nil, nil, err
	}
	return devMu, devSigma, nil
}

func loadStat(path string) (*tb.Tensor, error) {
	t, err := tb.LoadTensor(path)
	if err != nil {
		return nil, err
	}
	if s := t.Shape(); len(s) != 1 || s[0] != models.TeacherChannels {
		t.Close()
		return nil, fmt.Errorf("%s: expected shape [%d], found %v", path, models.TeacherChannels, s)
	}
	return t, nil
}

// featureStats computes the extractor's feature statistics on ImageNet
// samples, as the reference's _load_or_compute_mu_and_sigma: one image at a
// time, each output moved to the CPU.
type featureStats struct {
	fe      *models.WRNExtractor
	size    int // the extractor's input size
	dev     tb.Device
	workers int
	// rep shares the samples out over the ranks of a data-parallel run.
	rep replicas
}

// each runs the extractor on every sample of this rank's share, in order,
// and hands f the output [384, h, w] on the CPU.
func (s featureStats) each(ctx context.Context, samples []statSample, progress func(i, n int), f func(out *tb.Tensor) error) error {
	lo, hi := s.rep.share(len(samples))
	samples = samples[lo:hi]
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	i := 0
	next := func() (statSample, bool, error) {
		if i >= len(samples) {
			return statSample{}, false, nil
		}
		i++
		return samples[i-1], true, nil
	}
	work := func(sm statSample) ([]float32, error) {
		img, err := datasets.DecodeFile(sm.Path)
		if err != nil {
			return nil, err
		}
		if sm.Gray {
			img = Grayscale(img)
		}
		return datasets.ToNormalizedTensor(datasets.Resize(img, s.size, s.size)), nil
	}
	done := 0
	for it := range prefetch.Ordered(ctx, s.workers, 0, next, work) {
		if it.Err != nil {
			return it.Err
		}
		err := tb.NoGrad(func() error {
			sc := tb.NewScope()
			defer sc.Close()
			x := sc.T(toDevice(sc.T(tb.FromSlice(it.Out, 1, 3, int64(s.size), int64(s.size))), s.dev))
			out := sc.T(s.fe.Forward(x))
			out = sc.T(out.ToDevice(tb.CPU))
			out = sc.T(tb.Squeeze(out, []int64{0}))
			if err := sc.Err(); err != nil {
				return err
			}
			return f(out)
		})
		if err != nil {
			return err
		}
		done++
		progress(done, len(samples))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if done != len(samples) {
		return fmt.Errorf("feature statistics: %d of %d images processed", done, len(samples))
	}
	return nil
}

// mean is mu = mean over samples of each sample's spatial channel mean.
func (s featureStats) mean(ctx context.Context, samples []statSample, progress func(i, n int)) (*tb.Tensor, error) {
	var means []*tb.Tensor
	defer func() {
		for _, m := range means {
			m.Close()
		}
	}()
	err := s.each(ctx, samples, progress, func(out *tb.Tensor) error {
		m, err := tb.Mean(out, []int64{1, 2}, false)
		if err == nil {
			means = append(means, m)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.meanOf(means, len(samples))
}

// meanOf is the mean of the per-sample vectors of n samples, parts being
// this rank's: in one process the mean of their stack; over several ranks
// the sum of the ranks' partial sums divided by n.
func (s featureStats) meanOf(parts []*tb.Tensor, n int) (*tb.Tensor, error) {
	var m *tb.Tensor
	err := tb.NoGrad(func() error {
		sc := tb.NewScope()
		defer sc.Close()
		if s.rep.size() == 1 {
			m = sc.T(tb.Mean(sc.T(tb.Stack(parts, 0)), []int64{0}, false))
			if err := sc.Err(); err != nil {
				return err
			}
			sc.Keep(m)
			return nil
		}
		sum := sc.T(tb.Zeros([]int64{models.TeacherChannels}, tb.Float32, tb.CPU))
		if len(parts) > 0 {
			sum = sc.T(tb.Sum(sc.T(tb.Stack(parts, 0)), []int64{0}, false))
		}
		if err := sc.Err(); err != nil {
			return err
		}
		if err := s.rep.onDevice(sum, func(t *tb.Tensor) error { return s.rep.allReduce(dist.Sum, t) }); err != nil {
			return err
		}
		m = sc.T(tb.DivScalar(sum, float64(n)))
		if err := sc.Err(); err != nil {
			return err
		}
		sc.Keep(m)
		return nil
	})
	return m, err
}

// std is sigma = sqrt(mean over samples of each sample's spatial mean of
// (x − mu)²).
func (s featureStats) std(ctx context.Context, samples []statSample, mu *tb.Tensor, progress func(i, n int)) (*tb.Tensor, error) {
	mu3, err := tb.View(mu, -1, 1, 1)
	if err != nil {
		return nil, err
	}
	defer mu3.Close()
	var vars []*tb.Tensor
	defer func() {
		for _, v := range vars {
			v.Close()
		}
	}()
	err = s.each(ctx, samples, progress, func(out *tb.Tensor) error {
		sc := tb.NewScope()
		defer sc.Close()
		d := sc.T(tb.PowScalar(sc.T(tb.Sub(out, mu3)), 2))
		v := sc.T(tb.Mean(d, []int64{1, 2}, false))
		if err := sc.Err(); err != nil {
			return err
		}
		vars = append(vars, sc.Keep(v))
		return nil
	})
	if err != nil {
		return nil, err
	}
	v, err := s.meanOf(vars, len(samples))
	if err != nil {
		return nil, err
	}
	defer v.Close()
	var sigma *tb.Tensor
	err = tb.NoGrad(func() (err error) {
		sigma, err = tb.Sqrt(v)
		return err
	})
	return sigma, err
}

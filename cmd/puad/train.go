package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/evaluate/metrics"
	"github.com/puad-go/puad/internal/pyfmt"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
	"github.com/puad-go/puad/training"
)

func trainCommand() *cli.Command {
	return &cli.Command{
		Name:  "train",
		Usage: "train EfficientAD as the reference does: the teacher (distilled from WideResNet101-2 on ImageNet) or a category's student and autoencoder",
		Subcommands: []*cli.Command{
			trainTeacherCommand(),
			trainStudentCommand(),
		},
	}
}

// Flags of both training commands.
func trainFlags(iterations, batch int) []cli.Flag {
	return []cli.Flag{
		sizeFlag, deviceFlag, quietFlag, precisionFlag,
		&cli.IntFlag{Name: "iterations", Value: iterations, Usage: "training iterations"},
		&cli.IntFlag{Name: "batch-size", Value: batch, Usage: "images per iteration"},
		&cli.IntFlag{Name: "img-size", Value: training.DefaultImgSize, Usage: "input size of the networks"},
		&cli.Uint64Flag{Name: "seed", Usage: "seed of every random choice (initial weights, images, augmentations, dropout)"},
		&cli.IntFlag{Name: "checkpoint-every", Value: training.DefaultCheckpointEvery, Usage: "save a checkpoint every `N` iterations (0: only when interrupted)"},
		&cli.BoolFlag{Name: "resume", Usage: "continue an interrupted run from its checkpoint"},
		&cli.BoolFlag{Name: "reference-rng", Usage: "draw every random number as the reference's training does after torch.manual_seed(--seed) (CPU only; slower)"},
	}
}

// defaultWRNWeights is where torchvision keeps the checkpoint it downloads.
func defaultWRNWeights() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	p := filepath.Join(home, ".cache", "torch", "hub", "checkpoints", models.WRN101WeightsFile)
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

func trainTeacherCommand() *cli.Command {
	return &cli.Command{
		Name:      "teacher",
		Usage:     "distil the teacher PDN from WideResNet101-2 features on ImageNet (the reference's train_teacher)",
		ArgsUsage: "IMAGENET MODELS",
		Description: "IMAGENET is an ImageNet-style folder (class folders of images, e.g. ILSVRC2012's train folder);\n" +
			"MODELS is the model directory: MODELS/<size>_size/teacher/{teacher.pt, mu.pt, sigma.pt, train_loss.csv} are written.\n" +
			"mu.pt and sigma.pt (WideResNet101-2 feature statistics on --stat-samples ImageNet images) are reused when present.\n" +
			"--wrn-weights is torchvision's " + models.WRN101WeightsFile + " (default: torchvision's download cache, if there).",
		Flags: append(append(trainFlags(training.DefaultTeacherIterations, training.DefaultTeacherBatchSize),
			&cli.StringFlag{Name: "wrn-weights", Usage: "torchvision's wide_resnet101_2 ImageNet weights `FILE`"},
			&cli.IntFlag{Name: "stat-samples", Value: training.DefaultStatSamples, Usage: "ImageNet images of the feature statistics"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite an existing teacher.pt"},
		), distFlags()...),
		Action: trainTeacher,
	}
}

// trainTeacher is the action of `puad train teacher`: in this process, as
// one rank of a data-parallel run (under torchrun or --nproc-per-node's
// workers), or as the launcher of --nproc-per-node workers.
func trainTeacher(c *cli.Context) error {
	if c.NArg() != 2 {
		return usageError(c, "train teacher needs IMAGENET and MODELS, got %d arguments", c.NArg())
	}
	size, err := models.ParseSize(c.String("size"))
	if err != nil {
		return err
	}
	dev, err := tb.ParseDevice(c.String("device"))
	if err != nil {
		return err
	}
	weights := c.String("wrn-weights")
	if weights == "" {
		weights = defaultWRNWeights()
	}
	if weights == "" {
		return errors.New("--wrn-weights FILE is needed: " + wrnWeightsHelp())
	}
	if err := checkPositive(c, "iterations", "batch-size", "img-size", "stat-samples"); err != nil {
		return err
	}
	if started, err := launchWorkers(c); started {
		return err
	}
	group, release, dev, err := joinGroup(c, dev)
	if err != nil {
		return withDistHint(err)
	}
	defer release()
	ctx, stop := interruptible(c.Context)
	defer stop()
	root := group == nil || group.Rank() == 0
	bar := newProgressBar(c.Bool("quiet") || !root)
	cfg := training.TeacherConfig{
		ImageNetDir: c.Args().Get(0), ModelDir: c.Args().Get(1), Size: size, WRNWeights: weights,
		Iterations: c.Int("iterations"), BatchSize: c.Int("batch-size"), StatSamples: c.Int("stat-samples"),
		ImgSize: c.Int("img-size"), Seed: c.Uint64("seed"), Device: dev, Force: c.Bool("force"),
		CheckpointEvery: c.Int("checkpoint-every"), Resume: c.Bool("resume"), ReferenceRNG: c.Bool("reference-rng"),
		Progress: trainProgress(bar), Log: logWriter{}, Precision: models.Precision(c.String("precision")),
		Group: group,
	}
	if err := training.TrainTeacher(ctx, cfg); err != nil {
		if group != nil {
			err = fmt.Errorf("rank %d: %w", group.Rank(), err)
		}
		return withDistHint(withTrainHint(err))
	}
	if root {
		fmt.Printf("teacher saved to %s\n", models.Layout{Root: cfg.ModelDir, Size: size}.TeacherPath())
	}
	return nil
}

func trainStudentCommand() *cli.Command {
	return &cli.Command{
		Name:      "student",
		Usage:     "train a category's student and autoencoder, compute the quantiles and evaluate (the reference's train student)",
		ArgsUsage: "IMAGENET MODELS --dataset DATASET",
		Description: "IMAGENET is an ImageNet-style folder for the student's ImageNet penalty (\"none\" trains without it);\n" +
			"MODELS is the model directory holding MODELS/<size>_size/teacher/teacher.pt, or receiving the --teacher FILE\n" +
			"there in the reference's layout. MODELS/<size>_size/<dataset>/<category>/ (MODELS/<size>_size/custom/<NAME>/\n" +
			"for a plain folder) receives student.pt, autoencoder.pt, mu.pt, sigma.pt, quantile.pt, train_loss.csv and,\n" +
			"when DATASET has test images, results.txt (test AUROC, the reference's format).\n\n" + datasetHelp,
		Flags: append(trainFlags(training.DefaultStudentIterations, training.DefaultStudentBatchSize),
			&cli.StringFlag{Name: "dataset", Usage: "dataset folder `DATASET` to train on (required)"},
			nameFlag, teacherFlag,
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usageError(c, "train student needs IMAGENET and MODELS, got %d arguments", c.NArg())
			}
			if c.String("dataset") == "" {
				return usageError(c, "train student needs --dataset DATASET")
			}
			size, err := models.ParseSize(c.String("size"))
			if err != nil {
				return err
			}
			dev, err := tb.ParseDevice(c.String("device"))
			if err != nil {
				return err
			}
			if err := checkPositive(c, "iterations", "batch-size", "img-size"); err != nil {
				return err
			}
			imagenet := c.Args().Get(0)
			if strings.EqualFold(imagenet, "none") {
				imagenet = ""
			}
			ctx, stop := interruptible(c.Context)
			defer stop()
			bar := newProgressBar(c.Bool("quiet"))
			cfg := training.StudentConfig{
				ImageNetDir: imagenet, DatasetDir: c.String("dataset"), ModelDir: c.Args().Get(1), Size: size,
				Name: c.String("name"), TeacherFile: c.String("teacher"),
				Iterations: c.Int("iterations"), BatchSize: c.Int("batch-size"), ImgSize: c.Int("img-size"),
				Seed: c.Uint64("seed"), Device: dev, CheckpointEvery: c.Int("checkpoint-every"), Resume: c.Bool("resume"),
				ReferenceRNG: c.Bool("reference-rng"), Progress: trainProgress(bar), Log: logWriter{}, Precision: models.Precision(c.String("precision")),
			}
			res, err := training.TrainStudent(ctx, cfg)
			if err != nil {
				return withTrainHint(err)
			}
			if len(res.Dataset.Test) == 0 {
				fmt.Printf("no test images in %s: no test AUROC\n", cfg.DatasetDir)
			} else {
				auroc, perClass, err := scoreTrainedStudent(ctx, cfg, res)
				if err != nil {
					return err
				}
				fmt.Print(evaluate.ResultsText(auroc, perClass))
			}
			fmt.Printf("model saved to %s (final loss %s)\n", res.Dir, pyfmt.Float(res.FinalLoss))
			return nil
		},
	}
}

func checkPositive(c *cli.Context, names ...string) error {
	for _, n := range names {
		if c.Int(n) <= 0 {
			return usageError(c, "--%s must be positive, got %d", n, c.Int(n))
		}
	}
	if c.Int("checkpoint-every") < 0 {
		return usageError(c, "--checkpoint-every must not be negative")
	}
	return nil
}

// trainProgress shows the iteration, the loss and the rate on the bar.
func trainProgress(bar *progressBar) training.Progress {
	return func(stage string, iter, total int, loss float64) {
		note := ""
		if !math.IsNaN(loss) {
			note = fmt.Sprintf("loss %.5f", loss)
		}
		bar.Update(stage, iter, total, note)
	}
}

// logWriter prints the training's information lines on stderr.
type logWriter struct{}

func (logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		fmt.Fprintln(os.Stderr, "puad:", line)
	}
	return len(p), nil
}

var _ io.Writer = logWriter{}

// scoreTrainedStudent scores the test set with the model that TrainStudent
// saved, as the reference does after training, and writes its results.txt.
func scoreTrainedStudent(ctx context.Context, cfg training.StudentConfig, res *training.StudentResult) (float64, []metrics.ClassAUROC, error) {
	progress := func(stage string, done, total int) {
		if cfg.Progress != nil {
			cfg.Progress(stage, done, total, math.NaN())
		}
	}
	imgSize := cmp.Or(cfg.ImgSize, training.DefaultImgSize)
	auroc, perClass, err := evaluate.TestTrainedModel(ctx, cfg.ModelDir, cfg.Size, imgSize, cfg.Device, res.Dataset,
		evaluate.Options{Workers: cfg.Workers, Progress: progress})
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, fmt.Errorf("interrupted while scoring the test set; the trained model is saved in %s (puad eval scores it): %w", res.Dir, err)
		}
		return 0, nil, err
	}
	return auroc, perClass, nil
}

// trainHints say which flag acts on a training error.
var trainHints = []struct {
	err  error
	hint string
}{
	{training.ErrOutputExists, " (use --force)"},
	{training.ErrCheckpointExists, ": use --resume to continue it, or delete it to start over"},
	{training.ErrInterrupted, " (continue with --resume)"},
	{training.ErrNoTeacher, " (puad train teacher writes it, or give a published teacher with --teacher FILE)"},
	{training.ErrNoWRNWeights, wrnWeightsHint},
	{training.ErrNonFiniteLoss, " (the run diverged: check the data, or train with another --seed)"},
	{training.ErrLocked, " (wait for it to finish, or stop it)"},
	{training.ErrReferenceRNGDevice, " (--reference-rng needs --device cpu)"},
}

// withTrainHint appends the hint of err's kind to its message.
func withTrainHint(err error) error {
	for _, h := range trainHints {
		if errors.Is(err, h.err) {
			return fmt.Errorf("%w%s", err, h.hint)
		}
	}
	return err
}

const wrnWeightsHint = ": copy the file anywhere and pass it with --wrn-weights FILE"

// wrnWeightsHelp says where the WideResNet101-2 weights come from and how to pass them.
func wrnWeightsHelp() string { return training.WRNWeightsHelp() + wrnWeightsHint }

package reproduce

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/internal/atomicfile"
	"github.com/puad-go/puad/models"
	"github.com/puad-go/puad/training"
)

// TrainSettings are the inputs of training before evaluating. ImageNet
// must be a folder and WRNWeights a file; Run does not check them.
type TrainSettings struct {
	// ImageNet is the ImageNet training folder; WRNWeights torchvision's
	// wide_resnet101_2 ImageNet weights.
	ImageNet, WRNWeights string
	// TeacherIterations and StudentIterations are the training lengths
	// (0: the reference's).
	TeacherIterations, StudentIterations int
}

// hooks let the training step run before each category's evaluation.
// prepareSize runs once per seed and size before its categories;
// prepareCategory returns whether it replaced the category's models.
type hooks struct {
	prepareSize     func(ctx context.Context, modelRoot string, seed *int, size models.Size) error
	prepareCategory func(ctx context.Context, ref Category, modelRoot string, seed *int, size models.Size) (bool, error)
}

// trainingHooks returns the steps of training: the teacher of each size is
// distilled once (with the first seed) into <models>/<size>_size/teacher,
// unless the run is one of several shards, and copied into each seed's
// folder; a category's student and autoencoder are trained into
// <models>/seed<k> unless they are there already (or Force).
// Interrupted runs resume from their checkpoints. It is a variable so that
// tests can put a stand-in for training in its place.
var trainingHooks = func(cfg Config) hooks {
	t := &trainer{cfg: cfg, teachers: map[models.Size]*teacherState{}}
	if len(cfg.Seeds) > 0 {
		t.firstSeed = uint64(cfg.Seeds[0])
	}
	return hooks{prepareSize: t.prepareSize, prepareCategory: t.prepareCategory}
}

// ErrNoSharedTeacher is the reason of a shard's failed category runs when
// the teacher of their size is not trained: the shards of a run share it,
// so it is trained before they start.
var ErrNoSharedTeacher = errors.New("the teacher shared by the shards is not trained (train it before the shards start)")

// trainer trains the models of one Run.
type trainer struct {
	cfg       Config
	firstSeed uint64
	teachers  map[models.Size]*teacherState
}

// teacherState is the outcome of a size's teacher training.
type teacherState struct {
	err     error
	trained bool
}

// progress reports training progress under label, with the loss as a note.
func (t *trainer) progress(label string) training.Progress {
	return func(stage string, iter, total int, loss float64) {
		note := ""
		if !math.IsNaN(loss) {
			note = fmt.Sprintf("loss %.4f", loss)
		}
		t.cfg.progress(label+" "+stage, iter, total, note)
	}
}

// teacher trains the shared teacher of size once, unless it exists.
func (t *trainer) teacher(ctx context.Context, size models.Size) *teacherState {
	if st := t.teachers[size]; st != nil {
		return st
	}
	st := &teacherState{}
	t.teachers[size] = st
	cfg, ts := t.cfg, t.cfg.Train
	shared := models.Layout{Root: cfg.ModelRoot, Size: size}.TeacherDir()
	_, statErr := os.Stat(filepath.Join(shared, models.TeacherFile))
	if cfg.Shard != nil && cfg.Shard.Count > 1 {
		// Shards run at the same time: none trains the teacher they share.
		if statErr != nil {
			st.err = fmt.Errorf("%w: %v", ErrNoSharedTeacher, statErr)
		}
	} else if statErr != nil || cfg.Force {
		fmt.Fprintf(cfg.log(), "training the %s teacher into %s\n", size, shared)
		st.err = training.TrainTeacher(ctx, training.TeacherConfig{
			ImageNetDir: ts.ImageNet, ModelDir: cfg.ModelRoot, Size: size, WRNWeights: ts.WRNWeights,
			Iterations: ts.TeacherIterations, Seed: t.firstSeed, Device: cfg.Device, Force: cfg.Force,
			CheckpointEvery: training.DefaultCheckpointEvery, Resume: true,
			Progress: t.progress(fmt.Sprintf("teacher (%s)", size)), Log: cfg.log(), Precision: cfg.Precision,
		})
		st.trained = st.err == nil
	}
	if st.err != nil {
		st.err = fmt.Errorf("teacher (%s): %w", size, st.err)
	}
	return st
}

// prepareSize trains the teacher of size if needed and copies its files
// into the seed's model folder.
func (t *trainer) prepareSize(ctx context.Context, modelRoot string, seed *int, size models.Size) error {
	st := t.teacher(ctx, size)
	if st.err != nil {
		return st.err
	}
	shared := models.Layout{Root: t.cfg.ModelRoot, Size: size}.TeacherDir()
	dst := models.Layout{Root: modelRoot, Size: size}.TeacherDir()
	if dst == shared {
		return nil
	}
	for _, f := range models.TeacherFiles {
		if _, err := os.Stat(filepath.Join(dst, f)); err == nil && !st.trained {
			continue
		}
		data, err := os.ReadFile(filepath.Join(shared, f))
		if err != nil {
			if f != models.TeacherFile && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return err
		}
		if err := atomicfile.WriteFile(filepath.Join(dst, f), data, atomicfile.DefaultPerm); err != nil {
			return err
		}
	}
	return nil
}

// prepareCategory trains a category's student and autoencoder unless they
// are complete and no checkpoint of an unfinished training is there.
func (t *trainer) prepareCategory(ctx context.Context, ref Category, modelRoot string, seed *int, size models.Size) (bool, error) {
	cfg := t.cfg
	catDir := models.Layout{Root: modelRoot, Size: size}.CategoryDir(ref.Dataset, ref.Category)
	_, ckptErr := os.Stat(filepath.Join(catDir, training.CheckpointFile))
	if !cfg.Force && ckptErr != nil && missingModelFiles(modelRoot, size, ref.Dataset, ref.Category) == "" {
		return false, nil
	}
	k := uint64(0)
	if seed != nil {
		k = uint64(*seed)
	}
	progress := t.progress(fmt.Sprintf("%s/%s (%s%s)", ref.Dataset, ref.Category, size, seedLabel(seed)))
	res, err := training.TrainStudent(ctx, training.StudentConfig{
		ImageNetDir: cfg.Train.ImageNet, DatasetDir: ref.Dir, ModelDir: modelRoot, Size: size,
		Iterations: cfg.Train.StudentIterations, Seed: k, Device: cfg.Device,
		CheckpointEvery: training.DefaultCheckpointEvery, Resume: true,
		Progress: progress, Log: cfg.log(), Precision: cfg.Precision,
	})
	if err != nil {
		return false, err
	}
	// results.txt, as the reference writes it at the end of training.
	_, _, err = evaluate.TestTrainedModel(ctx, modelRoot, size, training.DefaultImgSize, cfg.Device, res.Dataset, evaluate.Options{
		Progress: func(stage string, done, total int) { progress(stage, done, total, math.NaN()) },
	})
	return err == nil, err
}

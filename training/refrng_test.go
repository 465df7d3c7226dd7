package training

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/puad-go/puad/internal/pyref"
	"github.com/puad-go/puad/internal/testtree"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// refRNGTol bounds the differences of the reference random stream's runs
// from the reference's: float32 summation order only (the runs measure
// bit-identical, as the run parity tests do).
const refRNGTol = 1e-4

// TestReferenceRNGTeacherMatchesPyTorch distils a teacher with the
// reference random stream and runs the reference's train_teacher as
// ref_runs.py transcribes it, seeded with torch.manual_seed: the same
// statistics samples, batches and grayscale draws, and the same files.
func TestReferenceRNGTeacherMatchesPyTorch(t *testing.T) {
	if pyref.Short() {
		t.Skip("short: the training runs against PyTorch take a while")
	}
	checkTeacherRunAgainstReference(t, 3, true, refRNGTol)
}

// TestReferenceRNGStudentMatchesPyTorch trains a student and autoencoder
// with the reference random stream and runs the reference's
// train_student_and_autoencoder as ref_runs.py transcribes it, seeded with
// torch.manual_seed: the same images, augmentations, grayscale draws and
// dropout masks, and the same files.
func TestReferenceRNGStudentMatchesPyTorch(t *testing.T) {
	if pyref.Short() {
		t.Skip("short: the training runs against PyTorch take a while")
	}
	checkStudentRunAgainstReference(t, refRNGStudentSteps, true, refRNGTol)
}

// refRNGStudentSteps is the iterations of the student run with the
// reference random stream: enough to draw every augmentation kind and both
// grayscale outcomes.
const refRNGStudentSteps = 8

// TestReferenceRNGStudentResume trains with the reference random stream
// straight through and interrupted after the first iteration and resumed:
// the checkpoint keeps the stream, so the files are the same bit for bit.
func TestReferenceRNGStudentResume(t *testing.T) {
	root := t.TempDir()
	imagenet := makeImageNet(t, root, 2, 2, 60, 140)
	dataset := makeCategory(t, filepath.Join(root, "data"))
	cfg := StudentConfig{
		ImageNetDir: imagenet, DatasetDir: dataset, Size: models.Small,
		Iterations: 3, ImgSize: 128, Seed: 5, Device: tb.CPU, ReferenceRNG: true,
	}
	a, b := cfg, cfg
	a.ModelDir, b.ModelDir = filepath.Join(root, "a"), filepath.Join(root, "b")
	teacher, err := RandomTeacher(a.ModelDir, models.Small, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, teacher, models.Layout{Root: b.ModelDir, Size: models.Small}.TeacherDir()+"/teacher.pt")
	resA, err := TrainStudent(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	ctx, progress := stopAfter(StageTrain, 1)
	b.Progress = progress
	var ie *InterruptedError
	if _, err := TrainStudent(ctx, b); !errors.As(err, &ie) || ie.Iteration != 1 {
		t.Fatalf("interrupted run: %v", err)
	}
	b.Resume, b.Progress = true, nil
	resB, err := TrainStudent(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	sameFiles(t, resA.Dir, resB.Dir, append(append([]string(nil), models.CategoryFiles...), "train_loss.csv")...)

	// A checkpoint of the run's own streams does not resume with the reference stream.
	c := cfg
	c.ModelDir, c.ReferenceRNG = filepath.Join(root, "c"), false
	copyFile(t, teacher, models.Layout{Root: c.ModelDir, Size: models.Small}.TeacherDir()+"/teacher.pt")
	ctx, c.Progress = stopAfter(StageTrain, 1)
	if _, err := TrainStudent(ctx, c); !errors.As(err, &ie) {
		t.Fatalf("interrupted run: %v", err)
	}
	c.Resume, c.Progress, c.ReferenceRNG = true, nil, true
	if _, err := TrainStudent(context.Background(), c); !errors.Is(err, ErrCheckpointMismatch) {
		t.Errorf("resuming another mode's checkpoint: %v, want ErrCheckpointMismatch", err)
	}
}

// TestReferenceRNGNeedsCPU: on a CUDA device the mode is refused before
// anything is read.
func TestReferenceRNGNeedsCPU(t *testing.T) {
	cuda := tb.Device{Type: tb.CUDAType}
	_, err := TrainStudent(context.Background(), StudentConfig{DatasetDir: t.TempDir(), ModelDir: t.TempDir(), Device: cuda, ReferenceRNG: true})
	if !errors.Is(err, ErrReferenceRNGDevice) {
		t.Errorf("student on CUDA: %v, want ErrReferenceRNGDevice", err)
	}
	err = TrainTeacher(context.Background(), TeacherConfig{ModelDir: t.TempDir(), Device: cuda, ReferenceRNG: true})
	if !errors.Is(err, ErrReferenceRNGDevice) {
		t.Errorf("teacher on CUDA: %v, want ErrReferenceRNGDevice", err)
	}
}

// TestReferenceRNGTeacherResume distils with the reference random stream
// straight through and interrupted after the first iteration and resumed:
// the files are the same bit for bit.
func TestReferenceRNGTeacherResume(t *testing.T) {
	root := t.TempDir()
	imagenet := makeImageNet(t, root, 2, 3, 60, 140)
	wrn := filepath.Join(root, "wrn.pth")
	testtree.WriteTinyWRN(t, wrn, 9)
	cfg := TeacherConfig{
		ImageNetDir: imagenet, Size: models.Small, WRNWeights: wrn,
		Iterations: 3, BatchSize: 2, StatSamples: 4, ImgSize: 64, Seed: 11, Device: tb.CPU, ReferenceRNG: true,
	}
	a, b := cfg, cfg
	a.ModelDir, b.ModelDir = filepath.Join(root, "a"), filepath.Join(root, "b")
	if err := TrainTeacher(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	ctx, progress := stopAfter(StageDistill, 1)
	b.Progress = progress
	var ie *InterruptedError
	if err := TrainTeacher(ctx, b); !errors.As(err, &ie) || ie.Iteration != 1 {
		t.Fatalf("interrupted run: %v", err)
	}
	b.Resume, b.Progress = true, nil
	if err := TrainTeacher(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	dirA := models.Layout{Root: a.ModelDir, Size: models.Small}.TeacherDir()
	dirB := models.Layout{Root: b.ModelDir, Size: models.Small}.TeacherDir()
	sameFiles(t, dirA, dirB, "teacher.pt", "mu.pt", "sigma.pt", "train_loss.csv")
}

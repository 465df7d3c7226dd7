package training

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// testRun opens a run of total iterations without networks in dir.
func testRun(t *testing.T, dir string, total int, resume bool, log *strings.Builder) *run {
	t.Helper()
	gen, err := newStream(1, streamData, tb.CPU)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gen.Close)
	r, err := openRun(runSetup{dir: dir, resume: resume, config: map[string]int{"iterations": total},
		params: func() []*tb.Tensor { return nil }, data: gen, logHeader: "iteration,loss,lr",
		total: total, dev: tb.CPU, log: log})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// testSchedule runs total iterations whose loss is losses[i] (1 after them).
func testSchedule(r *run, total, every int, losses ...float64) schedule[int, int] {
	i := 0
	return schedule[int, int]{
		total: total, workers: 1, ahead: 1,
		next:      func() (int, bool, error) { i++; return i, i <= total, nil },
		load:      func(j int) (int, error) { return j, nil },
		dataState: func(int) []byte { st, _ := r.data.State(); return st },
		lr:        func(int) float64 { return learningRate },
		step: func(_ int, j int) ([]float64, error) {
			if j <= len(losses) {
				return []float64{losses[j-1]}, nil
			}
			return []float64{1}, nil
		},
		stage: StageTrain, progress: func(string, int, int, float64) {}, every: every,
	}
}

// TestNonFiniteLossStops: the first NaN or infinite loss stops the run with
// ErrNonFiniteLoss, and the last checkpoint, of the last good iteration
// saved, is kept as it was.
func TestNonFiniteLossStops(t *testing.T) {
	for _, bad := range []float64{math.NaN(), math.Inf(1)} {
		dir := t.TempDir()
		var log strings.Builder
		r := testRun(t, dir, 6, false, &log)
		err := trainLoop(context.Background(), r, testSchedule(r, 6, 2, 1, 1, 1, bad))
		r.Close()
		if !errors.Is(err, ErrNonFiniteLoss) || !strings.Contains(err.Error(), "iteration 4 is") || !strings.Contains(err.Error(), "checkpoint of iteration 2 is kept") {
			t.Fatalf("loss %v: %v", bad, err)
		}
		ck, err := openCheckpoint(filepath.Join(dir, CheckpointFile))
		if err != nil {
			t.Fatal(err)
		}
		it, err := ck.int64Of("meta.iteration")
		ck.Close()
		if err != nil || it != 2 {
			t.Errorf("checkpoint of iteration %d (%v), want 2", it, err)
		}
	}
}

// TestCheckpointGuards: a checkpoint whose iteration count is outside the
// run is refused, temporary files of killed writes are removed by the next
// run, and a second run in the same folder stops at once.
func TestCheckpointGuards(t *testing.T) {
	dir := t.TempDir()
	var log strings.Builder
	r := testRun(t, dir, 4, false, &log)
	if err := trainLoop(context.Background(), r, testSchedule(r, 4, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := openRun(runSetup{dir: dir}); !errors.Is(err, ErrLocked) {
		t.Errorf("second run in the folder: %v", err)
	}
	r.Close()

	stale := filepath.Join(dir, ".checkpoint.pt.tmp-12345")
	if err := os.WriteFile(stale, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = testRun(t, dir, 4, true, &log)
	r.Close()
	if exists(stale) {
		t.Error("temporary file of a killed write left after --resume")
	}

	// A checkpoint claiming 10^12 iterations.
	path := filepath.Join(dir, CheckpointFile)
	sd, err := tb.LoadStateDict(path)
	if err != nil {
		t.Fatal(err)
	}
	huge, err := scalarInt64(1_000_000_000_000)
	if err != nil {
		t.Fatal(err)
	}
	sd.Set("meta.iteration", huge)
	err = tb.SaveStateDict(path, sd)
	sd.Close()
	if err != nil {
		t.Fatal(err)
	}
	gen, err := newStream(1, streamData, tb.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	_, err = openRun(runSetup{dir: dir, resume: true, config: map[string]int{"iterations": 4},
		params: func() []*tb.Tensor { return nil }, data: gen, total: 4, dev: tb.CPU, log: &log})
	if !errors.Is(err, ErrCheckpointMismatch) || !strings.Contains(err.Error(), "iteration 1000000000000") {
		t.Errorf("checkpoint of 10^12 iterations: %v", err)
	}
}

// TestFailedCheckpointKeepsModel: with checkpoints that cannot be written,
// training goes on with a warning and saves its model; with
// CheckpointEvery 0 no checkpoint is written at all.
func TestFailedCheckpointKeepsModel(t *testing.T) {
	root := t.TempDir()
	cfg := StudentConfig{DatasetDir: makeCategory(t, filepath.Join(root, "data")), ModelDir: filepath.Join(root, "models"),
		Size: models.Small, Iterations: 2, ImgSize: 128, Seed: 5, Device: tb.CPU, CheckpointEvery: 1}
	if _, err := RandomTeacher(cfg.ModelDir, models.Small, 1, false); err != nil {
		t.Fatal(err)
	}
	dir := models.Layout{Root: cfg.ModelDir, Size: models.Small}.CategoryDir("tiny", "tray")
	ckpt := filepath.Join(dir, CheckpointFile)
	var log strings.Builder
	cfg.Log = &log
	// A folder in the checkpoint's place, as a full disk, makes every write fail.
	cfg.Progress = func(stage string, it, total int, loss float64) {
		if stage == StageCategoryStat && it == 1 {
			if err := os.MkdirAll(filepath.Join(ckpt, "blocked"), 0o755); err != nil {
				t.Error(err)
			}
		}
		if stage == StageQuantiles && it == 1 {
			os.RemoveAll(ckpt)
		}
	}
	if _, err := TrainStudent(context.Background(), cfg); err != nil {
		t.Fatalf("training with failing checkpoints: %v", err)
	}
	if !strings.Contains(log.String(), "warning: training goes on without a checkpoint at iteration 1") {
		t.Errorf("log:\n%s", log.String())
	}
	m, err := models.LoadEfficientAD(cfg.ModelDir, models.Small, "tiny", "tray", 128, tb.CPU)
	if err != nil {
		t.Fatalf("model after failed checkpoints: %v", err)
	}
	m.Close()

	cfg.CheckpointEvery, cfg.Log = 0, nil
	saw := false
	cfg.Progress = func(stage string, it, total int, loss float64) {
		if stage == StageQuantiles && exists(ckpt) {
			saw = true
		}
	}
	if _, err := TrainStudent(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if saw {
		t.Error("--checkpoint-every 0 wrote a checkpoint at the end of training")
	}
}

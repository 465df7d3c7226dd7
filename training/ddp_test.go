package training

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/puad-go/puad/internal/pyref"
	"github.com/puad-go/puad/internal/testtree"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
	"github.com/puad-go/puad/torchbind/dist"
)

// ddpTol and ddpWeightTol bound the differences between a data-parallel
// run and a run in one process (and between puad's data-parallel run and
// PyTorch DDP's). They compute the same numbers in another order: the
// statistics as a sum of partial sums, the batch's loss as the mean of the
// ranks' mean losses, its gradient as the mean of theirs (the all-reduce
// adds in its own order; DDP divides before it adds). So the statistics and
// the losses differ by float32 rounding: measured 9e-8 (statistics) and
// 1e-8 (losses) relative, bounded by ddpTol. The weights differ more: Adam
// divides each gradient entry by its running magnitude, so where an entry
// is tiny (near eps) a rounding-level change of the gradient changes that
// entry's update by a sizeable part of the learning rate (1e-4 per step).
// Measured after 3 steps: 1.5e-6 at most, 9e-5 of the largest weight of
// the tensor (against PyTorch DDP on 2 ranks: 0, the same two-term sums);
// ddpWeightTol bounds it relative to the tensor's largest magnitude.
const (
	ddpTol       = 1e-5
	ddpWeightTol = 1e-3
)

// ddpWorkerEnv names the JSON file (a ddpWorker) that a re-executed test
// binary runs as one rank of a data-parallel run, instead of the tests.
const ddpWorkerEnv = "PUAD_TRAINING_DDP_WORKER"

// ddpWorker is one rank's part of a data-parallel test run.
type ddpWorker struct {
	Store       string `json:"store"` // FileStore path
	Rank, World int
	Timeout     float64 // seconds
	ImageNet    string
	ModelDir    string
	WRN         string
	Iterations  int
	BatchSize   int
	StatSamples int
	ImgSize     int
	Seed        uint64
	RefRNG      bool
	Resume      bool
	// StopAt cancels rank 0's context once this iteration is done; DieAt
	// ends this process at once (status 3) once it is done (0: never).
	StopAt, DieAt int
	// Threads are libtorch's intra-op threads (1 when 0); Timed reports
	// the steps after the first: "steps=N step=<s> reduce=<s>" (seconds).
	Threads int
	Timed   bool
	// LossScale, when not 0, scales the loss from this scale, which
	// doubles after ScaleInterval finite steps (0: the default 2000).
	LossScale     float32
	ScaleInterval int
}

// runDDPWorker runs the rank that ddpWorkerEnv describes, if any, and
// exits: it prints "ok", or the error's kind and message.
func runDDPWorker() {
	path := os.Getenv(ddpWorkerEnv)
	if path == "" {
		return
	}
	data, err := os.ReadFile(path + "." + os.Getenv("DDP_TEST_RANK"))
	if err != nil {
		fmt.Println("error: other:", err)
		os.Exit(1)
	}
	var w ddpWorker
	if err := json.Unmarshal(data, &w); err != nil {
		fmt.Println("error: other:", err)
		os.Exit(1)
	}
	tb.SetNumThreads(max(1, w.Threads))
	var steps int
	var stepTime, reduceTime time.Duration
	if w.Timed {
		observeStep = func(step, reduce time.Duration) {
			if steps++; steps > 1 {
				stepTime += step
				reduceTime += reduce
			}
		}
	}
	err = w.run()
	if w.Timed && err == nil {
		fmt.Printf("steps=%d step=%g reduce=%g\n", steps-1, stepTime.Seconds(), reduceTime.Seconds())
	}
	kind := "other"
	for _, k := range []struct {
		err  error
		name string
	}{{ErrInterrupted, "interrupted"}, {dist.ErrPeerFailed, "peer"}, {dist.ErrTimeout, "timeout"}, {ErrGroupSettings, "settings"}} {
		if errors.Is(err, k.err) {
			kind = k.name
			break
		}
	}
	if err != nil {
		fmt.Printf("error: %s: %v\n", kind, err)
	} else {
		fmt.Println("ok")
	}
	os.Exit(0)
}

func (w ddpWorker) run() error {
	store, err := dist.NewFileStore(w.Store, w.World)
	if err != nil {
		return err
	}
	defer store.Close()
	timeout := time.Duration(w.Timeout * float64(time.Second))
	g, err := dist.NewGroup(store, "gloo", w.Rank, w.World, timeout)
	if err != nil {
		return err
	}
	defer g.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if w.ScaleInterval > 0 {
		lossScaleInterval = w.ScaleInterval
	}
	cfg := TeacherConfig{
		ImageNetDir: w.ImageNet, ModelDir: w.ModelDir, Size: models.Small, WRNWeights: w.WRN,
		Iterations: w.Iterations, BatchSize: w.BatchSize, StatSamples: w.StatSamples, ImgSize: w.ImgSize,
		Seed: w.Seed, ReferenceRNG: w.RefRNG, Resume: w.Resume, Device: tb.CPU, Workers: 1, Group: g, lossScale: w.LossScale,
		Progress: func(stage string, it, total int, loss float64) {
			if stage != StageDistill {
				return
			}
			if it == w.DieAt {
				os.Exit(3)
			}
			if it == w.StopAt && w.Rank == 0 {
				cancel()
			}
		},
	}
	return TrainTeacher(ctx, cfg)
}

// ddpResult is how a rank ended: its exit status and output.
type ddpResult struct {
	code int
	out  string
}

// runRanks runs w as world ranks of a data-parallel run (test binaries
// re-executed, a FileStore in a fresh folder) and returns how each ended.
func runRanks(t testing.TB, w ddpWorker, world int, edit func(*ddpWorker)) []ddpResult {
	t.Helper()
	dir := t.TempDir()
	w.Store, w.World = filepath.Join(dir, "store"), world
	if w.Timeout == 0 {
		w.Timeout = 60
	}
	spec := filepath.Join(dir, "worker")
	cmds := make([]*exec.Cmd, world)
	outs := make([]*bytes.Buffer, world)
	for r := range world {
		w.Rank = r
		rw := w
		if edit != nil {
			edit(&rw)
		}
		data, _ := json.Marshal(rw)
		if err := os.WriteFile(spec+"."+strconv.Itoa(r), data, 0o644); err != nil {
			t.Fatal(err)
		}
		cmds[r] = exec.Command(os.Args[0], "-test.run=^$")
		cmds[r].Env = append(os.Environ(), ddpWorkerEnv+"="+spec, "DDP_TEST_RANK="+strconv.Itoa(r))
		outs[r] = &bytes.Buffer{}
		cmds[r].Stdout, cmds[r].Stderr = outs[r], outs[r]
		if err := cmds[r].Start(); err != nil {
			t.Fatal(err)
		}
	}
	res := make([]ddpResult, world)
	for r, c := range cmds {
		err := c.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			res[r].code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		res[r].out = strings.TrimSpace(outs[r].String())
	}
	return res
}

// requireOK fails the test unless every rank succeeded.
func requireOK(t *testing.T, res []ddpResult) {
	t.Helper()
	for r, x := range res {
		if x.code != 0 || !strings.HasSuffix(x.out, "ok") {
			t.Fatalf("rank %d: exit %d:\n%s", r, x.code, x.out)
		}
	}
}

// lossRun is a run's loss log as a refRun, to compare two puad runs.
func lossRun(t *testing.T, dir string) *refRun {
	t.Helper()
	r := &refRun{}
	for _, row := range readLossLog(t, filepath.Join(dir, "train_loss.csv")) {
		r.Losses = append(r.Losses, row[:len(row)-1])
		r.LR = append(r.LR, row[len(row)-1])
	}
	return r
}

func vectorOf(t *testing.T, path string) []float64 {
	t.Helper()
	var out []float64
	for _, v := range readTensors(t, path)[""] {
		out = append(out, float64(v))
	}
	return out
}

// compareRuns checks the teacher folders a and b (b the expected one)
// within ddpTol (statistics, losses) and ddpWeightTol (weights) and logs
// the largest differences.
func compareRuns(t *testing.T, a, b string) {
	t.Helper()
	checkVector(t, filepath.Join(a, models.MuFile), vectorOf(t, filepath.Join(b, models.MuFile)), ddpTol)
	checkVector(t, filepath.Join(a, models.SigmaFile), vectorOf(t, filepath.Join(b, models.SigmaFile)), ddpTol)
	worst := checkLosses(t, filepath.Join(a, "train_loss.csv"), lossRun(t, b), ddpTol)
	t.Logf("losses: largest relative difference per iteration %.3g", worst)
	t.Logf("teacher weights: largest relative difference %.3g", checkWeights(t, filepath.Join(a, "teacher.pt"), filepath.Join(b, "teacher.pt"), ddpWeightTol))
}

// ddpFixture is a tiny ImageNet folder and wide ResNet, and a 3-step
// distillation with a global batch of 16.
func ddpFixture(t *testing.T) (root string, w ddpWorker, cfg TeacherConfig) {
	root = t.TempDir()
	imagenet := makeImageNet(t, root, 2, 9, 60, 140)
	wrn := filepath.Join(root, "wrn.pth")
	testtree.WriteTinyWRN(t, wrn, 9)
	w = ddpWorker{ImageNet: imagenet, WRN: wrn, Iterations: 3, BatchSize: 16, StatSamples: 6, ImgSize: 64, Seed: 11}
	cfg = TeacherConfig{
		ImageNetDir: imagenet, Size: models.Small, WRNWeights: wrn, Iterations: w.Iterations, BatchSize: w.BatchSize,
		StatSamples: w.StatSamples, ImgSize: w.ImgSize, Seed: w.Seed, Device: tb.CPU, Workers: 1,
	}
	return root, w, cfg
}

func teacherDir(modelDir string) string {
	return models.Layout{Root: modelDir, Size: models.Small}.TeacherDir()
}

// TestDDPTeacher distils a teacher in one process and over 1 and 2 ranks
// (8 images each), and with PyTorch's DistributedDataParallel on 2 ranks;
// interrupts the 2-rank run on rank 0 after 2 steps and resumes it in one
// process; and distils with the reference random stream in one process
// and over 2 ranks.
func TestDDPTeacher(t *testing.T) {
	if pyref.Short() {
		t.Skip("short: several training runs")
	}
	root, w, cfg := ddpFixture(t)
	one := filepath.Join(root, "one")
	cfg.ModelDir = one
	prev := tb.NumThreads()
	tb.SetNumThreads(1)
	defer tb.SetNumThreads(prev)
	if err := TrainTeacher(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	w.ModelDir = filepath.Join(root, "w1")
	requireOK(t, runRanks(t, w, 1, nil))
	t.Run("world size 1 equals one process", func(t *testing.T) {
		sameFiles(t, teacherDir(one), teacherDir(w.ModelDir), "teacher.pt", "mu.pt", "sigma.pt", "train_loss.csv")
	})
	two := filepath.Join(root, "w2")
	w.ModelDir = two
	res := runRanks(t, w, 2, nil)
	requireOK(t, res)
	t.Run("2 ranks equal one process", func(t *testing.T) {
		compareRuns(t, teacherDir(two), teacherDir(one))
		for _, f := range []string{"teacher.pt", "train_loss.csv"} {
			if _, err := os.Stat(filepath.Join(teacherDir(two), f)); err != nil {
				t.Error(err)
			}
		}
	})
	t.Run("2 ranks equal PyTorch DDP", func(t *testing.T) { checkAgainstTorchDDP(t, w, teacherDir(two)) })
	t.Run("resume with another world size", func(t *testing.T) {
		w.ModelDir = filepath.Join(root, "resumed")
		res := runRanks(t, w, 2, func(x *ddpWorker) { x.StopAt = 1 })
		for r, x := range res {
			if !strings.Contains(x.out, "error: interrupted:") || !strings.Contains(x.out, "after 2 iterations") {
				t.Fatalf("rank %d: %s, want interrupted after 2 iterations", r, x.out)
			}
		}
		c := cfg
		c.ModelDir, c.Resume = w.ModelDir, true
		if err := TrainTeacher(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		compareRuns(t, teacherDir(c.ModelDir), teacherDir(two))
		a, b := lossRun(t, teacherDir(c.ModelDir)), lossRun(t, teacherDir(two))
		for i := range 2 {
			if a.Losses[i][0] != b.Losses[i][0] {
				t.Errorf("iteration %d before the interruption: loss %v, uninterrupted %v", i+1, a.Losses[i][0], b.Losses[i][0])
			}
		}
	})
	t.Run("loss scale resumed on every rank", func(t *testing.T) {
		// The scale doubles after every 2 finite steps: rank 0 resumes with
		// the doubled scale of its checkpoint, which the other rank must
		// take too, or the ranks' gradients would be averaged at different
		// scales.
		ws := w
		ws.LossScale, ws.ScaleInterval = 1024, 2
		ws.ModelDir = filepath.Join(root, "scaled")
		requireOK(t, runRanks(t, ws, 2, nil))
		ws.ModelDir = filepath.Join(root, "scaled-resumed")
		res := runRanks(t, ws, 2, func(x *ddpWorker) { x.StopAt = 1 })
		for r, x := range res {
			if !strings.Contains(x.out, "error: interrupted:") || !strings.Contains(x.out, "after 2 iterations") {
				t.Fatalf("rank %d: %s, want interrupted after 2 iterations", r, x.out)
			}
		}
		requireOK(t, runRanks(t, ws, 2, func(x *ddpWorker) { x.Resume = true }))
		sameFiles(t, teacherDir(filepath.Join(root, "scaled")), teacherDir(ws.ModelDir), "teacher.pt", "train_loss.csv")
	})
	t.Run("reference random stream", func(t *testing.T) {
		c := cfg
		c.ModelDir, c.ReferenceRNG = filepath.Join(root, "ref-one"), true
		if err := TrainTeacher(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		w.ModelDir, w.RefRNG = filepath.Join(root, "ref-two"), true
		requireOK(t, runRanks(t, w, 2, nil))
		compareRuns(t, teacherDir(w.ModelDir), teacherDir(c.ModelDir))
	})
}

// checkAgainstTorchDDP runs gen_ddp_teacher.py on the settings of w (2
// ranks, the statistics of the run in dir) and compares its losses and
// weights with the run's.
func checkAgainstTorchDDP(t *testing.T, w ddpWorker, dir string) {
	pyref.Require(t)
	out := t.TempDir()
	c := map[string]any{
		"world_size": 2, "seed": w.Seed, "iterations": w.Iterations, "batch_size": w.BatchSize, "img_size": w.ImgSize,
		"threads": 1, "imagenet": w.ImageNet, "wrn": w.WRN,
		"mu": filepath.Join(dir, models.MuFile), "sigma": filepath.Join(dir, models.SigmaFile),
	}
	data, _ := json.Marshal(c)
	cfgPath := filepath.Join(out, "config.json")
	if err := os.WriteFile(cfgPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pyref.Python, "testdata/gen_ddp_teacher.py", cfgPath, out)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen_ddp_teacher.py: %v\n%s", err, b)
	}
	data, err := os.ReadFile(filepath.Join(out, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref refRun
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	ref.LR = lossRun(t, dir).LR // the script logs no learning rate: it is constant
	worst := checkLosses(t, filepath.Join(dir, "train_loss.csv"), &ref, ddpTol)
	t.Logf("losses: largest relative difference per iteration %.3g", worst)
	t.Logf("teacher weights: largest relative difference %.3g", checkWeights(t, filepath.Join(dir, "teacher.pt"), filepath.Join(out, "teacher.pt"), ddpWeightTol))
}

// TestDDPRankFailure kills rank 1 after its first step: rank 0 stops with
// an error that says a peer failed (or timed out), well within the timeout.
func TestDDPRankFailure(t *testing.T) {
	root, w, _ := ddpFixture(t)
	w.ModelDir, w.Timeout = filepath.Join(root, "models"), 20
	start := time.Now()
	res := runRanks(t, w, 2, func(x *ddpWorker) {
		if x.Rank == 1 {
			x.DieAt = 1
		}
	})
	if res[1].code != 3 {
		t.Fatalf("rank 1: exit %d: %s", res[1].code, res[1].out)
	}
	if !strings.Contains(res[0].out, "error: peer:") && !strings.Contains(res[0].out, "error: timeout:") {
		t.Errorf("rank 0: %s; want a peer failure or a timeout", res[0].out)
	}
	if d := time.Since(start); d > 90*time.Second {
		t.Errorf("the run took %v to fail", d)
	}
	if _, err := os.Stat(filepath.Join(teacherDir(w.ModelDir), "teacher.pt")); err == nil {
		t.Error("a failed run wrote teacher.pt")
	}
	t.Logf("rank 0 after %v: %s", time.Since(start).Round(time.Millisecond), res[0].out)
}

// TestDDPSettingsRefused: a batch that does not split over the ranks, and
// ranks with other settings than rank 0's, are refused on every rank.
func TestDDPSettingsRefused(t *testing.T) {
	root, w, _ := ddpFixture(t)
	w.ModelDir, w.BatchSize = filepath.Join(root, "models"), 3
	for r, x := range runRanks(t, w, 2, nil) {
		if !strings.Contains(x.out, "error: settings:") || !strings.Contains(x.out, "does not split evenly over 2") {
			t.Errorf("batch 3 over 2 ranks: rank %d: %s", r, x.out)
		}
	}
	w.BatchSize = 4
	res := runRanks(t, w, 2, func(x *ddpWorker) {
		if x.Rank == 1 {
			x.Iterations, x.Seed = 5, 99 // another seed is taken over; other iterations are not
		}
	})
	if !strings.Contains(res[1].out, "error: settings:") || !strings.Contains(res[0].out, "error: peer:") {
		t.Errorf("other settings on rank 1: %v", res)
	}
	if _, err := os.Stat(filepath.Join(teacherDir(w.ModelDir), models.MuFile)); err == nil {
		t.Error("a refused run computed the statistics")
	}
}

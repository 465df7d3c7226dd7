package training

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/puad-go/puad/internal/cudatest"
	"github.com/puad-go/puad/internal/testtree"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// skipLine is what the loss scaler logs for a skipped step.
const skipLine = "step skipped"

// TestLossScalerUpdate follows GradScaler.update's rule through a sequence
// of finite and non-finite steps (growth interval 3 instead of 2000): a
// non-finite step halves the scale and restarts the count, 3 finite steps
// in a row double it. The state tensor follows.
func TestLossScalerUpdate(t *testing.T) {
	for _, c := range []struct {
		p    models.Precision
		init float32
		want float32 // 0: no scaler
	}{{models.FP16, 0, 65536}, {models.BF16, 0, 0}, {models.FP32, 0, 0}, {"", 0, 0}, {models.BF16, 8, 8}} {
		s, err := newLossScaler(c.p, c.init, tb.CPU, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := float32(0); s != nil {
			got = s.scale
			if s.interval != 2000 {
				t.Errorf("%q: growth interval %d, want GradScaler's 2000", c.p, s.interval)
			}
			s.Close()
			if got != c.want {
				t.Errorf("%q, initial %v: scale %v, want %v", c.p, c.init, got, c.want)
			}
		} else if c.want != 0 {
			t.Errorf("%q, initial %v: no scaler", c.p, c.init)
		}
	}

	var log bytes.Buffer
	s, err := newLossScaler(models.FP32, 8, tb.CPU, &log)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.interval = 3
	for i, c := range []struct {
		finite  bool
		scale   float32
		tracker int
	}{
		{true, 8, 1}, {true, 8, 2}, {true, 16, 0}, {false, 8, 0}, {true, 8, 1}, {false, 4, 0},
		{false, 2, 0}, {true, 2, 1}, {true, 2, 2}, {true, 4, 0},
	} {
		if err := s.update(c.finite); err != nil {
			t.Fatal(err)
		}
		st, err := s.state.Float64s()
		if err != nil {
			t.Fatal(err)
		}
		if s.scale != c.scale || s.tracker != c.tracker || st[0] != float64(c.scale) || st[1] != float64(c.tracker) {
			t.Errorf("step %d (finite %v): scale %v, %d finite in a row, state %v; want %v, %d", i+1, c.finite, s.scale, s.tracker, st, c.scale, c.tracker)
		}
	}
	if n := strings.Count(log.String(), skipLine); n != 3 {
		t.Errorf("%d skipped steps logged, want 3:\n%s", n, log.String())
	}
	if !strings.Contains(log.String(), "gradients not finite at loss scale 8: step skipped, scale now 4\n") {
		t.Errorf("log:\n%s", log.String())
	}

	for _, bad := range [][]float64{{0, 0}, {-1, 0}, {math.Inf(1), 0}, {math.NaN(), 0}, {8, -1}, {8, 1.5}, {8, 0, 0}} {
		v, err := tb.FromSlice(bad, int64(len(bad)))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.restore(v); err == nil {
			t.Errorf("state %v restored", bad)
		}
		v.Close()
	}
	v, _ := tb.FromSlice([]float64{1024, 7}, 2)
	defer v.Close()
	if err := s.restore(v); err != nil || s.scale != 1024 || s.tracker != 7 {
		t.Errorf("restore [1024 7]: scale %v, count %d, %v", s.scale, s.tracker, err)
	}
}

// TestLossScalerStep backpropagates a scaled loss into two parameters: the
// step divides the gradients by the scale exactly and updates the
// parameters; with an infinite or NaN gradient it skips the update (the
// parameters and Adam's step count stay) and halves the scale.
func TestLossScalerStep(t *testing.T) {
	p1, _ := tb.FromSlice([]float32{1, 2, 3}, 3)
	p2, _ := tb.FromSlice([]float32{-1, 0.5, 2, 4}, 2, 2)
	defer p1.Close()
	defer p2.Close()
	for _, p := range []*tb.Tensor{p1, p2} {
		if err := p.SetRequiresGrad(true); err != nil {
			t.Fatal(err)
		}
	}
	opt := tb.NewAdam([]*tb.Tensor{p1, p2}, 0.1, 0)
	defer opt.Close()
	var log bytes.Buffer
	s, err := newLossScaler(models.FP32, 1024, tb.CPU, &log)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// step backpropagates scale·(Σ p1·c1 + Σ p2·c2) and runs the scaler's
	// step; it returns whether the step ran and the unscaled gradients.
	step := func(c1, c2 []float32) (bool, [][]float32) {
		sc := tb.NewScope()
		defer sc.Close()
		if err := opt.ZeroGrad(); err != nil {
			t.Fatal(err)
		}
		var ran bool
		err := tb.WithGrad(func() error {
			w1, w2 := sc.T(tb.FromSlice(c1, 3)), sc.T(tb.FromSlice(c2, 2, 2))
			l := sc.T(tb.Add(sc.T(tb.Sum(sc.T(tb.Mul(p1, w1)), nil, false)), sc.T(tb.Sum(sc.T(tb.Mul(p2, w2)), nil, false))))
			scaled := sc.T(s.scaled(l))
			if err := sc.Err(); err != nil {
				return err
			}
			if err := scaled.Backward(); err != nil {
				return err
			}
			var err error
			ran, err = s.step(opt)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var grads [][]float32
		for _, p := range []*tb.Tensor{p1, p2} {
			g := sc.T(p.Grad())
			v, err := g.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			grads = append(grads, v)
		}
		return ran, grads
	}
	values := func() string {
		a, _ := p1.Float32s()
		b, _ := p2.Float32s()
		return fmt.Sprint(a, b)
	}

	c1, c2 := []float32{0.5, -3, 1e-30}, []float32{7, 1.25e-3, -2, 3e20}
	before := values()
	ran, grads := step(c1, c2)
	if !ran || fmt.Sprint(grads) != fmt.Sprint([][]float32{c1, c2}) {
		t.Errorf("finite step: ran %v, gradients %v; want the step and %v %v", ran, grads, c1, c2)
	}
	after := values()
	if after == before || opt.State()[0].Step != 1 || s.scale != 1024 {
		t.Errorf("finite step: parameters %s → %s, Adam step %d, scale %v", before, after, opt.State()[0].Step, s.scale)
	}
	for i, c := range [][2][]float32{
		{{0.5, float32(math.Inf(1)), 1}, c2},
		{c1, {7, float32(math.NaN()), -2, 3}},
		{c1, {7, 1, -2, 3e38}}, // finite, but 1024·3e38 overflows float32
	} {
		ran, _ := step(c[0], c[1])
		if ran || values() != after || opt.State()[0].Step != 1 || opt.State()[1].Step != 1 {
			t.Errorf("non-finite step %d: ran %v, parameters %s (were %s), Adam steps %d %d", i, ran, values(), after, opt.State()[0].Step, opt.State()[1].Step)
		}
		if want := float32(int(1024) >> (i + 1)); s.scale != want {
			t.Errorf("non-finite step %d: scale %v, want %v", i, s.scale, want)
		}
	}
	if n := strings.Count(log.String(), skipLine); n != 3 {
		t.Errorf("%d skipped steps logged, want 3:\n%s", n, log.String())
	}
}

// lossScalingPrecisions are the precisions the CPU trains in.
func lossScalingPrecisions(t *testing.T) []models.Precision {
	ps := []models.Precision{models.FP32}
	if models.BF16.Check(tb.CPU) == nil {
		ps = append(ps, models.BF16)
	} else {
		t.Log("no bfloat16 on this CPU: float32 only")
	}
	return ps
}

// TestStudentLossScalingIsExact trains a student and autoencoder with and
// without a loss scale of 2^16 (float16's default, here in float32 and
// bfloat16, which share float32's range): scaling by a power of two and
// dividing the gradients by it again is exact, so the losses and every file
// must be the same, bit for bit.
func TestStudentLossScalingIsExact(t *testing.T) {
	for _, p := range lossScalingPrecisions(t) {
		runs := trainStudentRuns(t, tb.CPU, 3, []precisionRun{{Precision: p}, {Precision: p, LossScale: lossScaleInit}})
		for _, r := range runs {
			if strings.Contains(r.Log, skipLine) {
				t.Errorf("%s, loss scale %v: a step was skipped:\n%s", p, r.LossScale, r.Log)
			}
		}
		t.Logf("%s: losses %v", p, runs[0].Losses)
		if fmt.Sprint(runs[0].Losses) != fmt.Sprint(runs[1].Losses) {
			t.Errorf("%s: losses %v without scaling, %v with", p, runs[0].Losses, runs[1].Losses)
		}
		sameFiles(t, runs[0].Dir, runs[1].Dir, models.StudentFile, models.AutoEncoderFile, "train_loss.csv")
	}
}

// TestTeacherLossScalingIsExact distils a teacher with and without a loss
// scale of 2^16: the same files, bit for bit (as for the student).
func TestTeacherLossScalingIsExact(t *testing.T) {
	root := t.TempDir()
	imagenet := makeImageNet(t, root, 2, 3, 60, 140)
	wrn := filepath.Join(root, "wrn.pth")
	testtree.WriteTinyWRN(t, wrn, 9)
	for _, p := range lossScalingPrecisions(t) {
		var dirs [2]string
		for i, scale := range []float32{0, lossScaleInit} {
			cfg := TeacherConfig{
				ImageNetDir: imagenet, Size: models.Small, WRNWeights: wrn, ModelDir: filepath.Join(root, fmt.Sprint(p, i)),
				Iterations: 3, BatchSize: 2, StatSamples: 4, ImgSize: 64, Seed: 11, Device: tb.CPU, Precision: p, lossScale: scale,
			}
			if err := TrainTeacher(context.Background(), cfg); err != nil {
				t.Fatalf("%s, loss scale %v: %v", p, scale, err)
			}
			dirs[i] = models.Layout{Root: cfg.ModelDir, Size: models.Small}.TeacherDir()
		}
		sameFiles(t, dirs[0], dirs[1], "teacher.pt", "train_loss.csv")
	}
}

// TestStudentLossScaleResumes trains with a loss scale, interrupted after
// the first and after the second iteration and resumed each time: every
// checkpoint holds the scale and the count of finite steps in a row, which
// the resumed run goes on from (a fresh scale would count 1 again), and the
// files at the end are those of the run straight through.
func TestStudentLossScaleResumes(t *testing.T) {
	root := t.TempDir()
	imagenet := makeImageNet(t, root, 2, 2, 60, 140)
	dataset := makeCategory(t, filepath.Join(root, "data"))
	cfg := StudentConfig{
		ImageNetDir: imagenet, DatasetDir: dataset, Size: models.Small,
		Iterations: 3, ImgSize: 128, Seed: 5, Device: tb.CPU, lossScale: 1024,
	}
	var dirs [2]string
	for i := range dirs {
		c := cfg
		c.ModelDir = filepath.Join(root, fmt.Sprint(i))
		if _, err := RandomTeacher(c.ModelDir, models.Small, 1, false); err != nil {
			t.Fatal(err)
		}
		dir := models.Layout{Root: c.ModelDir, Size: models.Small}.CategoryDir("tiny", "tray")
		for k := 1; i == 1 && k <= 2; k++ {
			ctx, progress := stopAfter(StageTrain, k)
			c.Progress = progress
			_, err := TrainStudent(ctx, c)
			var ie *InterruptedError
			if !errors.As(err, &ie) || ie.Iteration != k {
				t.Fatalf("run interrupted after iteration %d: %v", k, err)
			}
			sd, err := tb.LoadStateDict(filepath.Join(dir, CheckpointFile))
			if err != nil {
				t.Fatal(err)
			}
			st, ok := sd.Tensors["extra."+lossScaleKey]
			var v []float64
			if ok {
				v, err = st.Float64s()
			}
			sd.Close()
			if want := fmt.Sprint([]float64{1024, float64(k)}); err != nil || fmt.Sprint(v) != want {
				t.Errorf("checkpoint after iteration %d: loss scale state %v (%v), want %s", k, v, err, want)
			}
			c.Progress, c.Resume = nil, true
		}
		res, err := TrainStudent(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		dirs[i] = res.Dir
	}
	sameFiles(t, dirs[0], dirs[1], models.StudentFile, models.AutoEncoderFile, "train_loss.csv")
}

// TestCUDAFP16Training trains a student and autoencoder for three
// iterations on a CUDA device in float32 and in float16 (with the loss
// scale, from 2^16) from the same start: the float16 losses agree with the
// float32 ones to 1% (as bfloat16's do on the CPU, TestTrainStudentBF16),
// no step is skipped, and the saved weights are float32. Without CUDA
// there is nothing to train (TestTrainingRefusesFP16OnCPU checks the
// refusal); tools/gpu-check.sh runs it on a GPU.
func TestCUDAFP16Training(t *testing.T) {
	dev, ok := cudatest.Device(t)
	if !ok {
		return
	}
	runs := trainStudentRuns(t, dev, 3, []precisionRun{{Precision: models.FP32}, {Precision: models.FP16}})
	for _, r := range runs {
		if strings.Contains(r.Log, skipLine) {
			t.Errorf("%s: a step was skipped:\n%s", r.Precision, r.Log)
		}
		checkSavedFloat32(t, r)
	}
	checkLossesAgree(t, runs[0], runs[1], 0.01)
}

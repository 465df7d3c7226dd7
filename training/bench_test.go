package training

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/internal/pyref"
	"github.com/puad-go/puad/internal/testtree"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// benchImgSize is the image size of BenchmarkStudentStep: 128, so that
// `make bench` stays short on a small CPU machine (an iteration at the
// reference's 256 costs about four times as much on both sides), or
// PUAD_BENCH_IMG_SIZE.
func benchImgSize() int {
	if n, err := strconv.Atoi(os.Getenv("PUAD_BENCH_IMG_SIZE")); err == nil && n > 0 {
		return n
	}
	return 128
}

var pyBench struct {
	itPerSec float64
	threads  int
}

// BenchmarkStudentStep measures iterations per second of the student and
// autoencoder training loop (EfficientAD-S, batch 1, ImageNet penalty on,
// images decoded from 512×512 PNG files) and of the same loop in PyTorch
// (testdata/bench_step.py: the reference's loop body with its DataLoader
// and transforms) run right after for as many iterations, on the same
// machine and libtorch, with libtorch's default thread count on both sides.
// Reported: go-it/s, py-it/s and go/py.
func BenchmarkStudentStep(b *testing.B) {
	size := benchImgSize()
	dataDir, imagenet, modelDir := studentBenchTree(b)

	// One untimed warm-up iteration, then b.N timed ones.
	var start time.Time
	var elapsed time.Duration
	b.StopTimer()
	_, err := TrainStudent(context.Background(), StudentConfig{
		ImageNetDir: imagenet, DatasetDir: dataDir, ModelDir: modelDir, Size: models.Small,
		Iterations: b.N + 1, ImgSize: size, Seed: 1, Device: tb.CPU,
		Progress: func(stage string, it, total int, loss float64) {
			if stage != StageTrain {
				return
			}
			if it == 1 {
				start = time.Now()
				b.StartTimer()
			}
			if it == total {
				b.StopTimer()
				elapsed = time.Since(start)
			}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	goRate := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(goRate, "go-it/s")

	// The same number of iterations in PyTorch right after, so that both
	// see about the same load on a shared machine.
	pyref.Require(b)
	cmd := exec.Command(pyref.Python, "testdata/bench_step.py", dataDir, imagenet, strconv.Itoa(size), strconv.Itoa(b.N))
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("bench_step.py: %v\n%s", err, out)
	}
	var r struct {
		ItPerS  float64 `json:"it_per_s"`
		Threads int     `json:"threads"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		b.Fatalf("bench_step.py: %v: %s", err, out)
	}
	pyBench.itPerSec, pyBench.threads = r.ItPerS, r.Threads
	b.ReportMetric(pyBench.itPerSec, "py-it/s")
	b.ReportMetric(goRate/pyBench.itPerSec, "go/py")
	b.Logf("image size %d: Go %.3f it/s (%d libtorch threads), PyTorch %.3f it/s (%d threads)",
		size, goRate, tb.NumThreads(), pyBench.itPerSec, pyBench.threads)
}

// studentBenchTree writes what the student step benchmarks train on: a
// generated category of 8 training images of 512×512 pixels, a small
// ImageNet folder and a random EfficientAD-S teacher.
func studentBenchTree(b *testing.B) (dataDir, imagenet, modelDir string) {
	root := b.TempDir()
	sum, err := synth.Generate(filepath.Join(root, "data"), synth.Config{
		Seed: 4, Width: 512, Height: 512, DatasetName: "bench", Category: "tray",
		TrainGood: 8, WithValidation: true, ValidationGood: 1, TestGood: 1, TestLogical: 1, TestStructural: 1,
	})
	if err != nil {
		b.Fatal(err)
	}
	imagenet = makeImageNet(b, root, 2, 4, 300, 500)
	modelDir = filepath.Join(root, "models")
	if _, err := RandomTeacher(modelDir, models.Small, 1, false); err != nil {
		b.Fatal(err)
	}
	return sum.Dir, imagenet, modelDir
}

// BenchmarkStudentStepPrecision measures the student and autoencoder
// training step (EfficientAD-S, batch 1, ImageNet penalty on) in float32
// and in bfloat16 (StudentConfig.Precision) on the same images and
// threads, alternating the two for three rounds of b.N iterations and
// keeping each one's best rate. Reported: fp32-it/s, bf16-it/s, speedup.
func BenchmarkStudentStepPrecision(b *testing.B) {
	if err := models.BF16.Check(tb.CPU); err != nil {
		b.Skipf("bfloat16 cannot be measured here: %v", err)
	}
	size := benchImgSize()
	dataDir, imagenet, modelDir := studentBenchTree(b)
	rate := func(p models.Precision) float64 {
		var start time.Time
		var elapsed time.Duration
		_, err := TrainStudent(context.Background(), StudentConfig{
			ImageNetDir: imagenet, DatasetDir: dataDir, ModelDir: modelDir, Size: models.Small,
			Iterations: b.N + 1, ImgSize: size, Seed: 1, Device: tb.CPU, Precision: p,
			Progress: func(stage string, it, total int, loss float64) {
				if stage != StageTrain {
					return
				}
				if it == 1 { // the first iteration is a warm-up
					start = time.Now()
				}
				if it == total {
					elapsed = time.Since(start)
				}
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		return float64(b.N) / elapsed.Seconds()
	}
	b.StopTimer()
	var best [2]float64
	for r := 0; r < 3; r++ {
		for i, p := range []models.Precision{models.FP32, models.BF16} {
			best[i] = max(best[i], rate(p))
		}
	}
	b.ReportMetric(best[0], "fp32-it/s")
	b.ReportMetric(best[1], "bf16-it/s")
	b.ReportMetric(best[1]/best[0], "speedup")
	b.Logf("image size %d, %d threads: fp32 %.3f it/s, bf16 %.3f it/s, speed-up %.2fx", size, tb.NumThreads(), best[0], best[1], best[1]/best[0])
}

// BenchmarkDDPTeacherStep measures distillation steps per second over 2
// ranks of 1 thread each (Gloo on loopback) and in 1 rank of 2 threads, on
// the same global batch of 16 images (a wide ResNet with one block per
// layer, PUAD_BENCH_IMG_SIZE pixels, 64 by default, so that the benchmark
// stays within a few minutes on a small machine), and the share of the
// step time spent in the gradient all-reduce. The first step of each run is
// left out. Reported: steps/s and allreduce-%.
func BenchmarkDDPTeacherStep(b *testing.B) {
	root := b.TempDir()
	imagenet := makeImageNet(b, root, 2, 9, 300, 500)
	wrn := filepath.Join(root, "wrn.pth")
	testtree.WriteTinyWRN(b, wrn, 9)
	size := 64
	if os.Getenv("PUAD_BENCH_IMG_SIZE") != "" {
		size = benchImgSize()
	}
	for _, c := range []struct {
		name           string
		world, threads int
	}{{"2ranks-1thread", 2, 1}, {"1rank-2threads", 1, 2}} {
		b.Run(c.name, func(b *testing.B) {
			var steps int
			var step, reduce float64
			for i := 0; i < b.N; i++ {
				w := ddpWorker{
					ImageNet: imagenet, WRN: wrn, ModelDir: filepath.Join(root, c.name, strconv.Itoa(i)),
					Iterations: 4, BatchSize: 16, StatSamples: 2, ImgSize: size, Seed: 1, Threads: c.threads, Timed: true,
				}
				res := runRanks(b, w, c.world, nil)
				for r, x := range res {
					if x.code != 0 || !strings.HasSuffix(x.out, "ok") {
						b.Fatalf("rank %d: exit %d:\n%s", r, x.code, x.out)
					}
				}
				// Rank 0's steps and all-reduces.
				var n int
				var s, rd float64
				line := res[0].out[strings.LastIndex(res[0].out, "steps="):]
				if _, err := fmt.Sscanf(line, "steps=%d step=%g reduce=%g", &n, &s, &rd); err != nil {
					b.Fatalf("rank 0: %q: %v", line, err)
				}
				steps, step, reduce = steps+n, step+s, reduce+rd
			}
			b.ReportMetric(float64(steps)/step, "steps/s")
			b.ReportMetric(100*reduce/step, "allreduce-%")
		})
	}
}

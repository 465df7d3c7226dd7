package evaluate

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/datasets/refsplit"
	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/internal/pyref"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

var (
	benchOnce sync.Once
	benchDir  string
	benchWant e2eExpected
	benchPy   float64
)

// benchCase builds (once) a LOCO-like case with PyTorch — 30 training images
// (25 train + 5 validation by the split) and 15 test images at 256×256 — and
// times the reference's own procedure on it in Python.
func benchCase(b *testing.B) {
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "puad-eval-bench-")
		if err != nil {
			b.Fatal(err)
		}
		benchDir = dir
		pyref.Run(b, "testdata/e2e_reference.py", dir, "--n-train", "30", "--n-test", "5", "--time-reference")
		raw, err := os.ReadFile(filepath.Join(dir, "expected.json"))
		if err != nil {
			b.Fatal(err)
		}
		var extra struct {
			Seconds float64 `json:"reference_seconds"`
		}
		if err := json.Unmarshal(raw, &benchWant); err != nil {
			b.Fatal(err)
		}
		if err := json.Unmarshal(raw, &extra); err != nil {
			b.Fatal(err)
		}
		benchPy = extra.Seconds
	})
	if benchDir == "" {
		b.Skip("no benchmark case")
	}
}

// BenchmarkEval times Evaluate (what `puad eval` runs) on the same case and
// thread count as the Python reference procedure and reports the speed-up.
// The scores must be identical to the reference's.
func BenchmarkEval(b *testing.B) {
	benchCase(b)
	for _, bs := range []int{1, 4} {
		b.Run(map[int]string{1: "batch1", 4: "batch4"}[bs], func(b *testing.B) {
			catDir := filepath.Join(benchDir, "data", benchWant.DatasetName, benchWant.Category)
			ds, err := datasets.Open(catDir, refsplit.Perm)
			if err != nil {
				b.Fatal(err)
			}
			m, err := models.LoadEfficientAD(filepath.Join(benchDir, "models"), models.Small, benchWant.DatasetName, benchWant.Category, 256, tb.CPU)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			var res *Result
			var forward time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				res, err = Evaluate(context.Background(), ds, m, Options{Extractor: StudentExtractor, BatchSize: bs})
				if err != nil {
					b.Fatal(err)
				}
				forward += time.Since(start)
			}
			b.StopTimer()
			var maxRel float64
			for i, w := range benchWant.Test {
				maxRel = math.Max(maxRel, math.Abs(res.Test[i].EfficientAD-w.EfficientAD)/math.Abs(w.EfficientAD))
			}
			goSec := forward.Seconds() / float64(b.N)
			b.ReportMetric(goSec, "go-s/op")
			b.ReportMetric(benchPy, "py-reference-s/op")
			b.ReportMetric(benchPy/goSec, "speedup")
			b.ReportMetric(maxRel, "max-rel-score-diff")
			b.Logf("threads %d: Go %.2f s, reference procedure in Python %.2f s, speed-up %.2fx; max relative EfficientAD score difference %.1e",
				tb.NumThreads(), goSec, benchPy, benchPy/goSec, maxRel)
			if bs == 1 && maxRel != 0 {
				b.Errorf("batch-1 scores differ from the reference's by %.1e", maxRel)
			}
		})
	}
}

// convFLOPs is the multiply-add count ×2 of a convolution.
func convFLOPs(cin, cout, k, hout, wout int64) float64 {
	return 2 * float64(cin*cout*k*k*hout*wout)
}

// efficientADFLOPs counts the convolution FLOPs of one EfficientAD-S
// forward (teacher, student, autoencoder) at img×img.
func efficientADFLOPs(img int64) float64 {
	pdn := func(out int64) float64 {
		s1 := img - 3
		p1 := s1 / 2
		s2 := p1 - 3
		p2 := s2 / 2
		s3 := p2 - 2
		s4 := s3 - 3
		return convFLOPs(3, 128, 4, s1, s1) + convFLOPs(128, 256, 4, s2, s2) + convFLOPs(256, 256, 3, s3, s3) + convFLOPs(256, out, 4, s4, s4)
	}
	ae := 0.0
	ch := []int64{3, 32, 32, 64, 64, 64}
	s := img
	for i := 0; i < 5; i++ {
		s /= 2
		ae += convFLOPs(ch[i], ch[i+1], 4, s, s)
	}
	ae += convFLOPs(64, 64, 8, 1, 1)
	for _, u := range []int64{img/64 - 1, img / 32, img/16 - 1, img / 8, img/4 - 1, img/2 - 1} {
		ae += convFLOPs(64, 64, 4, u+1, u+1)
	}
	last := img/4 - 8
	ae += convFLOPs(64, 64, 3, last, last) + convFLOPs(64, 384, 3, last, last)
	return pdn(384) + pdn(768) + ae
}

// BenchmarkForwardShareOfGEMMPeak measures the EfficientAD-S forward pass
// (all three networks, one 256×256 image) against the best rate this
// machine reaches: a large convolution, and a BLAS matrix product.
func BenchmarkForwardShareOfGEMMPeak(b *testing.B) {
	g, _ := tb.NewGenerator(0, tb.CPU)
	defer g.Close()
	best := func(f func()) float64 {
		t := math.Inf(1)
		for i := 0; i < 4; i++ {
			start := time.Now()
			f()
			t = math.Min(t, time.Since(start).Seconds())
		}
		return t
	}
	// Two references: libtorch's BLAS matrix product (2048³), and a large
	// 3×3 convolution (512→512 channels on 64×64, oneDNN's blocked GEMM
	// kernels, the best rate convolutions reach on this machine).
	a, _ := tb.Randn(g, []int64{2048, 2048}, tb.Float32, tb.CPU)
	defer a.Close()
	gemm := 2 * 2048 * 2048 * 2048 / best(func() {
		y, _ := tb.Matmul(a, a)
		y.Close()
	})
	cx, _ := tb.Randn(g, []int64{1, 512, 64, 64}, tb.Float32, tb.CPU)
	cw, _ := tb.Randn(g, []int64{512, 512, 3, 3}, tb.Float32, tb.CPU)
	defer cx.Close()
	defer cw.Close()
	convPeak := convFLOPs(512, 512, 3, 62, 62) / best(func() {
		_ = tb.NoGrad(func() error {
			y, err := tb.Conv2d(cx, cw, nil, tb.ConvOptions{})
			y.Close()
			return err
		})
	})
	m, err := models.NewEfficientAD(models.Small, 256, tb.CPU)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	for _, mod := range []models.Module{m.Teacher, m.Student, m.AutoEncoder} {
		if err := models.InitDefault(mod, g, tb.CPU); err != nil {
			b.Fatal(err)
		}
	}
	x, _ := tb.Randn(g, []int64{1, 3, 256, 256}, tb.Float32, tb.CPU)
	defer x.Close()
	run := func() {
		_ = tb.InferenceMode(func() error {
			for _, f := range []func(*tb.Tensor) (*tb.Tensor, error){m.Teacher.Forward, m.Student.Forward, m.AutoEncoder.Forward} {
				y, err := f(x)
				if err != nil {
					b.Fatal(err)
				}
				y.Close()
			}
			return nil
		})
	}
	run()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		run()
	}
	sec := time.Since(start).Seconds() / float64(b.N)
	flops := efficientADFLOPs(256)
	b.ReportMetric(sec*1000, "forward-ms")
	b.ReportMetric(flops/sec/1e9, "GFLOP/s")
	b.ReportMetric(gemm/1e9, "blas-gemm-GFLOP/s")
	b.ReportMetric(convPeak/1e9, "conv-peak-GFLOP/s")
	b.ReportMetric(flops/sec/convPeak, "share-of-conv-peak")
	b.Logf("threads %d: EfficientAD-S forward %.0f ms, %.1f GFLOP (convolutions), %.1f GFLOP/s = %.0f%% of the large-convolution rate %.1f GFLOP/s (BLAS sgemm 2048³: %.1f GFLOP/s)",
		tb.NumThreads(), sec*1000, flops/1e9, flops/sec/1e9, 100*flops/sec/convPeak, convPeak/1e9, gemm/1e9)
}

// precisionRounds is how many times BenchmarkPrecision measures each
// precision, alternating them; the minimum counts (the machine is shared).
const precisionRounds = 3

// precisionBench holds what BenchmarkPrecision measured, once for all the
// runs the testing package makes of it.
var precisionBench struct {
	once       sync.Once
	metrics    []precisionMetric
	agreements []string // one line per case
}

type precisionMetric struct {
	name       string
	fp32, bf16 float64 // images per second
}

// BenchmarkPrecision compares float32 with bfloat16 on the benchmark case,
// with the same threads and images, measuring the two alternately
// (precisionRounds rounds, the best of each): the EfficientAD-S forward pass
// (the three networks) on batches of 1 and 8, and Evaluate end to end
// (batch 1). It reports images per second and the speed-ups, and the
// agreement that TestBF16AgreesWithFP32 requires: the change of the image
// AUROCs and the rank correlation of the scores, on this case, on a
// generated category, and on the data of `puad demo` with random weights
// and with the demo's own training repeated (demoIterations).
func BenchmarkPrecision(b *testing.B) {
	if !haveBF16(b) {
		return
	}
	benchCase(b)
	precisionBench.once.Do(func() {
		precisionBench.metrics = measurePrecisions(b)
		precisionBench.agreements = precisionAgreements(b)
	})
	for _, m := range precisionBench.metrics {
		b.ReportMetric(m.fp32, m.name+"-fp32-img/s")
		b.ReportMetric(m.bf16, m.name+"-bf16-img/s")
		b.ReportMetric(m.bf16/m.fp32, m.name+"-speedup")
		b.Logf("%-10s fp32 %6.2f img/s  bf16 %6.2f img/s  speed-up %.2fx", m.name, m.fp32, m.bf16, m.bf16/m.fp32)
	}
	for _, line := range precisionBench.agreements {
		b.Log(line)
	}
}

// precisionAgreements compares bfloat16's scores with float32's on the
// benchmark case, a generated category and the data of `puad demo`, a line
// per case.
func precisionAgreements(b *testing.B) []string {
	var lines []string
	for _, c := range []struct {
		name string
		open func() (*datasets.Dataset, func() *models.EfficientAD)
		opts Options
	}{
		{"bench case", func() (*datasets.Dataset, func() *models.EfficientAD) { return e2eCase(b, benchDir) }, Options{Extractor: StudentExtractor}},
		{"synth 128", func() (*datasets.Dataset, func() *models.EfficientAD) { return synthCase(b, b.TempDir(), 128) }, Options{Extractor: StudentExtractor, BatchSize: 8}},
		{"demo data, random weights", func() (*datasets.Dataset, func() *models.EfficientAD) { return demoDataCase(b, b.TempDir()) }, Options{Extractor: StudentExtractor, BatchSize: 8}},
		{"demo data, the demo's training", func() (*datasets.Dataset, func() *models.EfficientAD) {
			return demoTrainedCase(b, b.TempDir(), demoIterations)
		}, Options{Extractor: StudentExtractor, BatchSize: 8}},
	} {
		ds, load := c.open()
		lines = append(lines, fmt.Sprintf("%s: %s", c.name, compareToFP32(b, ds, load, models.BF16, c.opts)))
	}
	return lines
}

// demoIterations is the training of `puad demo` (its --iterations
// default), which BenchmarkPrecision repeats (4 minutes on two cores).
const demoIterations = 300

// demoDataCase generates the category of `puad demo` with its defaults
// (synth.DefaultConfig: 100 training, 20 validation and 60 test images,
// seed 1) and a model of random weights for the demo's 128 pixels.
func demoDataCase(b testing.TB, dir string) (*datasets.Dataset, func() *models.EfficientAD) {
	sum, err := synth.Generate(dir, synth.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	ds, err := datasets.Open(sum.Dir, func(n int) ([]int64, error) { return tb.Perm(42, n) })
	if err != nil {
		b.Fatal(err)
	}
	return ds, func() *models.EfficientAD { return randomModel(b, 128) }
}

// measurePrecisions times the forward passes and Evaluate in float32 and
// bfloat16, alternately.
func measurePrecisions(b *testing.B) []precisionMetric {
	ds, load := e2eCase(b, benchDir)
	nImages := float64(len(ds.Train) + len(ds.Valid) + len(ds.Test))
	precs := []models.Precision{models.FP32, models.BF16}
	var out []precisionMetric
	for _, bs := range []int64{1, 8} {
		var best [2]float64
		for r := 0; r < precisionRounds; r++ {
			for i, p := range precs {
				sec := timeForward(b, load, p, bs)
				if r == 0 || sec < best[i] {
					best[i] = sec
				}
			}
		}
		out = append(out, precisionMetric{fmt.Sprintf("forward-b%d", bs), float64(bs) / best[0], float64(bs) / best[1]})
	}
	var best [2]float64
	for r := 0; r < precisionRounds; r++ {
		for i, p := range precs {
			m := load()
			start := time.Now()
			_, err := Evaluate(context.Background(), ds, m, Options{Extractor: StudentExtractor, BatchSize: 1, Precision: p})
			sec := time.Since(start).Seconds()
			m.Close()
			if err != nil {
				b.Fatal(err)
			}
			if r == 0 || sec < best[i] {
				best[i] = sec
			}
		}
	}
	return append(out, precisionMetric{"eval", nImages / best[0], nImages / best[1]})
}

// timeForward is the time of one run of the three networks on a batch of
// bs random images in precision p (after one untimed run), on the device of
// the model load returns.
func timeForward(b testing.TB, load func() *models.EfficientAD, p models.Precision, bs int64) float64 {
	m := load()
	defer m.Close()
	if err := m.SetPrecision(p); err != nil {
		b.Fatal(err)
	}
	g, _ := tb.NewGenerator(1, tb.CPU)
	defer g.Close()
	xc, err := tb.Rand(g, []int64{bs, 3, m.ImgSize, m.ImgSize}, tb.Float32, tb.CPU)
	if err != nil {
		b.Fatal(err)
	}
	defer xc.Close()
	x, err := xc.ToDevice(m.Device)
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	best := math.Inf(1)
	err = tb.InferenceMode(func() error {
		for i := 0; i < 2; i++ {
			start := time.Now()
			in, err := p.Input(x)
			if err != nil {
				return err
			}
			for _, n := range []models.Network{m.Teacher, m.Student, m.AutoEncoder} {
				if err := forwardAndWait(p, n, in); err != nil {
					in.Close()
					return err
				}
			}
			in.Close()
			if i > 0 {
				best = math.Min(best, time.Since(start).Seconds())
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return best
}

// forwardAndWait runs n on x and reads one value of the output, which
// waits for a GPU to finish the work.
func forwardAndWait(p models.Precision, n models.Network, x *tb.Tensor) error {
	s := tb.NewScope()
	defer s.Close()
	mx := s.T(tb.Max(s.T(p.Forward(n, x)), nil, false))
	if err := s.Err(); err != nil {
		return err
	}
	_, err := mx.Item()
	return err
}

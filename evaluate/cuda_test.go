package evaluate

import (
	"fmt"
	"math"
	"testing"

	"github.com/puad-go/puad/internal/cudatest"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// randomModelOn is a model of random weights of the given size (as
// randomModel's, the same for every call) moved to dev.
func randomModelOn(t testing.TB, size models.Size, imgSize int64, dev tb.Device) *models.EfficientAD {
	t.Helper()
	m, err := models.NewEfficientAD(size, imgSize, tb.CPU)
	if err != nil {
		t.Fatal(err)
	}
	src := randomModel(t, imgSize)
	if size == models.Small {
		for i, mod := range []models.Module{m.Teacher, m.Student, m.AutoEncoder} {
			sd, err := models.StateDict([]models.Module{src.Teacher, src.Student, src.AutoEncoder}[i])
			if err == nil {
				err = models.LoadStateDict(mod, sd, dev, "random")
				sd.Close()
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	} else {
		g, _ := tb.NewGenerator(5, tb.CPU)
		defer g.Close()
		for _, mod := range []models.Module{m.Teacher, m.Student, m.AutoEncoder} {
			if err := models.InitDefault(mod, g, tb.CPU); err != nil {
				t.Fatal(err)
			}
			if err := models.To(mod, dev); err != nil {
				t.Fatal(err)
			}
		}
	}
	move := func(x *tb.Tensor) *tb.Tensor {
		y, err := x.ToDevice(dev)
		if err != nil {
			t.Fatal(err)
		}
		return y
	}
	m.Mu, m.Sigma = move(src.Mu), move(src.Sigma)
	for k, q := range src.Quantiles {
		m.Quantiles[k] = move(q)
	}
	m.Device = dev
	t.Cleanup(m.Close)
	return m
}

// TestCUDAMatchesCPU evaluates a generated category on the CPU and on CUDA
// in float32 (TF32 off, the default): every score within 1e-4 relative;
// then in bfloat16 and float16 on CUDA against CUDA float32: AUROCs within
// 0.01, Spearman of PUAD scores ≥ 0.99.
func TestCUDAMatchesCPU(t *testing.T) {
	dev, ok := cudatest.Device(t)
	if !ok {
		return
	}
	const size = 256
	ds, _ := synthCase(t, t.TempDir(), size)
	var res [2]*Result
	for i, d := range []tb.Device{tb.CPU, dev} {
		m := randomModelOn(t, models.Small, size, d)
		r, err := Evaluate(t.Context(), ds, m, Options{Extractor: StudentExtractor, BatchSize: 8})
		if err != nil {
			t.Fatal(err)
		}
		res[i] = r
	}
	var maxEff, maxPUAD float64
	for i, c := range res[0].Test {
		g := res[1].Test[i]
		maxEff = math.Max(maxEff, relErr(g.EfficientAD, c.EfficientAD))
		maxPUAD = math.Max(maxPUAD, math.Abs(g.PUAD-c.PUAD)/math.Max(1, math.Abs(c.PUAD)))
	}
	t.Logf("CUDA vs CPU float32: max relative difference EfficientAD %.2e, PUAD %.2e", maxEff, maxPUAD)
	if maxEff > 1e-4 || maxPUAD > 1e-4 {
		t.Errorf("CUDA float32 scores differ from the CPU's beyond 1e-4")
	}
	for _, p := range []models.Precision{models.BF16, models.FP16} {
		t.Run(string(p), func(t *testing.T) {
			load := func() *models.EfficientAD { return randomModelOn(t, models.Small, size, dev) }
			compareToFP32(t, ds, load, p, Options{Extractor: StudentExtractor, BatchSize: 8}).check(t, agreementChecks{EffAUROC: true, Rank: true})
		})
	}
}

// BenchmarkCUDAThroughput prints images per second of the EfficientAD
// forward pass (teacher, student, autoencoder) on CUDA for sizes S and M,
// batches of 1, 8 and 64, in each precision.
func BenchmarkCUDAThroughput(b *testing.B) {
	dev, ok := cudatest.Device(b)
	if !ok {
		return
	}
	for _, size := range []models.Size{models.Small, models.Medium} {
		for _, bs := range []int64{1, 8, 64} {
			for _, p := range []models.Precision{models.FP32, models.BF16, models.FP16} {
				load := func() *models.EfficientAD { return randomModelOn(b, size, 256, dev) }
				sec := timeForward(b, load, p, bs)
				b.Logf("EfficientAD-%s batch %2d %s: %8.1f images/s", size, bs, p, float64(bs)/sec)
				b.ReportMetric(float64(bs)/sec, fmt.Sprintf("%s-b%d-%s-img/s", size, bs, p))
			}
		}
	}
}

package detector_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"math"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/detector"
	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/evaluate/stats"
	"github.com/puad-go/puad/internal/evalsetup"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

func load(t *testing.T, opts detector.Options) *detector.Detector {
	t.Helper()
	d, err := detector.Load(modelDir, categoryDir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// referenceScores scores the test images with the evaluation pipeline
// (evaluate.RunImages) and the stored fit: what `puad eval` computes.
func referenceScores(t *testing.T, d *detector.Detector) []detector.Result {
	t.Helper()
	m, err := models.LoadEfficientAD(modelDir, models.Small, d.DatasetName(), d.Category(), int64(d.ImgSize()), tb.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	sc := &evaluate.Scorer{Model: m, Extractor: evaluate.Extractor(d.Fit().Extractor)}
	outs, err := evaluate.RunImages(context.Background(), sc, testImages, evaluate.Need{Score: true, Feature: true}, "test", evaluate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := d.Fit().Gaussian()
	var rs []detector.Result
	for _, o := range outs {
		maha, puad, anom := d.Fit().Score(g, o.Score, o.Feature)
		rs = append(rs, detector.Result{EfficientAD: o.Score, Mahalanobis: maha, PUAD: puad, Anomalous: anom})
	}
	return rs
}

func sameScores(a, b detector.Result) bool {
	return a.EfficientAD == b.EfficientAD && a.Mahalanobis == b.Mahalanobis && a.PUAD == b.PUAD && a.Anomalous == b.Anomalous
}

// TestPredictMatchesEvaluation checks that files, encoded bytes and images
// in memory all score as the evaluation pipeline does, bit for bit, and
// that the maps have the image's size and the score as their peak.
func TestPredictMatchesEvaluation(t *testing.T) {
	d := load(t, detector.Options{})
	want := referenceScores(t, d)
	ctx := context.Background()
	for i, p := range testImages {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fromBytes, err := d.PredictEncoded(ctx, data)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		fromImage, err := d.Predict(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		for _, got := range []detector.Result{fromBytes, fromImage} {
			if !sameScores(got, want[i]) || got.Threshold != d.Threshold() {
				t.Errorf("%s: got %+v, evaluation gives %+v", p, got, want[i])
			}
		}
		m, size := fromBytes.ModelMap()
		peak := float32(math.Inf(-1))
		for _, v := range m {
			peak = max(peak, v)
		}
		if size != d.ImgSize() || float64(peak) != fromBytes.EfficientAD {
			t.Errorf("%s: model map %d, peak %v, score %v", p, size, peak, fromBytes.EfficientAD)
		}
		amap, err := fromBytes.AnomalyMap()
		if err != nil || fromBytes.Width != 32 || fromBytes.Height != 32 || len(amap) != 32*32 {
			t.Errorf("%s: map at %dx%d of %d values: %v", p, fromBytes.Width, fromBytes.Height, len(amap), err)
		}
	}
}

// TestConcurrentAndBatched scores the test images from several goroutines
// at once and in batches: single-image results stay bit-exact, batches of
// four agree to float32 precision.
func TestConcurrentAndBatched(t *testing.T) {
	d := load(t, detector.Options{})
	ctx := context.Background()
	ins := make([]detector.Input, len(testImages))
	for i, p := range testImages {
		var err error
		if ins[i], err = d.DecodeFile(p); err != nil {
			t.Fatal(err)
		}
	}
	want, err := d.PredictBatch(ctx, ins)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range ins {
				i := (k + g) % len(ins)
				r, err := d.PredictBatch(ctx, ins[i:i+1])
				if err != nil {
					t.Error(err)
					return
				}
				if !sameScores(r[0], want[i]) {
					t.Errorf("goroutine %d, image %d: %+v, want %+v", g, i, r[0], want[i])
				}
			}
		}()
	}
	wg.Wait()

	batched := load(t, detector.Options{BatchSize: 4})
	rs, err := batched.PredictBatch(ctx, ins)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if math.Abs(r.PUAD-want[i].PUAD) > 1e-4*max(1, math.Abs(want[i].PUAD)) {
			t.Errorf("image %d in a batch of 4: PUAD %v, alone %v", i, r.PUAD, want[i].PUAD)
		}
	}
}

// TestErrors checks the typed errors of Load, decoding and Close.
func TestErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := detector.Load(modelDir, categoryDir, detector.Options{Size: models.Medium}); !errors.Is(err, stats.ErrNoFit) {
		t.Errorf("size m: %v", err)
	}
	var mismatch *stats.MismatchError
	if _, err := detector.Load(modelDir, categoryDir, detector.Options{Extractor: evaluate.TeacherExtractor}); !errors.As(err, &mismatch) {
		t.Errorf("teacher extractor: %v", err)
	}
	if _, err := detector.Load(modelDir, "/", detector.Options{}); err == nil || !strings.Contains(err.Error(), "<dataset>/<category>") {
		t.Errorf("category /: %v", err)
	}
	if _, err := os.Stat(evalsetup.FitPath(modelDir, models.Small, "mvtec_loco_anomaly_detection", "pushpins")); err != nil {
		t.Error(err)
	}

	d := load(t, detector.Options{Decode: datasets.DecodeOptions{MaxPixels: 100}})
	data, err := os.ReadFile(testImages[0])
	if err != nil {
		t.Fatal(err)
	}
	var big *datasets.ImageTooLargeError
	if _, err := d.PredictEncoded(ctx, data); !errors.As(err, &big) {
		t.Errorf("32x32 image over a 100-pixel limit: %v", err)
	}
	if _, err := d.PredictEncoded(ctx, []byte("not an image")); !errors.Is(err, datasets.ErrUnsupportedFormat) {
		t.Errorf("not an image: %v", err)
	}
	if _, err := d.PredictEncoded(ctx, data[:len(data)/2]); !errors.Is(err, datasets.ErrCorruptImage) && !errors.As(err, &big) {
		t.Errorf("truncated image: %v", err)
	}
	if _, err := d.Predict(ctx, image.NewRGBA(image.Rect(0, 0, 0, 0))); !errors.Is(err, detector.ErrEmptyImage) {
		t.Errorf("empty image: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.Predict(cancelled, image.NewGray(image.Rect(0, 0, 4, 4))); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	d.Close()
	d.Close()
	if _, err := d.Predict(ctx, image.NewGray(image.Rect(0, 0, 4, 4))); !errors.Is(err, detector.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// TestThresholdOverride judges by a threshold given in the options, and
// checks the confidence and the component of each result.
func TestThresholdOverride(t *testing.T) {
	ctx := context.Background()
	base := load(t, detector.Options{})
	data, err := os.ReadFile(testImages[1])
	if err != nil {
		t.Fatal(err)
	}
	r, err := base.PredictEncoded(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	fit := base.Fit()
	ze, zm, comp := fit.Fusion.Components(r.EfficientAD, r.Mahalanobis)
	if r.Confidence != fit.Confidence(r.PUAD) || r.Confidence < 0 || r.Confidence > 1 || r.Component != comp || (zm > ze) != (comp == stats.Unpicturable) {
		t.Errorf("confidence %v, component %v (z %v, %v)", r.Confidence, r.Component, ze, zm)
	}
	for _, th := range []float64{r.PUAD, math.Nextafter(r.PUAD, math.Inf(-1))} {
		d := load(t, detector.Options{Threshold: &th})
		got, err := d.PredictEncoded(ctx, data)
		if err != nil {
			t.Fatal(err)
		}
		if d.Threshold() != th || got.Threshold != th || got.Anomalous != (r.PUAD > th) || !sameScores(got.WithThreshold(r.Threshold), r) {
			t.Errorf("threshold %v: %+v", th, got)
		}
	}
	nan := math.NaN()
	if _, err := detector.Load(modelDir, categoryDir, detector.Options{Threshold: &nan}); err == nil {
		t.Error("NaN threshold accepted")
	}
}

// TestDefects checks the mask and its regions against the map and the
// fit's pixel threshold.
func TestDefects(t *testing.T) {
	d := load(t, detector.Options{})
	pt := d.Fit().PixelThreshold
	if pt == nil || pt.MaxFPR != stats.DefaultPixelFPR || pt.NumPixels != 3*d.ImgSize()*d.ImgSize() {
		t.Fatalf("pixel threshold %+v", pt)
	}
	for _, p := range testImages {
		in, err := d.DecodeFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := d.PredictBatch(context.Background(), []detector.Input{in})
		if err != nil {
			t.Fatal(err)
		}
		mask, regions, err := d.Defects(rs[0])
		if err != nil {
			t.Fatal(err)
		}
		amap, _ := rs[0].AnomalyMap()
		area := 0
		for i, v := range amap {
			if (float64(v) > pt.Value) != (mask.Pix[i] == 255) {
				t.Fatalf("%s: pixel %d value %v, mask %d", p, i, v, mask.Pix[i])
			}
			if mask.Pix[i] != 0 {
				area++
			}
		}
		sum := 0
		for _, g := range regions {
			sum += g.Area
			if g.MaxScore <= pt.Value || g.X0 >= g.X1 || g.Y0 >= g.Y1 || g.Area > (g.X1-g.X0)*(g.Y1-g.Y0) {
				t.Errorf("%s: region %+v", p, g)
			}
		}
		if sum != area || mask.Bounds().Dx() != in.Width() {
			t.Errorf("%s: regions cover %d pixels, the mask %d", p, sum, area)
		}
		t.Logf("%s: %d defect pixels in %d regions", p, area, len(regions))
	}
}

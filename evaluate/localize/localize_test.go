package localize

import (
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/evaluate/metrics"
)

const tw, th = 12, 9

// testSet is a category folder written for a test: its dataset and the
// masks of each test image.
type testSet struct {
	ds    *datasets.Dataset
	masks [][]metrics.Mask
	maps  [][]float32
}

func writeMask(t *testing.T, path string, m metrics.Mask) {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, tw, th))
	copy(img.Pix, m)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

// blob is a mask with value v in the rectangle [x0, x1)×[y0, y1).
func blob(v uint8, x0, y0, x1, y1 int) metrics.Mask {
	m := make(metrics.Mask, tw*th)
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			m[y*tw+x] = v
		}
	}
	return m
}

// newTestSet writes the ground truth of images of the given classes
// (channels per image: nil for good ones) in the given layout.
func newTestSet(t *testing.T, layout datasets.GroundTruthLayout, classes []string, items []string, chans [][]metrics.Mask) *testSet {
	t.Helper()
	dir := t.TempDir()
	ts := &testSet{ds: &datasets.Dataset{Dir: dir, Category: "cat", Classes: classes}}
	r := rand.New(rand.NewPCG(1, 2))
	count := map[string]int{}
	for i, class := range items {
		stem := fmt.Sprintf("%03d", count[class])
		count[class]++
		it := datasets.TestItem{Path: filepath.Join(dir, "test", class, stem+".png"), Class: class, Anomalous: class != datasets.NormalClass}
		ts.ds.Test = append(ts.ds.Test, it)
		for c, m := range chans[i] {
			if layout == datasets.MVTecADMasks {
				writeMask(t, filepath.Join(dir, "ground_truth", class, stem+"_mask.png"), m)
			} else {
				writeMask(t, filepath.Join(dir, "ground_truth", class, stem, fmt.Sprintf("%03d.png", c)), m)
			}
		}
		mp := make([]float32, tw*th)
		for j := range mp {
			mp[j] = float32(r.IntN(20)) / 4 // ties
		}
		ts.maps = append(ts.maps, mp)
		ts.masks = append(ts.masks, chans[i])
	}
	return ts
}

func (ts *testSet) run(t *testing.T) *Metrics {
	t.Helper()
	gt, err := Open(ts.ds)
	if err != nil {
		t.Fatal(err)
	}
	acc := NewAccumulator(gt, ts.ds.Classes)
	for i, it := range ts.ds.Test {
		masks, err := gt.Masks(it, tw, th)
		if err != nil {
			t.Fatal(err)
		}
		if err := acc.Add(it, ts.maps[i], tw, th, masks); err != nil {
			t.Fatal(err)
		}
	}
	m, err := acc.Result()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// pixelOf feeds the images whose class passes keep to a PixelAccumulator.
func (ts *testSet) pixelOf(t *testing.T, keep func(string) bool) metrics.PixelResult {
	a := metrics.NewPixelAccumulator()
	for i, it := range ts.ds.Test {
		if keep(it.Class) {
			if err := a.Add(ts.maps[i], tw, th, ts.masks[i]...); err != nil {
				t.Fatal(err)
			}
		}
	}
	r, err := a.Result()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func classOr(c string) func(string) bool {
	return func(x string) bool { return x == c || x == datasets.NormalClass }
}

func TestMVTecADLayout(t *testing.T) {
	ts := newTestSet(t, datasets.MVTecADMasks, []string{"crack", "good", "hole"},
		[]string{"crack", "crack", "good", "good", "hole"},
		[][]metrics.Mask{{blob(255, 0, 0, 3, 3)}, {blob(255, 5, 5, 12, 9)}, nil, nil, {blob(255, 2, 2, 4, 8)}})
	m := ts.run(t)
	all := ts.pixelOf(t, func(string) bool { return true })
	if m.PixelAUROC != all.PixelAUROC || m.AUPRO == nil || *m.AUPRO != all.AUPRO || m.AUSPRO != nil {
		t.Errorf("overall %+v, want pixel AUROC %v, AU-PRO %v, no AU-sPRO", m, all.PixelAUROC, all.AUPRO)
	}
	if len(m.PerClass) != 2 || m.PerClass[0].Class != "crack" || m.PerClass[1].Class != "hole" {
		t.Fatalf("per class %+v", m.PerClass)
	}
	for _, c := range m.PerClass {
		want := ts.pixelOf(t, classOr(c.Class))
		if c.PixelAUROC != want.PixelAUROC || *c.AUPRO != want.AUPRO {
			t.Errorf("%s: %v %v, want %v %v", c.Class, c.PixelAUROC, *c.AUPRO, want.PixelAUROC, want.AUPRO)
		}
	}
}

const testDefects = `[
 {"defect_name": "missing", "pixel_value": 255, "saturation_threshold": 1.0, "relative_saturation": true},
 {"defect_name": "scratch", "pixel_value": 7, "saturation_threshold": 5, "relative_saturation": false}
]`

func locoSet(t *testing.T, config bool) *testSet {
	ts := newTestSet(t, datasets.LOCOChannels, []string{"good", "logical_anomalies", "structural_anomalies"},
		[]string{"good", "good", "logical_anomalies", "structural_anomalies", "structural_anomalies"},
		[][]metrics.Mask{nil, nil, {blob(255, 1, 1, 5, 5)}, {blob(7, 0, 0, 12, 2), blob(7, 3, 3, 6, 9)}, {blob(255, 8, 4, 12, 9)}})
	if config {
		if err := os.WriteFile(filepath.Join(ts.ds.Dir, datasets.DefectsConfigFile), []byte(testDefects), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return ts
}

func TestLOCOLayout(t *testing.T) {
	ts := locoSet(t, true)
	m := ts.run(t)
	all := ts.pixelOf(t, func(string) bool { return true })
	if m.PixelAUROC != all.PixelAUROC || m.AUPRO != nil {
		t.Errorf("pixel AUROC %v (want %v), AU-PRO %v (want none)", m.PixelAUROC, all.PixelAUROC, m.AUPRO)
	}
	cfg, err := metrics.ParseDefectsConfig([]byte(testDefects), "test")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{}
	for _, c := range []string{"logical_anomalies", "structural_anomalies"} {
		a := metrics.NewSPROAccumulator(cfg)
		for i, it := range ts.ds.Test {
			if classOr(c)(it.Class) {
				if err := a.Add(ts.maps[i], tw, th, ts.masks[i]...); err != nil {
					t.Fatal(err)
				}
			}
		}
		r, err := a.Result()
		if err != nil {
			t.Fatal(err)
		}
		got := sproMap(r)
		for k, v := range got {
			want[k] += v / 2
		}
		for _, pc := range m.PerClass {
			if pc.Class == c && pc.AUSPRO[k05] != got[k05] {
				t.Errorf("%s AU-sPRO@0.05 %v, want %v", c, pc.AUSPRO[k05], got[k05])
			}
		}
	}
	if len(m.AUSPRO) != 4 {
		t.Fatalf("AU-sPRO keys %v, want 0.05 0.1 0.3 1.0", m.AUSPRO)
	}
	for k, v := range want {
		if math.Abs(m.AUSPRO[k]-v) > 1e-15 {
			t.Errorf("AU-sPRO@%s %v, want the mean of the classes %v", k, m.AUSPRO[k], v)
		}
	}
	var b strings.Builder
	m.WriteText(&b)
	for _, line := range []string{"pixel auroc : ", "au_spro@0.05 : ", "au_spro@1.0 for structural_anomalies : "} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("text lacks %q:\n%s", line, b.String())
		}
	}
}

const k05 = "0.05"

func TestLOCOWithoutConfigHasNoSPRO(t *testing.T) {
	m := locoSet(t, false).run(t)
	if m.AUSPRO != nil || m.AUPRO != nil || len(m.PerClass) != 2 || m.PerClass[0].AUSPRO != nil {
		t.Errorf("without defects_config.json: %+v", m)
	}
}

func TestNoGroundTruth(t *testing.T) {
	gt, err := Open(&datasets.Dataset{Dir: t.TempDir()})
	if gt != nil || err != nil {
		t.Fatalf("Open = %v, %v; want nil, nil", gt, err)
	}
}

func TestErrorsNameTheFile(t *testing.T) {
	t.Run("malformed config", func(t *testing.T) {
		ts := locoSet(t, false)
		path := filepath.Join(ts.ds.Dir, datasets.DefectsConfigFile)
		if err := os.WriteFile(path, []byte(`[{"defect_name": "x"}]`), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Open(ts.ds)
		var ce *metrics.DefectsConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), path) {
			t.Fatalf("error %v does not name %s", err, path)
		}
	})
	t.Run("missing mask", func(t *testing.T) {
		ts := locoSet(t, true)
		dir := filepath.Join(ts.ds.Dir, "ground_truth", "structural_anomalies", "001")
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		gt, err := Open(ts.ds)
		if err != nil {
			t.Fatal(err)
		}
		_, err = gt.Masks(ts.ds.Test[4], tw, th)
		var me *datasets.MissingMaskError
		if !errors.As(err, &me) || !strings.Contains(err.Error(), dir) {
			t.Fatalf("error %v does not name %s", err, dir)
		}
	})
	t.Run("wrong size", func(t *testing.T) {
		ts := newTestSet(t, datasets.MVTecADMasks, []string{"crack", "good"}, []string{"crack"},
			[][]metrics.Mask{{blob(255, 0, 0, 3, 3)}})
		gt, err := Open(ts.ds)
		if err != nil {
			t.Fatal(err)
		}
		_, err = gt.Masks(ts.ds.Test[0], tw+1, th)
		var se *datasets.MaskSizeError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), "000_mask.png") {
			t.Fatalf("error %v does not name the mask", err)
		}
	})
}

func TestMapPath(t *testing.T) {
	got := MapPath("out", "bottle", "broken_large", "/data/bottle/test/broken_large/003.png")
	if want := filepath.Join("out", "bottle", "test", "broken_large", "003.tiff"); got != want {
		t.Errorf("MapPath = %s, want %s", got, want)
	}
}

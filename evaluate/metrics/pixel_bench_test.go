package metrics

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"flag"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/puad-go/puad/internal/pyref"
)

var (
	pxBenchImages = flag.Int("pixel-bench-images", 12, "BenchmarkPixelMetrics: number of synthetic images")
	pxBenchSize   = flag.Int("pixel-bench-size", 256, "BenchmarkPixelMetrics: width and height of the synthetic images")
	pxBenchPython = flag.Bool("pixel-bench-python", true, "BenchmarkPixelMetrics: also time the Python transcription of the official scripts")
	pxBenchStream = flag.Bool("pixel-bench-stream", false, "BenchmarkPixelMetrics: generate the images in memory (no files, no Python)")
)

const pxBenchConfig = `[
  {"defect_name": "structural", "pixel_value": 255, "saturation_threshold": 1.0, "relative_saturation": true},
  {"defect_name": "logical", "pixel_value": 254, "saturation_threshold": 2000, "relative_saturation": false}
]`

// pxSynthImage fills m and mask with image i of the synthetic set: a
// smooth map (random values on a coarse grid, bilinearly upsampled, as
// EfficientAD's maps are) raised inside one to three elliptic defects, some
// of them cut by the border; every third image is defect-free.
func pxSynthImage(i, size int, m []float32, mask Mask) {
	rng := rand.New(rand.NewPCG(uint64(i), 7))
	const grid = 64
	var coarse [grid + 1][grid + 1]float32
	for y := range coarse {
		for x := range coarse[y] {
			coarse[y][x] = rng.Float32()
		}
	}
	clear(mask)
	if i%3 != 0 {
		value := uint8(255 - i%2)
		for range 1 + rng.IntN(3) {
			cy, cx := rng.Float64()*float64(size), rng.Float64()*float64(size)
			ry := float64(size) * (0.01 + 0.1*rng.Float64())
			rx := float64(size) * (0.01 + 0.1*rng.Float64())
			for y := max(0, int(cy-ry)); y < min(size, int(cy+ry)+1); y++ {
				for x := max(0, int(cx-rx)); x < min(size, int(cx+rx)+1); x++ {
					if dy, dx := (float64(y)-cy)/ry, (float64(x)-cx)/rx; dy*dy+dx*dx <= 1 {
						mask[y*size+x] = value
					}
				}
			}
		}
	}
	scale := float32(grid) / float32(size)
	for y := 0; y < size; y++ {
		fy := float32(y) * scale
		y0 := int(fy)
		wy := fy - float32(y0)
		for x := 0; x < size; x++ {
			fx := float32(x) * scale
			x0 := int(fx)
			wx := fx - float32(x0)
			v := (1-wy)*((1-wx)*coarse[y0][x0]+wx*coarse[y0][x0+1]) + wy*((1-wx)*coarse[y0+1][x0]+wx*coarse[y0+1][x0+1])
			if mask[y*size+x] != 0 {
				v += 0.5
			}
			m[y*size+x] = v
		}
	}
}

// pxWriteBenchData writes the synthetic set where gen_pixel_fixtures.py
// --bench reads it.
func pxWriteBenchData(b *testing.B, dir string, n, size int) {
	meta, err := json.Marshal(map[string]any{
		"images": n, "width": size, "height": size, "spro": true,
		"loco_config": json.RawMessage(pxBenchConfig),
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "meta.json"), meta, 0o644); err != nil {
		b.Fatal(err)
	}
	mf, err := os.Create(filepath.Join(dir, "maps.f32"))
	if err != nil {
		b.Fatal(err)
	}
	kf, err := os.Create(filepath.Join(dir, "masks.u8"))
	if err != nil {
		b.Fatal(err)
	}
	mw, kw := bufio.NewWriter(mf), bufio.NewWriter(kf)
	m, mask := make([]float32, size*size), make(Mask, size*size)
	for i := range n {
		pxSynthImage(i, size, m, mask)
		if err := binary.Write(mw, binary.LittleEndian, m); err != nil {
			b.Fatal(err)
		}
		if _, err := kw.Write(mask); err != nil {
			b.Fatal(err)
		}
	}
	for _, w := range []*bufio.Writer{mw, kw} {
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []io.Closer{mf, kf} {
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// pxPeakRSS returns the process's peak resident set in MiB (Linux), or 0.
func pxPeakRSS() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

type pxBenchPy struct {
	PixelAUROC   float64            `json:"pixel_auroc"`
	AUPRO        float64            `json:"au_pro"`
	AUPRO64      float64            `json:"au_pro_float64"`
	AUSPRO       map[string]float64 `json:"au_spro"`
	Thresholds   int                `json:"spro_thresholds"`
	AUROCSeconds float64            `json:"pixel_auroc_s"`
	PROSeconds   float64            `json:"au_pro_s"`
	SPROSeconds  float64            `json:"au_spro_s"`
	AUROCCPU     float64            `json:"pixel_auroc_cpu_s"`
	PROCPU       float64            `json:"au_pro_cpu_s"`
	SPROCPU      float64            `json:"au_spro_cpu_s"`
	PeakRSS      float64            `json:"peak_rss_mib"`
}

// BenchmarkPixelMetrics times pixel AUROC + AU-PRO (one PixelAccumulator)
// and AU-sPRO (one SPROAccumulator) on a synthetic set fed one image at a
// time, and, once, the Python transcription of the official scripts on the
// same maps and masks (scikit-learn's roc_auc_score, the official
// sort-based PRO curve, the official sampled and refined sPRO thresholds).
// It reports wall and CPU times, their ratios, the values' differences and
// the peak RSS of both processes. Size it with -pixel-bench-images and
// -pixel-bench-size, e.g. 50 and 1024. With -pixel-bench-stream the images
// are generated in memory instead of read from files, and Python is not
// run: that measures Go's memory at sizes (1725 images of 1024×1024) where
// the files would take 9 GB.
func BenchmarkPixelMetrics(b *testing.B) {
	n, size := *pxBenchImages, *pxBenchSize
	var next func(i int, m []float32, mask Mask)
	dir := ""
	if *pxBenchStream {
		next = func(i int, m []float32, mask Mask) { pxSynthImage(i, size, m, mask) }
	} else {
		dir = b.TempDir()
		pxWriteBenchData(b, dir, n, size)
		r := pxOpenBenchData(b, dir, size)
		next = r.next
	}
	var run pxBenchRun
	for b.Loop() {
		run = pxRunGo(b, n, size, next)
	}
	b.ReportMetric(run.wall, "go-s")
	b.ReportMetric(run.cpu, "go-cpu-s")
	b.ReportMetric(run.heapMiB, "go-heap-MiB")
	b.ReportMetric(pxPeakRSS(), "go-peak-RSS-MiB")
	b.ReportMetric(float64(n*size*size)/run.wall/1e6, "Mpixel/s")
	b.Logf("%d images %d×%d: Go %.2f s wall, %.2f s CPU for pixel AUROC, AU-PRO and AU-sPRO; live heap with both accumulators %.0f MiB; %d distinct scores",
		n, size, size, run.wall, run.cpu, run.heapMiB, run.distinct)
	b.Logf("Go: pixel AUROC %.15g  AU-PRO %.15g  AU-sPRO %v", run.ad.PixelAUROC, run.ad.AUPRO, run.lo.AUSPRO)
	if *pxBenchPython && !*pxBenchStream {
		pxBenchAgainstPython(b, dir, run)
	}
}

// pxBenchData reads the benchmark's files one image at a time.
type pxBenchData struct {
	b     *testing.B
	maps  io.Reader
	masks io.Reader
	buf   []byte
}

func pxOpenBenchData(b *testing.B, dir string, size int) *pxBenchData {
	mf, err := os.Open(filepath.Join(dir, "maps.f32"))
	if err != nil {
		b.Fatal(err)
	}
	kf, err := os.Open(filepath.Join(dir, "masks.u8"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { mf.Close(); kf.Close() })
	return &pxBenchData{b: b, maps: mf, masks: kf, buf: make([]byte, 4*size*size)}
}

func (r *pxBenchData) next(i int, m []float32, mask Mask) {
	if i == 0 {
		for _, f := range []io.Reader{r.maps, r.masks} {
			if _, err := f.(io.Seeker).Seek(0, io.SeekStart); err != nil {
				r.b.Fatal(err)
			}
		}
	}
	if _, err := io.ReadFull(r.maps, r.buf); err != nil {
		r.b.Fatal(err)
	}
	if _, err := io.ReadFull(r.masks, mask); err != nil {
		r.b.Fatal(err)
	}
	for j := range m {
		m[j] = math.Float32frombits(binary.LittleEndian.Uint32(r.buf[4*j:]))
	}
}

// pxBenchRun is what one pass of the Go side measured.
type pxBenchRun struct {
	ad                 PixelResult
	lo                 SPROResult
	wall, cpu, heapMiB float64
	distinct           int
}

// pxRunGo feeds the n images that next produces to both accumulators and
// times them, leaving out the time next takes.
func pxRunGo(b *testing.B, n, size int, next func(i int, m []float32, mask Mask)) pxBenchRun {
	cfg, err := ParseDefectsConfig([]byte(pxBenchConfig), "bench config")
	if err != nil {
		b.Fatal(err)
	}
	m, mask := make([]float32, size*size), make(Mask, size*size)
	start, cpu := time.Now(), pxCPUSeconds()
	var skip time.Duration
	var skipCPU float64
	pa, sa := NewPixelAccumulator(), NewSPROAccumulator(cfg)
	for i := range n {
		t, tc := time.Now(), pxCPUSeconds()
		next(i, m, mask)
		skip += time.Since(t)
		skipCPU += pxCPUSeconds() - tc
		var chans []Mask
		if slices.ContainsFunc(mask, func(v uint8) bool { return v != 0 }) {
			chans = []Mask{mask}
		}
		if err := pa.Add(m, size, size, chans...); err != nil {
			b.Fatal(err)
		}
		if err := sa.Add(m, size, size, chans...); err != nil {
			b.Fatal(err)
		}
	}
	var r pxBenchRun
	if r.ad, err = pa.Result(); err != nil {
		b.Fatal(err)
	}
	if r.lo, err = sa.Result(); err != nil {
		b.Fatal(err)
	}
	r.wall = (time.Since(start) - skip).Seconds()
	r.cpu = pxCPUSeconds() - cpu - skipCPU
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.heapMiB = float64(ms.HeapAlloc) / (1 << 20)
	pxWalk(pa.core.neg, pa.core.pos, func(uint32, pxCount, pxPos) { r.distinct++ })
	runtime.KeepAlive(sa)
	return r
}

func pxBenchAgainstPython(b *testing.B, dir string, run pxBenchRun) {
	ad, lo, goSeconds, goCPU := run.ad, run.lo, run.wall, run.cpu
	pyref.Require(b)
	cmd := exec.Command(pyref.Python, "testdata/gen_pixel_fixtures.py", "--bench", dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("python bench: %v", err)
	}
	var py pxBenchPy
	if err := json.Unmarshal(out, &py); err != nil {
		b.Fatalf("python bench output %q: %v", out, err)
	}
	pySeconds := py.AUROCSeconds + py.PROSeconds + py.SPROSeconds
	pyCPU := py.AUROCCPU + py.PROCPU + py.SPROCPU
	b.ReportMetric(pySeconds, "py-s")
	b.ReportMetric(pyCPU, "py-cpu-s")
	b.ReportMetric(pySeconds/goSeconds, "speedup-wall")
	if goCPU > 0 {
		b.ReportMetric(pyCPU/goCPU, "speedup-cpu")
	}
	b.ReportMetric(py.PeakRSS, "py-peak-RSS-MiB")
	b.Logf("Python wall (CPU): roc_auc_score %.2f (%.2f) s, PRO curve %.2f (%.2f) s, sPRO with %d refined thresholds %.2f (%.2f) s; total %.2f (%.2f) s",
		py.AUROCSeconds, py.AUROCCPU, py.PROSeconds, py.PROCPU, py.Thresholds, py.SPROSeconds, py.SPROCPU, pySeconds, pyCPU)
	b.Logf("Go is %.1f× faster in wall time, %.1f× in CPU time", pySeconds/goSeconds, pyCPU/goCPU)
	b.Logf("|pixel AUROC diff| %.3g; |AU-PRO diff| %.3g (official float32 FPRs), %.3g (float64 FPRs)",
		math.Abs(ad.PixelAUROC-py.PixelAUROC), math.Abs(ad.AUPRO-py.AUPRO), math.Abs(ad.AUPRO-py.AUPRO64))
	for _, a := range lo.AUSPRO {
		k := pxPyFloatKey(a.Limit)
		b.Logf("AU-sPRO@%s: exact %.9f, official refined thresholds %.9f (diff %.3g)",
			k, a.AUSPRO, py.AUSPRO[k], math.Abs(a.AUSPRO-py.AUSPRO[k]))
	}
}

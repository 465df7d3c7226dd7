package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/puad-go/puad/internal/pyref"
)

var pxUpdate = flag.Bool("update-pixel", false, "rewrite testdata/pixel_fixtures.json with gen_pixel_fixtures.py")

const pxFixtures = "testdata/pixel_fixtures.json"

// pxTol is the agreement required with the Python transcription of the
// official definitions. Both sides compute in float64 from the same float32
// scores and integer counts; they differ only in the order of additions
// (numpy's pairwise sums and cumsum against compensated running sums here),
// which moves results by a few ulps, about 1e-15 (measured: at most 4.5e-16).
const pxTol = 1e-12

type pxFixtureCase struct {
	Name       string             `json:"name"`
	Kind       string             `json:"kind"`
	Width      int                `json:"width"`
	Height     int                `json:"height"`
	Maps       [][]float32        `json:"maps"`
	Masks      [][]Mask           `json:"masks"`
	PixelAUROC float64            `json:"pixel_auroc"`
	AUPRO      float64            `json:"au_pro"`
	AUSPRO     map[string]float64 `json:"au_spro"`
}

type pxFixtureFile struct {
	LocoConfig json.RawMessage `json:"loco_config"`
	SPROLimits []float64       `json:"spro_limits"`
	Cases      []pxFixtureCase `json:"cases"`
}

// UnmarshalJSON reads a mask written as a list of numbers (encoding/json
// would expect base64 for a byte slice).
func (m *Mask) UnmarshalJSON(b []byte) error {
	var v []uint8
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*m = v
	return nil
}

func pxLoadFixtures(t *testing.T) pxFixtureFile {
	t.Helper()
	data, err := os.ReadFile(pxFixtures)
	if err != nil {
		t.Fatal(err)
	}
	var f pxFixtureFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func pxClose(t *testing.T, what string, got, want float64, worst *float64) {
	t.Helper()
	d := math.Abs(got - want)
	*worst = max(*worst, d)
	if !(d <= pxTol) {
		t.Errorf("%s = %.17g, want %.17g (|diff| %.3g)", what, got, want, d)
	}
}

func TestPixelMetricsAgreeWithOfficialDefinitions(t *testing.T) {
	f := pxLoadFixtures(t)
	if !slices.Equal(f.SPROLimits, SPROLimits) {
		t.Fatalf("fixture limits %v, package limits %v", f.SPROLimits, SPROLimits)
	}
	cfg, err := ParseDefectsConfig(f.LocoConfig, "fixture config")
	if err != nil {
		t.Fatal(err)
	}
	var worst float64
	for _, c := range f.Cases {
		t.Run(c.Name, func(t *testing.T) {
			switch c.Kind {
			case "ad":
				acc := NewPixelAccumulator()
				for i, m := range c.Maps {
					if err := acc.Add(m, c.Width, c.Height, c.Masks[i]...); err != nil {
						t.Fatal(err)
					}
				}
				r, err := acc.Result()
				if err != nil {
					t.Fatal(err)
				}
				pxClose(t, "pixel AUROC", r.PixelAUROC, c.PixelAUROC, &worst)
				pxClose(t, "AU-PRO", r.AUPRO, c.AUPRO, &worst)
			case "loco":
				acc := NewSPROAccumulator(cfg)
				for i, m := range c.Maps {
					if err := acc.Add(m, c.Width, c.Height, c.Masks[i]...); err != nil {
						t.Fatal(err)
					}
				}
				r, err := acc.Result()
				if err != nil {
					t.Fatal(err)
				}
				pxClose(t, "pixel AUROC", r.PixelAUROC, c.PixelAUROC, &worst)
				for _, a := range r.AUSPRO {
					want, ok := c.AUSPRO[pxPyFloatKey(a.Limit)]
					if !ok {
						t.Fatalf("no expected AU-sPRO at limit %v", a.Limit)
					}
					pxClose(t, "AU-sPRO@"+pxPyFloatKey(a.Limit), a.AUSPRO, want, &worst)
				}
			default:
				t.Fatalf("unknown kind %q", c.Kind)
			}
		})
	}
	t.Logf("largest difference from the Python transcription: %.3g", worst)
}

// pxPyFloatKey is str(limit) in Python for the limits used.
func pxPyFloatKey(l float64) string {
	b, _ := json.Marshal(l)
	if !bytes.ContainsAny(b, ".e") {
		b = append(b, ".0"...)
	}
	return string(b)
}

// TestPixelFixturesUpToDate regenerates the fixtures with the Python
// transcription and checks that the committed file is what it writes
// (-update-pixel rewrites it instead).
func TestPixelFixturesUpToDate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "pixel_fixtures.json")
	if *pxUpdate {
		out = pxFixtures
	}
	pyref.Run(t, "testdata/gen_pixel_fixtures.py", out)
	if *pxUpdate {
		return
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(pxFixtures)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: run go test -run TestPixelFixturesUpToDate -update-pixel", pxFixtures)
	}
}

func TestPixelAddErrors(t *testing.T) {
	acc := NewPixelAccumulator()
	m := make([]float32, 6)
	var se *SizeError
	if err := acc.Add(m[:5], 3, 2); !errors.As(err, &se) || se.What != "anomaly map" || se.Want != 6 {
		t.Errorf("short map: %v", err)
	}
	if err := acc.Add(m, 3, 2, make(Mask, 6), make(Mask, 7)); !errors.As(err, &se) || se.What != "mask 1" || se.Got != 7 {
		t.Errorf("long mask: %v", err)
	}
	if err := acc.Add(m, 0, 2); err == nil {
		t.Error("zero width accepted")
	}
	bad := slices.Clone(m)
	bad[4] = float32(math.NaN())
	if err := acc.Add(bad, 3, 2); err == nil {
		t.Error("NaN score accepted")
	}
	bad[4] = float32(math.Inf(1))
	if err := acc.Add(bad, 3, 2); err == nil {
		t.Error("infinite score accepted")
	}
	if r, err := acc.Result(); !errors.Is(err, ErrNoAnomalousPixel) {
		t.Errorf("after failed adds: %+v, %v; want ErrNoAnomalousPixel", r, err)
	}
	if err := acc.Add(m, 3, 2, Mask{1, 1, 1, 1, 1, 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := acc.Result(); !errors.Is(err, ErrNoNormalPixel) {
		t.Errorf("all anomalous: %v; want ErrNoNormalPixel", err)
	}
}

// TestPixelComponents checks the 8-connected labelling on its own.
func TestPixelComponents(t *testing.T) {
	mask := Mask{
		1, 1, 0, 0, 1,
		0, 0, 1, 0, 1,
		0, 0, 0, 0, 0,
		1, 0, 0, 1, 1,
		0, 1, 0, 1, 0,
	}
	a := NewPixelAccumulator()
	sizes := a.components(5, 5, []Mask{mask})
	want := []int{0, 3, 2, 2, 3}
	if !slices.Equal(sizes, want) {
		t.Errorf("sizes %v, want %v (labels %v)", sizes, want, a.labels)
	}
	// A U shape whose arms only meet at the bottom row merges late.
	u := Mask{
		1, 0, 1,
		1, 0, 1,
		1, 1, 1,
	}
	if sizes := a.components(3, 3, []Mask{u}); !slices.Equal(sizes, []int{0, 7}) {
		t.Errorf("U shape sizes %v", sizes)
	}
}

// TestPixelStore drives the store through its sparse, compacting and dense
// states and checks the walk against plain maps.
func TestPixelStore(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	neg := pxNewStore[pxCount](6, 4)
	pos := pxNewStore[pxPos](18, 16)
	wantNeg := map[uint32]pxCount{}
	wantPos := map[uint32]pxPos{}
	for i := 0; i < 300000; i++ {
		var k uint32
		switch rng.IntN(3) {
		case 0: // a dense bucket
			k = 0x7000_0000 | rng.Uint32N(1<<16)
		case 1: // a sparse bucket with repeats
			k = 0x1234_0000 | rng.Uint32N(3000)
		default:
			k = rng.Uint32()
		}
		if rng.IntN(4) == 0 {
			p := pxPos{n: 1, w: float64(rng.IntN(8))}
			pos.add(k, p)
			wantPos[k] = wantPos[k].pxPlus(p)
		} else {
			neg.add(k, 1)
			wantNeg[k]++
		}
	}
	var keys []uint32
	pxWalk(neg, pos, func(k uint32, n pxCount, p pxPos) {
		if n != wantNeg[k] || p != wantPos[k] {
			t.Fatalf("key %#x: got %d %+v, want %d %+v", k, n, p, wantNeg[k], wantPos[k])
		}
		keys = append(keys, k)
	})
	if !slices.IsSortedFunc(keys, func(a, b uint32) int { return int(int64(b) - int64(a)) }) {
		t.Error("walk not in descending key order")
	}
	all := map[uint32]bool{}
	for k := range wantNeg {
		all[k] = true
	}
	for k := range wantPos {
		all[k] = true
	}
	if len(keys) != len(all) {
		t.Errorf("walk visited %d keys, want %d", len(keys), len(all))
	}
	if neg.buckets[0x7000].dense == nil {
		t.Error("the full bucket did not turn dense")
	}
	if neg.buckets[0x1234].dense != nil {
		t.Error("the small bucket turned dense")
	}
}

func TestPixelKeyOrder(t *testing.T) {
	vals := []float32{float32(math.Inf(-1)), -math.MaxFloat32, -1, -math.SmallestNonzeroFloat32, 0,
		math.SmallestNonzeroFloat32, 1e-30, 0.5, 1, math.MaxFloat32, float32(math.Inf(1))}
	for i := 1; i < len(vals); i++ {
		if pxKey(vals[i-1]) >= pxKey(vals[i]) {
			t.Errorf("key(%v) >= key(%v)", vals[i-1], vals[i])
		}
	}
	if pxKey(float32(math.Copysign(0, -1))) != pxKey(0) {
		t.Error("-0 and +0 have different keys")
	}
}

func TestPixelSortKeys(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 2, 1000, 100000} {
		for _, mask := range []uint32{math.MaxUint32, 0xffff, 0x3f80ffff} {
			keys := make([]uint32, n)
			for i := range keys {
				keys[i] = rng.Uint32()&mask | 0x3f000000&^mask
			}
			want := slices.Clone(keys)
			slices.Sort(want)
			got, _ := pxSortKeys(keys, nil)
			if !slices.Equal(got, want) {
				t.Fatalf("n=%d mask=%#x: not sorted", n, mask)
			}
		}
	}
}

// TestPROTrapz checks the integration against hand-computed areas: a limit
// that is one of the x values (no interpolation, zero-width steps at the
// limit ignored) and one between two points (interpolated).
func TestPROTrapz(t *testing.T) {
	tr := proNewTrapz([]float64{0.25, 0.5, 0.3, 1})
	for _, p := range [][2]float64{{0, 0.5}, {0.25, 0.5}, {0.5, 1}, {0.5, 0.75}, {1, 1}} {
		tr.next(p[0], p[1])
	}
	got := tr.result()
	// The step from (0, 0) to (0, 0.5) is zero wide; then a rectangle of
	// 0.25 × 0.5, a trapezoid of 0.25 × 0.75 (y from 0.5 to 1), a zero-wide
	// drop to 0.75 and a trapezoid of 0.5 × 0.875. At 0.3 the line from
	// (0.25, 0.5) to (0.5, 1) is at y = 0.6.
	want := []float64{
		0.125 / 0.25,
		(0.125 + 0.25*0.75) / 0.5,
		(0.125 + 0.05*(0.5+0.6)/2) / 0.3,
		(0.125 + 0.25*0.75 + 0.5*0.875) / 1,
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-15 {
			t.Errorf("limit %v: %v, want %v", tr.limits[i], got[i], want[i])
		}
	}
}

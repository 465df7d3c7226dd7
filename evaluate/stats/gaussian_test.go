package stats

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// The fixtures are written by testdata/gen_stats_fixtures.py with numpy and
// scikit-learn; see that script for how each case is built.

type gaussianFixture struct {
	Name              string      `json:"name"`
	N                 int         `json:"n"`
	D                 int         `json:"d"`
	Features          [][]float64 `json:"features"` // float32 values, widened
	Location          []float64   `json:"location"`
	Shrinkage         float64     `json:"shrinkage"`
	Shrinkage32       float64     `json:"shrinkage_float32"`
	Queries           [][]float64 `json:"queries"` // float32 values, widened
	Mahalanobis       []float64   `json:"mahalanobis"`
	Mahalanobis32     []float64   `json:"mahalanobis_float32"`
	Covariance        [][]float64 `json:"covariance"`
	Pinv              [][]float64 `json:"pinv"`
	Entries           [][2]int    `json:"entries"`
	CovarianceEntries []float64   `json:"covariance_entries"`
	PinvEntries       []float64   `json:"pinv_entries"`
	CovarianceMaxAbs  float64     `json:"covariance_max_abs"`
	PinvMaxAbs        float64     `json:"pinv_max_abs"`
	EmpiricalCov      [][]float64 `json:"empirical_covariance"`
	EmpiricalPinv     [][]float64 `json:"empirical_pinv"`
	EmpiricalRank     int         `json:"empirical_rank"`
}

func loadJSON(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func loadGaussianFixtures(t testing.TB) []gaussianFixture {
	var f struct {
		Cases []gaussianFixture `json:"cases"`
	}
	loadJSON(t, "stats_gaussian.json", &f)
	if len(f.Cases) == 0 {
		t.Fatal("stats_gaussian.json has no cases")
	}
	return f.Cases
}

// loadShrinkageEdges loads the Ledoit-Wolf cases at both ends of its range:
// shrinkage clipped to 1, and 0.
func loadShrinkageEdges(t testing.TB) []gaussianFixture {
	var edges struct {
		Cases []gaussianFixture `json:"shrinkage_edges"`
	}
	loadJSON(t, "stats_float32.json", &edges)
	if len(edges.Cases) != 2 || edges.Cases[0].Shrinkage != 1 || edges.Cases[1].Shrinkage != 0 {
		t.Fatalf("stats_float32.json: want the shrinkage 1 and shrinkage 0 cases, got %d cases", len(edges.Cases))
	}
	return edges.Cases
}

func toFloat32(rows [][]float64) [][]float32 {
	out := make([][]float32, len(rows))
	for i, r := range rows {
		out[i] = make([]float32, len(r))
		for j, v := range r {
			out[i][j] = float32(v)
		}
	}
	return out
}

// matrixDiff returns max|got - want| and max|want| over the listed entries
// (all entries when idx is nil).
func matrixDiff(got mat.Matrix, want func(k, i, j int) float64, idx [][2]int) (diff, scale float64) {
	r, c := got.Dims()
	if idx == nil {
		for i := 0; i < r; i++ {
			for j := 0; j < c; j++ {
				idx = append(idx, [2]int{i, j})
			}
		}
	}
	for k, ij := range idx {
		w := want(k, ij[0], ij[1])
		diff = math.Max(diff, math.Abs(got.At(ij[0], ij[1])-w))
		scale = math.Max(scale, math.Abs(w))
	}
	return diff, scale
}

// matrixError returns max|got - want| / max|want|. Matrices are compared as
// a whole rather than elementwise because the off-diagonal entries of a
// covariance and of its inverse can be arbitrarily close to 0, where an
// elementwise relative error means nothing; dividing by the largest entry
// gives the error relative to the matrix's own size. An all-zero want is
// compared absolutely.
func matrixError(got mat.Matrix, want func(i, j int) float64) float64 {
	diff, scale := matrixDiff(got, func(_, i, j int) float64 { return want(i, j) }, nil)
	return scaled(diff, scale)
}

func scaled(diff, scale float64) float64 {
	if scale == 0 {
		return diff
	}
	return diff / scale
}

func relErr(got, want float64) float64 {
	if want == 0 {
		return math.Abs(got)
	}
	return math.Abs(got-want) / math.Abs(want)
}

func TestFitGaussianMatchesScikitLearn(t *testing.T) {
	// Measured against fixtures made on another machine: covariance 2.2e-15,
	// pinv 9.8e-14 (relative to the largest entry), shrinkage 2.6e-15,
	// Mahalanobis 6e-15 (relative). The bounds leave a margin of about 100×
	// (1000× for pinv, whose LAPACK SVD differs most between BLAS builds).
	const (
		matrixTol    = 1e-10 // covariance and pinv, relative to the largest entry
		shrinkageTol = 1e-13 // absolute
		distanceTol  = 1e-12 // Mahalanobis, relative
		meanTol      = 1e-14 // relative to the largest |mean|
	)
	var worstCov, worstInv, worstShrink, worstDist float64
	for _, c := range append(loadGaussianFixtures(t), loadShrinkageEdges(t)...) {
		t.Run(c.Name, func(t *testing.T) {
			g, err := FitGaussian(toFloat32(c.Features))
			if err != nil {
				t.Fatal(err)
			}
			if g.Dim() != c.D || g.N != c.N {
				t.Fatalf("Dim, N = %d, %d, want %d, %d", g.Dim(), g.N, c.D, c.N)
			}
			var meanDiff, meanScale float64
			for j, m := range c.Location {
				meanDiff = math.Max(meanDiff, math.Abs(g.Mean[j]-m))
				meanScale = math.Max(meanScale, math.Abs(m))
			}
			if meanDiff > meanTol*math.Max(meanScale, 1) {
				t.Errorf("mean differs from location_ by %g", meanDiff)
			}
			if d := math.Abs(g.Shrinkage - c.Shrinkage); d > shrinkageTol {
				t.Errorf("shrinkage = %.17g, want %.17g (diff %g)", g.Shrinkage, c.Shrinkage, d)
			} else {
				worstShrink = math.Max(worstShrink, d)
			}

			var covErr, invErr float64
			if c.Covariance != nil {
				covErr = matrixError(g.Covariance, func(i, j int) float64 { return c.Covariance[i][j] })
				invErr = matrixError(g.CovInv, func(i, j int) float64 { return c.Pinv[i][j] })
			} else {
				// Only sampled entries are stored, with the largest |entry|
				// of each whole matrix.
				d, _ := matrixDiff(g.Covariance, func(k, _, _ int) float64 { return c.CovarianceEntries[k] }, c.Entries)
				covErr = scaled(d, c.CovarianceMaxAbs)
				d, _ = matrixDiff(g.CovInv, func(k, _, _ int) float64 { return c.PinvEntries[k] }, c.Entries)
				invErr = scaled(d, c.PinvMaxAbs)
			}
			if covErr > matrixTol {
				t.Errorf("covariance relative error %g > %g", covErr, matrixTol)
			}
			if invErr > matrixTol {
				t.Errorf("pinv relative error %g > %g", invErr, matrixTol)
			}
			worstCov = math.Max(worstCov, covErr)
			worstInv = math.Max(worstInv, invErr)

			for q, v := range c.Queries {
				got := g.Mahalanobis64(v)
				got32 := g.Mahalanobis(toFloat32([][]float64{v})[0])
				if got != got32 {
					t.Errorf("query %d: Mahalanobis of the float32 and float64 vector differ: %v, %v", q, got32, got)
				}
				e := relErr(got, c.Mahalanobis[q])
				if e > distanceTol {
					t.Errorf("query %d: Mahalanobis = %.17g, want %.17g (rel err %g)", q, got, c.Mahalanobis[q], e)
				}
				worstDist = math.Max(worstDist, e)
			}
			t.Logf("shrinkage %.6f, covariance err %.2g, pinv err %.2g", g.Shrinkage, covErr, invErr)
		})
	}
	t.Logf("worst over fixtures: covariance %.2g, pinv %.2g (relative to max entry), shrinkage %.2g (abs), Mahalanobis %.2g (rel)",
		worstCov, worstInv, worstShrink, worstDist)
}

// TestMahalanobisFloat32Gap measures how far the reference, which fits and
// scores in float32, is from this float64 implementation. On the committed
// fixtures (numpy 1.24, scikit-learn 1.2) the largest relative gap in the
// distance is about 1.0e-6 (single_feature_n15_d1, where the distance is
// small) and 7e-7 for D=384; the bound below leaves room for other BLAS
// builds.
func TestMahalanobisFloat32Gap(t *testing.T) {
	const bound = 2e-5
	var worst float64
	var worstCase string
	for _, c := range loadGaussianFixtures(t) {
		g, err := FitGaussian(toFloat32(c.Features))
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		for q, v := range c.Queries {
			e := relErr(g.Mahalanobis64(v), c.Mahalanobis32[q])
			if e > worst {
				worst, worstCase = e, c.Name
			}
		}
		if d := math.Abs(c.Shrinkage - c.Shrinkage32); d > 1e-6 {
			t.Errorf("%s: float32 shrinkage differs by %g", c.Name, d)
		}
	}
	t.Logf("float32 reference vs float64: max relative Mahalanobis gap %.2g (%s)", worst, worstCase)
	if worst > bound {
		t.Errorf("float32 reference differs by %g relative, more than %g", worst, bound)
	}
}

func TestPinvRankDeficient(t *testing.T) {
	for _, c := range loadGaussianFixtures(t) {
		if c.EmpiricalCov == nil {
			continue
		}
		a := mat.NewDense(c.D, c.D, nil)
		for i, r := range c.EmpiricalCov {
			a.SetRow(i, r)
		}
		got, err := pinv(a)
		if err != nil {
			t.Fatal(err)
		}
		e := matrixError(got, func(i, j int) float64 { return c.EmpiricalPinv[i][j] })
		t.Logf("%s: pinv of the rank-%d empirical covariance, err %.2g", c.Name, c.EmpiricalRank, e)
		if e > 1e-6 {
			t.Errorf("%s: pinv of the rank-deficient empirical covariance: relative error %g", c.Name, e)
		}
		// Moore-Penrose identities: A A⁺ A = A and A⁺ A A⁺ = A⁺.
		var aap, aapa, papa, papap mat.Dense
		aap.Mul(a, got)
		aapa.Mul(&aap, a)
		papa.Mul(got, a)
		papap.Mul(&papa, got)
		if e := matrixError(&aapa, a.At); e > 1e-10 {
			t.Errorf("%s: A A⁺ A differs from A by %g", c.Name, e)
		}
		if e := matrixError(&papap, got.At); e > 1e-10 {
			t.Errorf("%s: A⁺ A A⁺ differs from A⁺ by %g", c.Name, e)
		}
	}
}

func TestPinvCutoff(t *testing.T) {
	tests := []struct {
		name string
		diag []float64
		want []float64
	}{
		{"full rank", []float64{4, 2, 0.5}, []float64{0.25, 0.5, 2}},
		{"exact zero", []float64{4, 0, 2}, []float64{0.25, 0, 0.5}},
		// 1e-15·4 = 4e-15: 1e-20 and 4e-15 itself are dropped (numpy keeps
		// only s > cutoff), 5e-15 is kept.
		{"below cutoff", []float64{4, 1e-20, 2}, []float64{0.25, 0, 0.5}},
		{"at cutoff", []float64{4, 4e-15, 2}, []float64{0.25, 0, 0.5}},
		{"above cutoff", []float64{4, 5e-15, 2}, []float64{0.25, 2e14, 0.5}},
		{"zero matrix", []float64{0, 0}, []float64{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pinv(mat.NewDiagDense(len(tt.diag), tt.diag))
			if err != nil {
				t.Fatal(err)
			}
			for i := range tt.diag {
				for j := range tt.diag {
					want := 0.0
					if i == j {
						want = tt.want[i]
					}
					if relErr(got.At(i, j), want) > 1e-12 {
						t.Errorf("pinv[%d][%d] = %g, want %g", i, j, got.At(i, j), want)
					}
				}
			}
		})
	}
}

func TestFitGaussianErrors(t *testing.T) {
	tests := []struct {
		name     string
		features [][]float64
		want     string
	}{
		{"no rows", nil, "at least 2 feature vectors, got 0"},
		{"one row", [][]float64{{1, 2}}, "at least 2 feature vectors, got 1"},
		{"empty rows", [][]float64{{}, {}}, "feature vectors are empty"},
		{"ragged", [][]float64{{1, 2}, {3, 4}, {5}}, "feature vector 2 has 1 components, feature vector 0 has 2"},
		{"NaN", [][]float64{{1, 2}, {3, math.NaN()}}, "feature vector 1, component 1 is NaN"},
		{"Inf", [][]float64{{math.Inf(-1), 2}, {3, 4}}, "feature vector 0, component 0 is -Inf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := FitGaussian(tt.features)
			if err == nil {
				t.Fatalf("FitGaussian = %v, want an error", g)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestMahalanobisProperties(t *testing.T) {
	g, err := FitGaussian([][]float64{{1, 0, 2}, {2, 1, 2}, {0, 3, 1}, {1, 1, 1}})
	if err != nil {
		t.Fatal(err)
	}
	if d := g.Mahalanobis64(g.Mean); d != 0 {
		t.Errorf("distance of the mean = %g, want 0", d)
	}
	if d := g.Mahalanobis64([]float64{math.NaN(), 0, 0}); d != 0 {
		t.Errorf("distance with NaN = %g, want 0 as Python's max(0, nan)", d)
	}
	// Symmetric about the mean.
	a := []float64{g.Mean[0] + 1, g.Mean[1] - 2, g.Mean[2] + 0.5}
	b := []float64{g.Mean[0] - 1, g.Mean[1] + 2, g.Mean[2] - 0.5}
	if da, db := g.Mahalanobis64(a), g.Mahalanobis64(b); relErr(da, db) > 1e-14 {
		t.Errorf("distances %g and %g of mirrored points differ", da, db)
	}
	defer func() {
		if recover() == nil {
			t.Error("Mahalanobis with a wrong-length vector did not panic")
		}
	}()
	g.Mahalanobis([]float32{1, 2})
}

func randomFeatures(n, d int, seed uint64) [][]float32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	shared := make([]float64, d)
	for j := range shared {
		shared[j] = rng.NormFloat64()
	}
	out := make([][]float32, n)
	for i := range out {
		z := rng.NormFloat64()
		out[i] = make([]float32, d)
		for j := range out[i] {
			out[i][j] = float32(0.1*z*shared[j] + 0.05*rng.NormFloat64())
		}
	}
	return out
}

func BenchmarkFitGaussian384(b *testing.B) {
	x := randomFeatures(300, 384, 7)
	for b.Loop() {
		if _, err := FitGaussian(x); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMahalanobis384(b *testing.B) {
	x := randomFeatures(300, 384, 7)
	g, err := FitGaussian(x)
	if err != nil {
		b.Fatal(err)
	}
	v := x[0]
	for b.Loop() {
		g.Mahalanobis(v)
	}
}

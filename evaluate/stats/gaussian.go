package stats

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Float is the element type of feature vectors: the models produce float32,
// and float64 input is accepted for tests and for reloaded statistics.
type Float interface {
	~float32 | ~float64
}

// PinvRcond is the relative cutoff of the pseudo-inverse: singular values at
// or below PinvRcond times the largest singular value are treated as zero.
// It is numpy.linalg.pinv's default rcond.
const PinvRcond = 1e-15

// Gaussian is the model of normal feature vectors PUAD fits on the training
// images: their mean and the pseudo-inverse of their Ledoit-Wolf shrunk
// covariance. Its Mahalanobis distance is PUAD's unpicturable anomaly score.
//
// The reference fits on float32 feature vectors, so numpy and scikit-learn
// work in float32 there; this type works in float64 throughout. On the test
// fixtures (testdata/stats_gaussian.json, up to D=384) the float32
// reference distances differ from the float64 ones by at most about 1e-6
// relative (TestMahalanobisFloat32Gap states the measured figure), far below
// anything that could reorder anomaly scores in practice.
type Gaussian struct {
	// Mean is the per-feature mean of the training vectors (numpy's
	// np.mean(features, axis=0), equal to LedoitWolf's location_).
	Mean []float64
	// Covariance is the Ledoit-Wolf shrunk covariance (LedoitWolf().fit(X)
	// .covariance_).
	Covariance *mat.SymDense
	// CovInv is the Moore-Penrose pseudo-inverse of Covariance, as
	// np.linalg.pinv computes it (see PinvRcond).
	CovInv *mat.Dense
	// Shrinkage is the Ledoit-Wolf shrinkage coefficient in [0, 1]
	// (LedoitWolf().fit(X).shrinkage_).
	Shrinkage float64
	// N is the number of training vectors the model was fitted on.
	N int
}

// Dim returns the number of features the model was fitted on.
func (g *Gaussian) Dim() int { return len(g.Mean) }

// FitGaussian fits the PUAD feature model on the training feature vectors,
// one row per image: the mean, scikit-learn's LedoitWolf covariance
// (assume_centered=False) and its pseudo-inverse with numpy's pinv
// semantics. All computations are in float64.
//
// It returns an error when there are fewer than 2 rows, when the rows are
// empty or of different lengths, when a component is NaN or infinite, or when
// the singular value decomposition does not converge (numpy raises
// LinAlgError there). Constant features are allowed: the shrinkage keeps the
// covariance invertible unless every feature is constant, and then the
// pseudo-inverse is zero and every distance is 0, as in the reference.
func FitGaussian[T Float](features [][]T) (*Gaussian, error) {
	n := len(features)
	if n < 2 {
		return nil, fmt.Errorf("stats: fitting a Gaussian needs at least 2 feature vectors, got %d", n)
	}
	p := len(features[0])
	if p == 0 {
		return nil, errors.New("stats: fitting a Gaussian: feature vectors are empty")
	}
	x := mat.NewDense(n, p, nil)
	for i, row := range features {
		if len(row) != p {
			return nil, fmt.Errorf("stats: fitting a Gaussian: feature vector %d has %d components, feature vector 0 has %d", i, len(row), p)
		}
		for j, v := range row {
			f := float64(v)
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("stats: fitting a Gaussian: feature vector %d, component %d is %v", i, j, f)
			}
			x.Set(i, j, f)
		}
	}

	mean := make([]float64, p)
	for i := 0; i < n; i++ {
		for j, v := range x.RawRowView(i) {
			mean[j] += v
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	for i := 0; i < n; i++ {
		row := x.RawRowView(i)
		for j := range row {
			row[j] -= mean[j]
		}
	}

	cov, shrinkage := ledoitWolfCentered(x)
	inv, err := pinv(cov)
	if err != nil {
		return nil, fmt.Errorf("stats: fitting a Gaussian: %w", err)
	}
	return &Gaussian{Mean: mean, Covariance: cov, CovInv: inv, Shrinkage: shrinkage, N: n}, nil
}

// ledoitWolfCentered returns scikit-learn's Ledoit-Wolf shrunk covariance
// and shrinkage of the rows of x, which must already be centred on their
// mean (LedoitWolf.fit subtracts location_ and then calls ledoit_wolf with
// assume_centered=True). It follows ledoit_wolf and ledoit_wolf_shrinkage of
// sklearn/covariance/_shrunk_covariance.py (scikit-learn 1.x):
//
//	emp_cov = Xᵀ X / n
//	mu      = trace(emp_cov) / p
//	beta_   = Σ_jk ((X²)ᵀ X²)_jk          (X² elementwise)
//	delta_  = Σ_jk ((Xᵀ X)_jk)² / n²
//	beta    = (beta_/n - delta_) / (p n)
//	delta   = (delta_ - 2 mu trace(emp_cov) + p mu²) / p
//	shrink  = 0 if min(beta, delta) == 0 else min(beta, delta) / delta
//	cov     = (1 - shrink) emp_cov + shrink mu I
//
// scikit-learn splits the sums into blocks of 1000 features only to save
// memory; the sums are the same. beta_ is computed here as Σ_i (Σ_j X_ij²)²,
// the same sum regrouped, in O(n p) instead of O(n p²). With one feature
// scikit-learn returns the variance and shrinkage 0.
func ledoitWolfCentered(x *mat.Dense) (*mat.SymDense, float64) {
	n, p := x.Dims()
	nf, pf := float64(n), float64(p)

	if p == 1 {
		var s float64
		for i := 0; i < n; i++ {
			v := x.At(i, 0)
			s += v * v
		}
		return mat.NewSymDense(1, []float64{s / nf}), 0
	}

	// gram = Xᵀ X, upper triangle stored.
	gram := mat.NewSymDense(p, nil)
	gram.SymOuterK(1, x.T())

	var traceSum, betaSum float64
	for i := 0; i < n; i++ {
		var rowSq float64
		for _, v := range x.RawRowView(i) {
			rowSq += v * v
		}
		betaSum += rowSq * rowSq
	}
	var deltaSum float64
	for j := 0; j < p; j++ {
		traceSum += gram.At(j, j) / nf
		deltaSum += gram.At(j, j) * gram.At(j, j)
		for k := j + 1; k < p; k++ {
			g := gram.At(j, k)
			deltaSum += 2 * g * g
		}
	}
	mu := traceSum / pf
	deltaSum /= nf * nf
	beta := 1 / (pf * nf) * (betaSum/nf - deltaSum)
	delta := (deltaSum - 2*mu*traceSum + pf*mu*mu) / pf
	beta = math.Min(beta, delta)
	var shrinkage float64
	if beta != 0 {
		shrinkage = beta / delta
	}

	raw := gram.RawSymmetric()
	for j := 0; j < p; j++ {
		row := raw.Data[j*raw.Stride : j*raw.Stride+p]
		for k := j; k < p; k++ {
			row[k] = (1 - shrinkage) * (row[k] / nf)
		}
		row[j] += shrinkage * mu
	}
	return gram, shrinkage
}

// pinv returns the Moore-Penrose pseudo-inverse of a as numpy.linalg.pinv
// computes it with its default rcond: a = U Σ Vᵀ by SVD, singular values s
// with s <= PinvRcond·max(s) are dropped, and pinv(a) = V Σ⁺ Uᵀ. It fails
// only when the SVD does not converge.
func pinv(a mat.Matrix) (*mat.Dense, error) {
	r, c := a.Dims()
	var svd mat.SVD
	if !svd.Factorize(a, mat.SVDThin) {
		return nil, errors.New("pseudo-inverse: SVD did not converge")
	}
	s := svd.Values(nil)
	var u, v mat.Dense
	svd.UTo(&u)
	svd.VTo(&v)

	var smax float64
	for _, x := range s {
		smax = math.Max(smax, x)
	}
	cutoff := PinvRcond * smax
	// v ← V Σ⁺: scale column k of V by 1/s_k or zero it.
	for k, sk := range s {
		inv := 0.0
		if sk > cutoff {
			inv = 1 / sk
		}
		for i := 0; i < c; i++ {
			v.Set(i, k, v.At(i, k)*inv)
		}
	}
	out := mat.NewDense(c, r, nil)
	out.Mul(&v, u.T())
	return out, nil
}

// Mahalanobis returns the distance of the feature vector v from the model,
// sqrt(max(0, dᵀ Σ⁺ d)) with d = v - Mean, evaluated like the reference's
// np.dot(np.dot(d, covinv), d). The max with 0 guards against a slightly
// negative quadratic form from rounding; as with Python's max(0, nan), a NaN
// quadratic form (NaN in v) also gives 0.
//
// It panics if len(v) != g.Dim(): feeding vectors of the wrong model is a
// programming error.
func (g *Gaussian) Mahalanobis(v []float32) float64 {
	return mahalanobis(g, v)
}

// Mahalanobis64 is Mahalanobis for a float64 feature vector.
func (g *Gaussian) Mahalanobis64(v []float64) float64 {
	return mahalanobis(g, v)
}

func mahalanobis[T Float](g *Gaussian, v []T) float64 {
	p := len(g.Mean)
	if len(v) != p {
		panic(fmt.Sprintf("stats: Mahalanobis of a %d-component vector under a %d-feature Gaussian", len(v), p))
	}
	d := make([]float64, p)
	for j := range d {
		d[j] = float64(v[j]) - g.Mean[j]
	}
	// t = dᵀ Σ⁺, then q = t · d.
	t := make([]float64, p)
	raw := g.CovInv.RawMatrix()
	for j, dj := range d {
		row := raw.Data[j*raw.Stride : j*raw.Stride+p]
		for k, a := range row {
			t[k] += dj * a
		}
	}
	var q float64
	for k := range t {
		q += t[k] * d[k]
	}
	if !(q > 0) {
		return 0
	}
	return math.Sqrt(q)
}

#!/usr/bin/python3
"""Writes the reference fixtures for the statistics of package stats.

Run from the repository root with Debian's Python (python3-numpy,
python3-sklearn):

    /usr/bin/python3 evaluate/stats/testdata/gen_stats_fixtures.py

It writes evaluate/stats/testdata/stats_gaussian.json, stats_fusion.json and
stats_float32.json
(the AUROC fixtures have their own script,
evaluate/metrics/testdata/auroc_gen_fixtures.py). Every random input comes
from a generator with a fixed seed, so rerunning the script with the same
numpy reproduces the files.
Floats are written by the json module, which uses repr: the shortest string
that parses back to the same float64.

The PUAD reference computes (puad/puad.py):

    mean   = np.mean(features, axis=0)
    cov    = LedoitWolf().fit(features).covariance_
    covinv = np.linalg.pinv(cov)
    maha   = np.sqrt(max(0, np.dot(np.dot(v - mean, covinv), v - mean)))
    score  = (eff - eff_mean) / eff_std + (maha - maha_mean) / maha_std

with float32 features. The fixtures hold the same quantities computed on
float64 input (what the Go code reproduces) and the float32 distances (what
the reference itself produces) so the tests can state the gap.
"""

import json
import os
import sys

import numpy as np
import sklearn
from sklearn.covariance import LedoitWolf

OUT = os.path.dirname(os.path.abspath(__file__))


def fl(a):
    """A numpy array (any dtype) as nested lists of Python floats."""
    return np.asarray(a, dtype=np.float64).tolist()


def maha(v, mean, covinv):
    """The reference's Mahalanobis distance, in the dtype of its inputs."""
    d = v - mean
    return float(np.sqrt(max(0, np.dot(np.dot(d, covinv), d))))


def gaussian_case(name, x32, queries32, full=True, entries_seed=0):
    """Fits the reference statistics on float64 and on float32 features.

    x32 and queries32 are float32; the float64 fit uses exactly the same
    numbers, widened. When full is False (the D=384 case) the covariance and
    its pseudo-inverse are stored only for sampled entries to keep the file
    small: the diagonal, the first two rows and 600 random (i, j) pairs.
    """
    assert x32.dtype == np.float32 and queries32.dtype == np.float32
    x64 = x32.astype(np.float64)
    q64 = queries32.astype(np.float64)

    lw64 = LedoitWolf().fit(x64)
    cov64 = lw64.covariance_
    inv64 = np.linalg.pinv(cov64)
    mean64 = np.mean(x64, axis=0)

    mean32 = np.mean(x32, axis=0)
    lw32 = LedoitWolf().fit(x32)
    cov32 = lw32.covariance_
    assert cov32.dtype == np.float32
    inv32 = np.linalg.pinv(cov32)
    assert inv32.dtype == np.float32

    case = {
        "name": name,
        "n": int(x32.shape[0]),
        "d": int(x32.shape[1]),
        "features": fl(x32),
        "location": fl(lw64.location_),
        "shrinkage": float(lw64.shrinkage_),
        "shrinkage_float32": float(lw32.shrinkage_),
        "queries": fl(queries32),
        "mahalanobis": [maha(q, mean64, inv64) for q in q64],
        "mahalanobis_float32": [maha(q, mean32, inv32) for q in queries32],
    }
    d = x32.shape[1]
    if full:
        case["covariance"] = fl(cov64)
        case["pinv"] = fl(inv64)
    else:
        rng = np.random.default_rng(entries_seed)
        idx = [(i, i) for i in range(d)]
        idx += [(r, j) for r in range(2) for j in range(d) if j != r]
        idx += [tuple(int(t) for t in rng.integers(0, d, size=2)) for _ in range(600)]
        case["entries"] = [[i, j] for i, j in idx]
        case["covariance_entries"] = [float(cov64[i, j]) for i, j in idx]
        case["pinv_entries"] = [float(inv64[i, j]) for i, j in idx]
        case["covariance_max_abs"] = float(np.max(np.abs(cov64)))
        case["pinv_max_abs"] = float(np.max(np.abs(inv64)))
    return case


def gaussian_fixtures():
    cases = []

    # N=30, D=8: correlated Gaussian features.
    rng = np.random.default_rng(1)
    a = rng.normal(size=(8, 8))
    x = (rng.normal(size=(30, 8)) @ a + rng.normal(size=8) * 3).astype(np.float32)
    q = np.vstack([x[0], rng.normal(size=(2, 8)) @ a + 2.0]).astype(np.float32)
    cases.append(gaussian_case("random_n30_d8", x, q))

    # N=12, D=20: fewer samples than features, so the empirical covariance
    # has rank 11; the fixture also stores pinv of that singular matrix.
    rng = np.random.default_rng(2)
    x = rng.normal(size=(12, 20)).astype(np.float32)
    q = np.vstack([x[3], rng.normal(size=(2, 20))]).astype(np.float32)
    case = gaussian_case("rankdef_n12_d20", x, q)
    xc = x.astype(np.float64) - x.astype(np.float64).mean(0)
    emp = xc.T @ xc / x.shape[0]
    sv = np.linalg.svd(emp, compute_uv=False)
    case["empirical_covariance"] = fl(emp)
    case["empirical_pinv"] = fl(np.linalg.pinv(emp))
    case["empirical_rank"] = int(np.sum(sv > 1e-15 * sv[0]))
    cases.append(case)

    # A constant feature (zero-variance column).
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20, 6)) * np.array([1.0, 2.0, 0.5, 1.0, 3.0, 1.0])
    x[:, 3] = 2.5
    x = x.astype(np.float32)
    q = np.vstack([x[5], rng.normal(size=(2, 6))]).astype(np.float32)
    q[1, 3] = 2.5
    cases.append(gaussian_case("constant_feature_n20_d6", x, q))

    # A single feature: scikit-learn returns shrinkage 0 and the variance.
    rng = np.random.default_rng(4)
    x = (rng.normal(size=(15, 1)) * 0.7 + 1.0).astype(np.float32)
    q = np.array([[1.0], [2.5], [-0.25]], dtype=np.float32)
    cases.append(gaussian_case("single_feature_n15_d1", x, q))

    # Every feature constant: the covariance is zero, pinv of zero is zero
    # and every distance is 0.
    x = np.tile(np.array([[0.5, -1.0, 2.0]], dtype=np.float32), (5, 1))
    q = np.array([[0.5, -1.0, 2.0], [1.0, 1.0, 1.0]], dtype=np.float32)
    cases.append(gaussian_case("all_constant_n5_d3", x, q))

    # Realistic scale: D=384 channel means of a feature map, N=40 images.
    # Per-channel offsets, a low-rank shared component and small noise.
    rng = np.random.default_rng(5)
    d = 384
    offset = rng.normal(size=d) * 0.5
    w = rng.normal(size=(10, d)) * 0.05
    noise = 0.02 * rng.uniform(0.5, 1.5, size=d)

    def sample(k, shift=0.0):
        return offset + shift + rng.normal(size=(k, 10)) @ w + rng.normal(size=(k, d)) * noise

    x = sample(40).astype(np.float32)
    q = np.vstack([x[7], sample(2), sample(1, shift=0.05)]).astype(np.float32)
    cases.append(gaussian_case("realistic_n40_d384", x, q, full=False, entries_seed=6))
    return cases


def fusion_fixtures():
    rng = np.random.default_rng(20)
    vectors = [
        [1.0, 2.0, 3.0, 4.0],
        [5.0],
        [0.1, 0.1, 0.1],
        rng.normal(size=17).tolist(),
        (rng.normal(size=101) * 1e-3 + 1e3).tolist(),
    ]
    mean_std = [{
        "xs": [float(v) for v in xs],
        "mean": float(np.mean(xs)),
        "std": float(np.std(xs)),
    } for xs in vectors]

    # The reference works in float32: EfficientAD scores are 0-d float32
    # arrays, Mahalanobis distances float32 scalars, so np.mean/np.std and the
    # standardised sum are float32 too.
    eff_valid = rng.gamma(2.0, 0.1, size=20).astype(np.float32)
    maha_valid = rng.gamma(5.0, 2.0, size=20).astype(np.float32)
    eff_test = rng.gamma(2.0, 0.15, size=10).astype(np.float32)
    maha_test = rng.gamma(5.0, 2.5, size=10).astype(np.float32)
    eff_mean, eff_std = np.mean(list(eff_valid)), np.std(list(eff_valid))
    maha_mean, maha_std = np.mean(list(maha_valid)), np.std(list(maha_valid))
    assert eff_mean.dtype == np.float32 and maha_std.dtype == np.float32
    puad = [float((e - eff_mean) / eff_std + (m - maha_mean) / maha_std)
            for e, m in zip(eff_test, maha_test)]
    fusion = {
        "eff_valid": fl(eff_valid),
        "maha_valid": fl(maha_valid),
        "eff_test": fl(eff_test),
        "maha_test": fl(maha_test),
        "eff_mean": float(eff_mean),
        "eff_std": float(eff_std),
        "maha_mean": float(maha_mean),
        "maha_std": float(maha_std),
        "puad": puad,
    }
    return mean_std, fusion



# Sample sizes around numpy's pairwise-summation structure: below, at and
# above its 8-way unrolled loop and its 128-element block, and sizes that
# recurse several levels.
FLOAT32_SIZES = [1, 2, 7, 8, 9, 20, 127, 128, 129, 300, 1000, 5000]


def float32_stats_fixtures():
    """mean, std (ddof 0) and z-scores of float32 samples as the reference
    computes them: np.mean/np.std over a list of float32 scalars, so numpy
    sums in float32 in its pairwise order; z-scores and their sum in float32."""
    rng = np.random.default_rng(30)
    cases = []
    for n in FLOAT32_SIZES:
        eff = rng.gamma(2.0, 0.1, size=n).astype(np.float32)
        maha = (rng.gamma(5.0, 2.0, size=n) + 100.0).astype(np.float32)
        test_eff = rng.gamma(2.0, 0.15, size=5).astype(np.float32)
        test_maha = (rng.gamma(5.0, 2.5, size=5) + 100.0).astype(np.float32)
        em, es = np.mean(list(eff)), np.std(list(eff))
        mm, ms = np.mean(list(maha)), np.std(list(maha))
        assert em.dtype == np.float32 and ms.dtype == np.float32
        case = {
            "n": n,
            "eff": fl(eff), "maha": fl(maha),
            "eff_mean": float(em), "eff_std": float(es),
            "maha_mean": float(mm), "maha_std": float(ms),
            "test_eff": fl(test_eff), "test_maha": fl(test_maha),
        }
        if es > 0 and ms > 0:
            ze = [(e - em) / es for e in test_eff]
            zm = [(m - mm) / ms for m in test_maha]
            assert ze[0].dtype == np.float32
            case["z_eff"] = [float(z) for z in ze]
            case["z_maha"] = [float(z) for z in zm]
            case["puad"] = [float(a + b) for a, b in zip(ze, zm)]
        cases.append(case)
    return cases


def shrinkage_edge_fixtures():
    """Ledoit-Wolf at both ends of its range: shrinkage clipped to 1 (the
    estimate of beta exceeds delta; heavy-tailed features, few samples) and
    shrinkage 0 (two samples: beta is exactly 0)."""
    from sklearn.covariance import ledoit_wolf_shrinkage
    rng = np.random.default_rng(40)
    while True:
        n, d = int(rng.integers(3, 8)), int(rng.integers(2, 8))
        x = (rng.standard_t(1.5, size=(n, d)) * rng.uniform(0.1, 3, size=d)).astype(np.float32)
        if ledoit_wolf_shrinkage(x.astype(np.float64)) == 1.0:
            break
    q = np.vstack([x[0], rng.normal(size=(2, d))]).astype(np.float32)
    clipped = gaussian_case("shrinkage_clipped_to_1", x, q)
    assert clipped["shrinkage"] == 1.0
    x = rng.normal(size=(2, 5)).astype(np.float32)
    q = np.vstack([x[1], rng.normal(size=(2, 5))]).astype(np.float32)
    zero = gaussian_case("shrinkage_0_two_samples", x, q)
    assert zero["shrinkage"] == 0.0
    return [clipped, zero]


def write(name, obj):
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")
    print(f"{path}: {os.path.getsize(path)} bytes", file=sys.stderr)


def main():
    versions = {"numpy": np.__version__, "sklearn": sklearn.__version__}
    write("stats_gaussian.json", {"versions": versions, "cases": gaussian_fixtures()})
    mean_std, fusion = fusion_fixtures()
    write("stats_fusion.json", {"versions": versions, "mean_std": mean_std, "fusion": fusion})
    write("stats_float32.json", {"versions": versions, "float32": float32_stats_fixtures(),
                                 "shrinkage_edges": shrinkage_edge_fixtures()})


if __name__ == "__main__":
    main()

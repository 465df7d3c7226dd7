#!/usr/bin/python3
"""Writes the scikit-learn fixtures of the image AUROC of package metrics.

Run from the repository root with Debian's Python (python3-numpy,
python3-sklearn):

    /usr/bin/python3 evaluate/metrics/testdata/auroc_gen_fixtures.py

It writes evaluate/metrics/testdata/auroc_sklearn.json: roc_auc_score of
tied, signed-zero, extreme and random scores, and the per-class AUROCs the
way the PUAD reference's auroc_for_anomalies computes them. Every random
input comes from a generator with a fixed seed, so rerunning the script with
the same numpy reproduces the file. Floats are written by the json module,
which uses repr: the shortest string that parses back to the same float64.
"""

import json
import os
import sys

import numpy as np
import sklearn
from sklearn.metrics import roc_auc_score

OUT = os.path.dirname(os.path.abspath(__file__))


def auroc_fixtures():
    cases = []

    def add(name, labels, scores):
        labels = [bool(t) for t in labels]
        scores = [float(s) for s in scores]
        cases.append({
            "name": name,
            "labels": labels,
            "scores": scores,
            "auroc": float(roc_auc_score([int(t) for t in labels], scores)),
        })

    rng = np.random.default_rng(10)
    labels = rng.random(200) < 0.4
    scores = np.round(rng.normal(size=200) + 0.8 * labels, 1)
    add("ties_rounded_1dp", labels, scores)

    labels = rng.random(300) < 0.5
    scores = np.round(rng.normal(size=300) * 0.3 + 0.2 * labels, 1)
    add("heavy_ties", labels, scores)

    labels = rng.random(50) < 0.3
    labels[0], labels[1] = True, False
    add("all_tied", labels, np.full(50, 0.25))

    labels = np.array([False] * 20 + [True] * 10)
    add("perfect", labels, np.concatenate([rng.random(20), 1.0 + rng.random(10)]))
    add("inverted", labels, np.concatenate([1.0 + rng.random(20), rng.random(10)]))

    labels = rng.random(500) < 0.2
    labels[0], labels[1] = True, False
    add("random", labels, rng.normal(size=500) + 0.5 * labels)

    labels = rng.random(40) < 0.5
    labels[0], labels[1] = True, False
    scores = rng.integers(-3, 4, size=40).astype(np.float64)
    scores[labels & (scores == 0)] = -0.0
    add("integers_with_signed_zero", labels, scores)

    add("two_samples", [False, True], [0.3, 0.1])
    add("large_magnitudes", [False, True, True, False, True],
        [1e300, 1e300, -1e300, 5e-324, 1e-300])

    # Per-class AUROC the way puad.PUAD.auroc_for_anomalies does it: classes
    # in dataset (ImageFolder) order, "good" is the normal class.
    classes = (["broken_large"] * 6 + ["broken_small"] * 7 + ["contamination"] * 5
               + ["good"] * 12)
    # A test set need not be sorted, so shuffle it as a stress of
    # first-appearance ordering.
    order = rng.permutation(len(classes))
    classes = [classes[i] for i in order]
    shift = {"good": 0.0, "broken_large": 1.5, "broken_small": 0.3, "contamination": -0.2}
    scores = [float(np.round(rng.normal() + shift[c], 1)) for c in classes]

    good_scores = [s for c, s in zip(classes, scores) if c == "good"]
    anomaly = {}
    for c, s in zip(classes, scores):
        if c != "good":
            anomaly.setdefault(c, []).append(s)
    all_scores = good_scores + sum(anomaly.values(), [])
    all_targets = [0] * len(good_scores) + [1] * (len(all_scores) - len(good_scores))
    per_class = []
    for c, s in anomaly.items():
        per_class.append({
            "class": c,
            "count": len(s),
            "auroc": float(roc_auc_score([0] * len(good_scores) + [1] * len(s), good_scores + s)),
        })
    per = {
        "classes": classes,
        "scores": scores,
        "normal": "good",
        "overall": float(roc_auc_score(all_targets, all_scores)),
        "per_class": per_class,
    }
    return cases, per


def write(name, obj):
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")
    print(f"{path}: {os.path.getsize(path)} bytes", file=sys.stderr)


def main():
    versions = {"numpy": np.__version__, "sklearn": sklearn.__version__}
    cases, per = auroc_fixtures()
    write("auroc_sklearn.json", {"versions": versions, "cases": cases, "per_class": per})


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Writes operating_points.json, the scikit-learn reference for the
operating points and labelled thresholds of package stats (operating.go).

Run with Debian's Python (python3-numpy, python3-sklearn), from this folder
or anywhere:

    /usr/bin/python3 evaluate/stats/testdata/gen_operating_fixtures.py

Each case is a list of scores with labels (1: anomalous). Some cases have
tied scores, within a class and across the classes. For each case the file
holds scikit-learn's precision_recall_curve (precision, recall and
thresholds, where an image is flagged when its score is >= threshold),
roc_curve with drop_intermediate=False (fpr, tpr, thresholds), and the
confusion matrix, precision, recall and F1 of
precision_recall_fscore_support at every threshold. Random inputs come from
a generator with a fixed seed; floats are written with repr.
"""
import json
import os

import numpy as np
from sklearn.metrics import (confusion_matrix, precision_recall_curve,
                             precision_recall_fscore_support, roc_curve)


def cases():
    rng = np.random.default_rng(16)
    yield "separable", [0.1, 0.2, 0.3, 0.8, 0.9], [0, 0, 0, 1, 1]
    yield "ties across classes", [0.5, 0.5, 0.5, 0.2, 0.9, 0.9, 0.1], [0, 1, 1, 0, 1, 0, 0]
    yield "all tied", [1.0, 1.0, 1.0, 1.0], [0, 1, 0, 1]
    yield "one anomaly", [3.0, -1.0, 2.0, 0.5], [0, 0, 1, 0]
    n = 200
    labels = (rng.random(n) < 0.3).astype(int)
    scores = rng.normal(size=n) + 1.5 * labels
    yield "random", [float(v) for v in scores], [int(v) for v in labels]
    rounded = np.round(scores * 2) / 2  # many ties
    yield "random rounded", [float(v) for v in rounded], [int(v) for v in labels]


def at_thresholds(scores, labels, thresholds):
    out = []
    for t in thresholds:
        pred = (scores >= t).astype(int)
        tn, fp, fn, tp = confusion_matrix(labels, pred, labels=[0, 1]).ravel()
        p, r, f, _ = precision_recall_fscore_support(labels, pred, average="binary", zero_division=0)
        out.append({"threshold": float(t), "tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn),
                    "precision": float(p), "recall": float(r), "f1": float(f)})
    return out


def main():
    out = []
    for name, scores, labels in cases():
        s, y = np.array(scores, dtype=np.float64), np.array(labels)
        precision, recall, pr_th = precision_recall_curve(y, s)
        fpr, tpr, roc_th = roc_curve(y, s, drop_intermediate=False)
        out.append({
            "name": name, "scores": scores, "labels": labels,
            "pr_precision": [float(v) for v in precision], "pr_recall": [float(v) for v in recall],
            "pr_thresholds": [float(v) for v in pr_th],
            "roc_fpr": [float(v) for v in fpr], "roc_tpr": [float(v) for v in tpr],
            "roc_thresholds": [float(v) for v in roc_th[1:]],
            "at_thresholds": at_thresholds(s, y, sorted(set(scores))),
        })
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "operating_points.json")
    with open(path, "w") as f:
        json.dump(out, f)
        f.write("\n")


if __name__ == "__main__":
    main()

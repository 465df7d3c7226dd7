#!/usr/bin/python3
"""The scikit-learn reference for thresholds chosen on labelled images
(evaluate.PUADModel.LabelledFitFile, `puad fit --threshold-from`), run by
the tests through package sklearnref.

    /usr/bin/python3 labelled_reference.py IN.json OUT.json

IN.json holds "scores" (PUAD scores), "labels" (1: anomalous) and
"objectives" ("f1", "recall=R" or "fpr=F"). For each objective OUT.json
holds the operating point scikit-learn's curves choose, where an image is
flagged when its score is >= a threshold t:

  - f1: the t of precision_recall_curve with the largest F1 of
    precision_recall_fscore_support (ties: the largest t);
  - recall=R: the largest t of precision_recall_curve with recall >= R;
  - fpr=F: the smallest t of roc_curve(drop_intermediate=False) with
    false-positive rate <= F (t may be roc_curve's infinity: nothing flagged).

Each point is written for the rule "score > threshold" of the Go code: its
threshold is the largest score below t (or, when no score is below t, the
float64 just below t), with the confusion matrix, precision, recall and F1
of precision_recall_fscore_support (zero_division=0) and the
false-positive rate FP / (FP + TN).
"""
import json
import math
import sys

import numpy as np
from sklearn.metrics import (confusion_matrix, precision_recall_curve,
                             precision_recall_fscore_support, roc_curve)


def point(scores, labels, t):
    pred = (scores >= t).astype(int)
    tn, fp, fn, tp = confusion_matrix(labels, pred, labels=[0, 1]).ravel()
    p, r, f, _ = precision_recall_fscore_support(labels, pred, average="binary", zero_division=0)
    below = scores[scores < t]
    th = float(below.max()) if below.size else float(np.nextafter(t, -np.inf))
    return {"threshold": th, "tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn),
            "precision": float(p), "recall": float(r), "f1": float(f),
            "fpr": float(fp) / (fp + tn) if fp + tn else 0.0}


def choose(scores, labels, objective):
    kind, _, target = objective.partition("=")
    if kind == "fpr":
        fpr, _, ths = roc_curve(labels, scores, drop_intermediate=False)
        return min(t for t, r in zip(ths, fpr) if r <= float(target))
    _, recall, ths = precision_recall_curve(labels, scores)
    if kind == "recall":
        return max(t for t, r in zip(ths, recall[:-1]) if r >= float(target))
    best = None
    for t in ths:
        f1 = point(scores, labels, t)["f1"]
        if best is None or f1 > best[0] or (f1 == best[0] and t > best[1]):
            best = (f1, t)
    return best[1]


def main():
    with open(sys.argv[1]) as f:
        data = json.load(f)
    scores = np.array(data["scores"], dtype=np.float64)
    labels = np.array(data["labels"])
    out = {obj: point(scores, labels, choose(scores, labels, obj)) for obj in data["objectives"]}
    with open(sys.argv[2], "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()

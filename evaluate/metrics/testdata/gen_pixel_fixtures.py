#!/usr/bin/python3
"""Expected pixel-level metrics for evaluate/metrics, from an independent
transcription of MVTec's official definitions.

  gen_pixel_fixtures.py [OUT.json]
      builds small cases (ties, empty masks, masks on the border, several
      regions per image, several channels per LOCO defect, relative and
      absolute saturation, all-normal images) and writes them with their
      expected pixel AUROC, AU-PRO and AU-sPRO values (by default to
      pixel_fixtures.json beside this script, as `make fixtures` runs it).

  gen_pixel_fixtures.py --bench DIR
      reads DIR/meta.json, DIR/maps.f32 and DIR/masks.u8 (written by the Go
      benchmark), times the reference computations on them and prints one
      JSON object with the values, the seconds taken and the peak RSS.

Definitions followed (MVTec AD: evaluate_experiment.py, pro_curve_util.py,
generic_util.py; MVTec LOCO AD: evaluate_experiment.py, src/metrics.py,
src/aggregation.py, src/util.py, src/image.py):

  pixel AUROC  scikit-learn's roc_auc_score over all pixels, label mask > 0.
  AU-PRO       regions = connected components of each ground truth with a
               3x3 structuring element; every pixel of a region adds 1/size
               to the PRO, every anomaly-free pixel 1 to the false positives;
               pixels sorted by descending score, cumulated, one point per
               distinct score; curve from (0, 0) to (1, 1); trapezoid up to
               0.3 with linear interpolation at the limit; divided by 0.3.
               (The official script rounds the FPRs to float32; the fixtures
               keep them in float64, the bench reports both.)
  AU-sPRO      a pixel is positive when its score is > threshold; per
               channel sPRO = min(TP / saturation area, 1), the saturation
               area being int(threshold * area) (relative) or
               min(threshold, area) (absolute); mean over all channels;
               FPR = positives outside every channel / pixels outside every
               channel, summed over images; same trapezoid, limits 0.01,
               0.05, 0.1, 0.3, 1, each area divided by its limit. The
               fixtures evaluate every distinct score as a threshold (the
               curve the official refinement converges to).
"""
import json
import os
import resource
import sys
import time
from bisect import bisect_right

import numpy as np
from scipy import ndimage
from sklearn.metrics import roc_auc_score

SPRO_LIMITS = [0.01, 0.05, 0.1, 0.3, 1.0]


def area_up_to(xs, ys, limit):
    """Trapezoid area of the curve (xs ascending) up to limit, the last
    piece interpolated linearly when limit is not one of the xs."""
    xs = np.asarray(xs, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    extra = 0.0
    if limit not in xs:
        k = bisect_right(xs, limit)
        assert 0 < k < len(xs)
        x0, x1, y0, y1 = xs[k - 1], xs[k], ys[k - 1], ys[k]
        y_lim = y0 + (y1 - y0) * (limit - x0) / (x1 - x0)
        extra = 0.5 * (y_lim + y0) * (limit - x0)
    keep = xs <= limit
    xs, ys = xs[keep], ys[keep]
    return float(np.sum(0.5 * (ys[1:] + ys[:-1]) * (xs[1:] - xs[:-1])) + extra)


def pixel_auroc(maps, gts):
    labels = np.concatenate([(g > 0).ravel() for g in gts])
    scores = np.concatenate([m.ravel() for m in maps])
    return float(roc_auc_score(labels, scores))


def pro_curve(maps, gts, fpr_dtype=np.float64):
    """The PRO curve: one point per distinct score, descending."""
    eight = np.ones((3, 3), dtype=int)
    fp_step, pro_step = [], []
    n_regions, n_ok = 0, 0
    for g in gts:
        comp, k = ndimage.label(g, eight)
        n_regions += k
        ok = comp == 0
        n_ok += int(ok.sum())
        sizes = np.bincount(comp.ravel(), minlength=k + 1).astype(np.float64)
        inv = np.zeros(k + 1)
        inv[1:] = 1.0 / sizes[1:]
        fp_step.append(ok.ravel().astype(np.uint64))
        pro_step.append(inv[comp.ravel()])
    scores = np.concatenate([m.ravel() for m in maps])
    order = np.argsort(scores)[::-1]
    scores = scores[order]
    fps = np.cumsum(np.concatenate(fp_step)[order])
    pros = np.cumsum(np.concatenate(pro_step)[order]) / n_regions
    last = np.append(scores[1:] != scores[:-1], True)
    fprs = (fps[last].astype(fpr_dtype) / fpr_dtype(n_ok)).astype(np.float64)
    fprs = np.minimum(fprs, 1.0)
    pros = np.minimum(pros[last], 1.0)
    return (np.concatenate(([0.0], fprs, [1.0])),
            np.concatenate(([0.0], pros, [1.0])))


def au_pro(maps, gts, limit=0.3, fpr_dtype=np.float64):
    xs, ys = pro_curve(maps, gts, fpr_dtype)
    return area_up_to(xs, ys, limit) / limit


def saturation_area(entry, area):
    if entry["relative_saturation"]:
        return int(entry["saturation_threshold"] * area)
    return min(entry["saturation_threshold"], area)


def spro_points(maps, channels, config, thresholds):
    """(FPRs, mean sPROs) at the given descending thresholds."""
    by_value = {e["pixel_value"]: e for e in config}
    th = np.asarray(thresholds, dtype=np.float64)[:, None]
    fp = np.zeros(len(thresholds), dtype=np.int64)
    neg = 0
    spros = []
    for m, chans in zip(maps, channels):
        flat = m.ravel().astype(np.float64)
        inside = np.zeros(flat.shape, dtype=bool)
        for ch in chans:
            c = ch.ravel()
            value = int(c.max())
            sat = saturation_area(by_value[value], int((c > 0).sum()))
            tp = (flat[c > 0][None, :] > th).sum(axis=1)
            spros.append(np.minimum(tp / sat, 1.0))
            inside |= c > 0
        fp += (flat[~inside][None, :] > th).sum(axis=1)
        neg += int((~inside).sum())
    return fp / neg, np.mean(spros, axis=0)


def au_spro_exact(maps, channels, config, limits=SPRO_LIMITS):
    scores = np.unique(np.concatenate([m.ravel() for m in maps]))[::-1]
    thresholds = [float(scores[0]) + 1.0] + [float(s) for s in scores] + \
        [float(scores[-1]) - 1.0]
    fprs, spros = spro_points(maps, channels, config, thresholds)
    return {str(l): area_up_to(fprs, spros, l) / l for l in limits}


def loco_pixel_auroc(maps, channels):
    gts = []
    for m, chans in zip(maps, channels):
        g = np.zeros(m.shape, dtype=bool)
        for ch in chans:
            g |= ch > 0
        gts.append(g)
    return pixel_auroc(maps, gts)


# ---------------------------------------------------------------- cases

def blob(h, w, cy, cx, ry, rx, value=255):
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    return (inside * value).astype(np.uint8)


def noisy_map(rng, h, w, gt, levels=None):
    m = rng.random((h, w)) + 0.8 * (gt > 0) * rng.random((h, w))
    if levels is not None:
        m = np.floor(m * levels) / levels
    return m.astype(np.float32)


def ad_cases(rng):
    cases = []
    h, w = 10, 12
    # One blob per defect image, one good image, continuous scores.
    gts = [blob(h, w, 4, 5, 2.5, 3), np.zeros((h, w), np.uint8),
           blob(h, w, 6, 8, 2, 2)]
    cases.append(("ad_basic", [noisy_map(rng, h, w, g) for g in gts],
                  [[g] for g in gts]))
    # Heavy ties: five score levels, and -0.0 next to +0.0.
    maps = [noisy_map(rng, h, w, g, levels=4) for g in gts]
    maps[1][0, :6] = -0.0
    cases.append(("ad_ties", maps, [[g] for g in gts]))
    # Several regions per image; two that touch only diagonally are one
    # region with the 3x3 structuring element; masks on the border; mask
    # values other than 255.
    g = np.zeros((h, w), np.uint8)
    g[0:2, 0:3] = 255          # top-left corner
    g[2, 3] = 255              # diagonal neighbour of (1, 2)
    g[5:8, 10:12] = 1          # right border, value 1
    g[9, 4:7] = 128            # bottom border
    g[6, 5] = 255              # single pixel region
    g2 = np.zeros((h, w), np.uint8)
    g2[:, 0] = 255             # whole left column
    g2[3, 5] = 255
    g2[4, 6] = 255             # diagonal pair
    gts = [g, g2, np.zeros((h, w), np.uint8)]
    cases.append(("ad_regions_borders", [noisy_map(rng, h, w, x) for x in gts],
                  [[x] for x in gts]))
    # Two masks per image (their union is the ground truth), overlapping.
    a, b = blob(h, w, 3, 3, 2, 2), blob(h, w, 4, 5, 2, 3)
    c = blob(h, w, 7, 9, 1.5, 1.5)
    gts = [[a, b], [c], []]
    maps = [noisy_map(rng, h, w, np.maximum.reduce(ms) if ms else
                      np.zeros((h, w), np.uint8)) for ms in gts]
    cases.append(("ad_union", maps, gts))
    # A larger set with integer-valued scores (many ties across images).
    h2, w2 = 30, 40
    gts = []
    for i in range(6):
        if i % 3 == 2:
            gts.append(np.zeros((h2, w2), np.uint8))
            continue
        g = blob(h2, w2, rng.integers(0, h2), rng.integers(0, w2),
                 rng.integers(2, 8), rng.integers(2, 10))
        g |= blob(h2, w2, rng.integers(0, h2), rng.integers(0, w2), 2, 3)
        gts.append(g)
    maps = [np.round(noisy_map(rng, h2, w2, g) * 50).astype(np.float32)
            for g in gts]
    cases.append(("ad_larger_ties", maps, [[g] for g in gts]))
    # Negative and wide-ranging scores, perfect separation.
    gts = [blob(h, w, 5, 6, 3, 3), np.zeros((h, w), np.uint8)]
    maps = [np.where(g > 0, 1e3, -1e3).astype(np.float32) *
            rng.random((h, w)).astype(np.float32) for g in gts]
    maps = [np.where(g > 0, np.abs(m) + 1, -np.abs(m) - 1).astype(np.float32)
            for m, g in zip(maps, gts)]
    cases.append(("ad_separated", maps, [[g] for g in gts]))
    out = []
    for name, maps, masks in cases:
        gts = [np.maximum.reduce(ms) if ms else np.zeros(m.shape, np.uint8)
               for m, ms in zip(maps, masks)]
        out.append({
            "name": name, "kind": "ad",
            "width": maps[0].shape[1], "height": maps[0].shape[0],
            "maps": [short32(m) for m in maps],
            "masks": [[x.ravel().tolist() for x in ms] for ms in masks],
            "pixel_auroc": pixel_auroc(maps, gts),
            "au_pro": au_pro(maps, gts),
        })
    return out


LOCO_CONFIG = [
    {"defect_name": "missing", "pixel_value": 255,
     "saturation_threshold": 1.0, "relative_saturation": True},
    {"defect_name": "half", "pixel_value": 254,
     "saturation_threshold": 0.5, "relative_saturation": True},
    {"defect_name": "small", "pixel_value": 253,
     "saturation_threshold": 6, "relative_saturation": False},
    {"defect_name": "huge", "pixel_value": 252,
     "saturation_threshold": 1000, "relative_saturation": False},
    {"defect_name": "odd", "pixel_value": 7,
     "saturation_threshold": 0.33, "relative_saturation": True},
]


def loco_cases(rng):
    h, w = 9, 11
    cases = []
    # One channel per image, each kind of saturation, and good images.
    chans = [[blob(h, w, 4, 5, 2.5, 3, 255)], [],
             [blob(h, w, 2, 2, 2, 3, 254)], [blob(h, w, 6, 7, 2, 3, 253)],
             [blob(h, w, 5, 5, 3, 4, 252)], []]
    cases.append(("loco_single", chans, None))
    # Several channels per image, overlapping, on the borders, with a
    # relative threshold that rounds down.
    c1 = blob(h, w, 0, 0, 3, 4, 255)
    c2 = blob(h, w, 2, 3, 2, 3, 253)
    c3 = np.zeros((h, w), np.uint8)
    c3[h - 1, :] = 7
    c3[:, w - 1] = 7
    c4 = blob(h, w, 6, 2, 2, 2, 254)
    chans = [[c1, c2, c3], [c4, blob(h, w, 4, 8, 1.5, 2, 252)], []]
    cases.append(("loco_channels", chans, None))
    # Ties: four score levels.
    chans = [[blob(h, w, 4, 4, 3, 3, 254), blob(h, w, 1, 9, 1, 1.5, 253)],
             [], [blob(h, w, 7, 6, 2, 4, 255)]]
    cases.append(("loco_ties", chans, 3))
    # A larger set.
    h2, w2 = 24, 32
    chans = []
    values = [255, 254, 253, 252, 7]
    for i in range(7):
        if i % 3 == 1:
            chans.append([])
            continue
        k = 1 + i % 3
        chans.append([blob(h2, w2, rng.integers(0, h2), rng.integers(0, w2),
                           rng.integers(2, 7), rng.integers(2, 9),
                           values[(i + j) % 5]) for j in range(k)])
    cases.append(("loco_larger", chans, None))
    out = []
    for name, chans, levels in cases:
        hh, ww = (h2, w2) if name == "loco_larger" else (h, w)
        maps = []
        for cs in chans:
            g = np.zeros((hh, ww), np.uint8)
            for c in cs:
                g |= (c > 0).astype(np.uint8)
            maps.append(noisy_map(rng, hh, ww, g, levels=levels))
        out.append({
            "name": name, "kind": "loco", "width": ww, "height": hh,
            "maps": [short32(m) for m in maps],
            "masks": [[c.ravel().tolist() for c in cs] for cs in chans],
            "pixel_auroc": loco_pixel_auroc(maps, chans),
            "au_spro": au_spro_exact(maps, chans, LOCO_CONFIG),
        })
    return out


def short32(m):
    """The scores of a float32 map as the shortest decimals that read back
    as the same float32 values (Go decodes them into []float32)."""
    return [float(np.format_float_positional(v, unique=True, trim="0"))
            for v in m.ravel()]


def write_fixtures(path):
    rng = np.random.default_rng(20240)
    data = {"loco_config": LOCO_CONFIG,
            "spro_limits": SPRO_LIMITS,
            "cases": ad_cases(rng) + loco_cases(rng)}
    with open(path, "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")


# ---------------------------------------------------------------- bench

def refine(queries, values, evaluate, max_distance=0.01, min_step=20,
           max_step=100, steps=10):
    """The official threshold refinement: repeatedly add thresholds between
    neighbours whose (sPRO, FPR) points are more than max_distance apart."""
    for _ in range(steps):
        gaps = []
        for i in range(len(queries) - 1):
            d = float(np.linalg.norm(values[i] - values[i + 1]))
            if d > max_distance:
                gaps.append((d, queries[i], queries[i + 1]))
        if not gaps:
            break
        gaps.sort(key=lambda g: g[0], reverse=True)
        gaps = gaps[:max_step]
        left = max(min_step - len(gaps), 0)
        total = sum(g[0] for g in gaps)
        new = []
        for d, q0, q1 in gaps:
            more = int(np.round(d / total * left))
            new.extend(np.linspace(q0, q1, num=3 + more)[1:-1])
            left -= more
            total -= d
        new_values = evaluate(new)
        pairs = sorted(zip(list(queries) + list(new),
                           list(values) + list(new_values)),
                       key=lambda p: p[0], reverse=True)
        queries = [p[0] for p in pairs]
        values = [p[1] for p in pairs]
    return queries, values


def official_spro(maps, channels, config, limits=SPRO_LIMITS):
    """AU-sPRO with the official sampled and refined thresholds."""
    rng = np.random.default_rng(0)
    per = maps[0].size
    take = per if len(maps) * per <= 10_000_000 else 10_000_000 // len(maps)
    sample = np.sort(np.concatenate(
        [rng.choice(m.ravel(), size=take, replace=False) for m in maps]))
    lo = min(float(m.min()) for m in maps) - 1e-6
    hi = max(float(m.max()) for m in maps) + 1e-6
    idx = np.linspace(0, len(sample) - 1, num=50, dtype=int)[1:-1]
    queries = [hi] + sample[idx].tolist()[::-1] + [lo]
    points = {}

    def evaluate(qs):
        fprs, spros = spro_points(maps, channels, config, qs)
        for q, f, s in zip(qs, fprs, spros):
            points[q] = (f, s)
        return [np.array([s, f]) for f, s in zip(fprs, spros)]

    refine(queries, evaluate(queries), evaluate)
    qs = sorted(points, reverse=True)
    fprs = [points[q][0] for q in qs]
    spros = [points[q][1] for q in qs]
    return {str(l): area_up_to(fprs, spros, l) / l for l in limits}, len(qs)


def bench(directory):
    with open(os.path.join(directory, "meta.json")) as f:
        meta = json.load(f)
    n, h, w = meta["images"], meta["height"], meta["width"]
    maps = np.fromfile(os.path.join(directory, "maps.f32"),
                       dtype=np.float32).reshape(n, h, w)
    masks = np.fromfile(os.path.join(directory, "masks.u8"),
                        dtype=np.uint8).reshape(n, h, w)
    maps, masks = list(maps), list(masks)
    out = {}

    def timed(name, fn):
        t, c = time.perf_counter(), time.process_time()
        value = fn()
        out[name + "_s"] = time.perf_counter() - t
        out[name + "_cpu_s"] = time.process_time() - c
        return value

    out["pixel_auroc"] = timed("pixel_auroc", lambda: pixel_auroc(maps, masks))
    out["au_pro"] = timed(
        "au_pro", lambda: au_pro(maps, masks, fpr_dtype=np.float32))
    out["au_pro_float64"] = au_pro(maps, masks)
    if meta.get("spro"):
        chans = [[m] if m.any() else [] for m in masks]
        out["au_spro"], out["spro_thresholds"] = timed(
            "au_spro", lambda: official_spro(maps, chans, meta["loco_config"]))
    out["peak_rss_mib"] = resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss / 1024
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--bench":
        bench(sys.argv[2])
    elif len(sys.argv) <= 2:
        write_fixtures(sys.argv[1] if len(sys.argv) == 2 else os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "pixel_fixtures.json"))
    else:
        sys.exit(__doc__)

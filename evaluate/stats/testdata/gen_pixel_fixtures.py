#!/usr/bin/python3
"""Writes pixel_threshold.json, the numpy reference for the pixel threshold
of package stats (pixel.go, ChoosePixelThreshold).

Run with Debian's Python (python3-numpy), from this folder or anywhere:

    /usr/bin/python3 evaluate/stats/testdata/gen_pixel_fixtures.py

Each case is a few float32 "validation maps" drawn from a generator with a
fixed seed (rounded to three decimals, so that values tie; written as
float64 and read as float32) and, per pixel
false-positive rate f, numpy's quantile of all their pixels at 1 - f with
method="inverted_cdf": the smallest value with at least (1 - f)·n pixels at
or below it, which is the (k+1)-th largest value with k = floor(f·n). The
script checks that reading of the quantile before writing it. Floats are
written with repr.
"""
import json
import math
import os

import numpy as np

RATES = [0.0, 0.0005, 0.001, 0.002, 0.01, 0.05, 0.1, 0.25, 0.5, 0.9, 0.999]


def cases():
    rng = np.random.default_rng(1001)
    yield "three 32x32 maps", [np.round(rng.gamma(2.0, 0.3, size=32 * 32), 3) for _ in range(3)]
    yield "maps of different sizes", [np.round(rng.normal(size=n), 3) for n in (100, 257, 1)]
    yield "constant", [np.full(50, 0.25)]


def main():
    out = []
    for name, values in cases():
        # The maps are written as the float64 values; a reader converts
        # them to float32 (round to nearest) as astype does.
        maps = [m.astype(np.float32) for m in values]
        flat = np.concatenate(maps)
        n = flat.size
        thresholds = []
        for f in RATES:
            q = np.quantile(flat, 1 - f, method="inverted_cdf")
            k = int(math.floor(f * n + 1e-9))
            assert q == np.sort(flat)[::-1][k], (name, f)
            thresholds.append(float(q))
        out.append({"name": name, "maps": [[float(v) for v in m] for m in values],
                    "rates": RATES, "thresholds": thresholds})
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pixel_threshold.json")
    with open(path, "w") as f:
        json.dump(out, f)
        f.write("\n")


if __name__ == "__main__":
    main()

"""Writes fullmap_fixtures.json beside this script: anomaly maps resized to
image sizes by torch.nn.functional.interpolate(mode="bilinear"), as
EfficientAD's reference brings maps to the original image size, for the Go
test of evaluate.FullMap. Values are little-endian float32 in hex."""
import json
import os

import numpy as np
import torch

CASES = [  # map size, output width, output height
    (16, 37, 23),
    (16, 8, 5),
    (16, 16, 16),
    (8, 29, 17),
]


def main():
    rng = np.random.default_rng(11)
    out = []
    for size, w, h in CASES:
        m = rng.normal(size=(size, size)).astype(np.float32)
        t = torch.from_numpy(m)[None, None]
        r = torch.nn.functional.interpolate(t, size=(h, w), mode="bilinear")
        out.append({
            "size": size, "w": w, "h": h,
            "map": m.astype("<f4").tobytes().hex(),
            "want": r[0, 0].numpy().astype("<f4").tobytes().hex(),
        })
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fullmap_fixtures.json")
    with open(path, "w") as f:
        json.dump({"torch": torch.__version__, "cases": out}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()

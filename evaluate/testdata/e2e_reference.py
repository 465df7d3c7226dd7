#!/usr/bin/python3
"""Builds a small category and an EfficientAD model directory with random
weights, and scores the category the way the PUAD reference does, with
PyTorch, Pillow and scikit-learn. The Go end-to-end test runs this script
(Debian's python3-torch 1.13) into a temporary folder and compares every
per-image number with puad-go's.

usage: e2e_reference.py OUT_DIR [--size s|m] [--img-size N] [--extractor student|teacher]
                        [--validation-dir] [--seed N]

Writes OUT_DIR/data/<dataset>/<category>/..., OUT_DIR/models/<size>_size/...,
and OUT_DIR/expected.json.
"""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from sklearn.covariance import LedoitWolf
from sklearn.metrics import roc_auc_score

DATASET = "tiny_loco"
CATEGORY = "widget"
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


class PDN(nn.Module):
    """Patch description network; attribute names give the state-dict keys."""

    def __init__(self, size, out_ch):
        super().__init__()
        if size == "s":
            spec = [(3, 128, 4), (128, 256, 4), (256, 256, 3), (256, out_ch, 4)]
        else:
            spec = [(3, 256, 4), (256, 512, 4), (512, 512, 1), (512, 512, 3), (512, out_ch, 4), (out_ch, out_ch, 1)]
        self.n = len(spec)
        for i, (cin, cout, k) in enumerate(spec):
            setattr(self, "conv%d" % (i + 1), nn.Conv2d(cin, cout, k))

    def forward(self, x):
        x = F.avg_pool2d(F.relu(self.conv1(x)), 2, 2)
        x = F.avg_pool2d(F.relu(self.conv2(x)), 2, 2)
        x = F.relu(self.conv3(x))
        if self.n == 4:
            return self.conv4(x)
        x = F.relu(self.conv4(x))
        x = F.relu(self.conv5(x))
        return self.conv6(x)


class Enc(nn.Module):
    """The reference's encoder; below 256 pixels the last kernel is img/32
    (8 at 256, as in the reference), so that small images work."""

    def __init__(self, img=256):
        super().__init__()
        chans = [3, 32, 32, 64, 64, 64]
        for i in range(5):
            setattr(self, "enconv%d" % (i + 1), nn.Conv2d(chans[i], chans[i + 1], 4, stride=2, padding=1))
        self.enconv6 = nn.Conv2d(64, 64, min(8, img // 32))

    def forward(self, x):
        for i in range(1, 6):
            x = F.relu(getattr(self, "enconv%d" % i)(x))
        return self.enconv6(x)


class Dec(nn.Module):
    def __init__(self, out_ch, img):
        super().__init__()
        for i in range(1, 7):
            setattr(self, "deconv%d" % i, nn.Conv2d(64, 64, 4, padding=2))
        self.deconv7 = nn.Conv2d(64, 64, 3, padding=1)
        self.deconv8 = nn.Conv2d(64, out_ch, 3, padding=1)
        self.sizes = [img // 64 - 1, img // 32, img // 16 - 1, img // 8, img // 4 - 1, img // 2 - 1]
        self.last = img // 4 - 8

    def forward(self, x):
        for i, s in enumerate(self.sizes):
            x = F.interpolate(x, size=s, mode="bilinear")
            x = F.relu(getattr(self, "deconv%d" % (i + 1))(x))
        x = F.interpolate(x, size=self.last, mode="bilinear")
        x = F.relu(self.deconv7(x))
        return self.deconv8(x)


class AE(nn.Module):
    def __init__(self, out_ch, img):
        super().__init__()
        self.encoder = Enc(img)
        self.decoder = Dec(out_ch, img)

    def forward(self, x):
        return self.decoder(self.encoder(x))


def make_image(rng, w, h, kind):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([120 + 60 * np.sin(xx / 9.0), 110 + 50 * np.cos(yy / 7.0), 130 + 40 * np.sin((xx + yy) / 11.0)], -1)
    base += rng.normal(0, 6, size=base.shape)
    cx, cy = w * rng.uniform(0.35, 0.65), h * rng.uniform(0.35, 0.65)
    r = min(w, h) * 0.18
    disc = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
    base[disc] = [200, 40, 40]
    if kind == "logical":  # an extra disc
        d2 = (xx - w * 0.2) ** 2 + (yy - h * 0.2) ** 2 < r * r
        base[d2] = [200, 40, 40]
    if kind == "structural":  # a dark scratch
        x0 = int(rng.uniform(0.2, 0.6) * w)
        base[int(h * 0.3):int(h * 0.7), x0:x0 + 3] = [10, 10, 10]
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")


def to_tensor(img, size):
    img = img.convert("RGB").resize((size, size), Image.BILINEAR)
    t = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255)
    mean = torch.tensor(MEAN).view(-1, 1, 1)
    std = torch.tensor(STD).view(-1, 1, 1)
    return t.sub(mean).div(std)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--size", default="s")
    ap.add_argument("--img-size", type=int, default=256)
    ap.add_argument("--extractor", default="student")
    ap.add_argument("--validation-dir", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-train", type=int, default=14)
    ap.add_argument("--n-test", type=int, default=3)
    ap.add_argument("--time-reference", action="store_true",
                    help="also time the reference's own procedure (networks run 1x per train, 2x per validation "
                         "and 3x per test image) and store reference_seconds")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    img = args.img_size

    cat = os.path.join(args.out, "data", DATASET, CATEGORY)
    layout = {"train/good": ("good", args.n_train)}
    if args.validation_dir:
        layout["validation/good"] = ("good", 4)
    layout.update({"test/good": ("good", args.n_test), "test/logical_anomalies": ("logical", args.n_test - 1),
                   "test/structural_anomalies": ("structural", args.n_test - 1)})
    for sub, (kind, n) in layout.items():
        os.makedirs(os.path.join(cat, sub), exist_ok=True)
        for i in range(n):
            # Sizes above and below the model size: both resize directions.
            w, h = [(img + 37, img + 11), (img - 29, img - 40), (img, img)][i % 3]
            make_image(rng, w, h, kind).save(os.path.join(cat, sub, "%03d.png" % i))

    # Random networks; the teacher's output statistics are made non-trivial.
    teacher, student, ae = PDN(args.size, 384), PDN(args.size, 768), AE(384, img)
    for m in (teacher, student, ae):
        m.eval()
    mdir = os.path.join(args.out, "models", "%s_size" % args.size)
    tdir = os.path.join(mdir, "teacher")
    cdir = os.path.join(mdir, DATASET, CATEGORY)
    os.makedirs(tdir, exist_ok=True)
    os.makedirs(cdir, exist_ok=True)
    torch.save(teacher.state_dict(), os.path.join(tdir, "teacher.pt"))
    torch.save(student.state_dict(), os.path.join(cdir, "student.pt"))
    # The autoencoder in the legacy format: both formats must load.
    torch.save(ae.state_dict(), os.path.join(cdir, "autoencoder.pt"), _use_new_zipfile_serialization=False)
    mu = torch.randn(384) * 0.05
    sigma = torch.rand(384) * 0.1 + 0.05
    torch.save(mu, os.path.join(cdir, "mu.pt"))
    torch.save(sigma, os.path.join(cdir, "sigma.pt"))
    quantile = {"q_a_student": torch.tensor(0.5), "q_b_student": torch.tensor(3.0),
                "q_a_autoencoder": torch.tensor(0.01), "q_b_autoencoder": torch.tensor(0.2)}
    with torch.no_grad():  # make the quantiles realistic: from one training image
        x = to_tensor(Image.open(os.path.join(cat, "train/good/000.png")), img).unsqueeze(0)
        t = (teacher(x) - mu.view(-1, 1, 1)) / sigma.view(-1, 1, 1)
        s = student(x)
        a = ae(x)
        st = torch.mean((t - s[:, :384]) ** 2, dim=1)
        sa = torch.mean((a - s[:, 384:]) ** 2, dim=1)
        quantile = {"q_a_student": torch.quantile(st, 0.9), "q_b_student": torch.quantile(st, 0.995),
                    "q_a_autoencoder": torch.quantile(sa, 0.9), "q_b_autoencoder": torch.quantile(sa, 0.995)}
    torch.save(quantile, os.path.join(cdir, "quantile.pt"))

    def run(path, feature_only=False):
        x = to_tensor(Image.open(path), img).unsqueeze(0)
        with torch.no_grad():
            if feature_only and args.extractor == "student":
                return None, torch.mean(student(x)[:, :384], dim=(0, 2, 3)).numpy()
            tout = teacher(x)
            sout = student(x)
            aout = ae(x)
            tn = (tout - mu.view(-1, 1, 1)) / sigma.view(-1, 1, 1)
            s_st, s_ae = sout[:, :384], sout[:, 384:]
            smap = torch.mean((tn - s_st) ** 2, dim=1, keepdim=True)
            amap = torch.mean((aout - s_ae) ** 2, dim=1, keepdim=True)
            smap = F.interpolate(smap, size=(img, img), mode="bilinear").squeeze()
            amap = F.interpolate(amap, size=(img, img), mode="bilinear").squeeze()
            q = quantile
            smap = 0.1 * (smap - q["q_a_student"]) / (q["q_b_student"] - q["q_a_student"])
            amap = 0.1 * (amap - q["q_a_autoencoder"]) / (q["q_b_autoencoder"] - q["q_a_autoencoder"])
            score = torch.max(0.5 * smap + 0.5 * amap).numpy()
            src = s_st if args.extractor == "student" else tn
            feat = torch.mean(src, dim=(0, 2, 3)).numpy()
        return score, feat

    def pngs(d):
        return [os.path.join(d, f) for f in sorted(os.listdir(d)) if f.endswith(".png")]

    train = pngs(os.path.join(cat, "train/good"))
    if args.validation_dir:
        valid = pngs(os.path.join(cat, "validation/good"))
    else:
        n = len(train)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(42)).tolist()
        k = n - int(n * 0.15)
        train, valid = [train[i] for i in perm[:k]], [train[i] for i in perm[k:]]

    feats = np.array([run(p, True)[1] for p in train])
    fmean = np.mean(feats, axis=0)
    covinv = np.linalg.pinv(LedoitWolf().fit(feats).covariance_)

    def maha(f):
        d = f - fmean
        # float32 throughout, as the reference (features, mean and pinv are float32).
        return np.sqrt(max(0, np.dot(np.dot(d, covinv), d)))

    vs, vm = [], []
    for p in valid:
        s, f = run(p)
        vs.append(s)
        vm.append(maha(f))
    stats = {"eff_mean": float(np.mean(vs)), "eff_std": float(np.std(vs)),
             "maha_mean": float(np.mean(vm)), "maha_std": float(np.std(vm))}

    tests = []
    classes = sorted(os.listdir(os.path.join(cat, "test")))
    for c in classes:
        for p in pngs(os.path.join(cat, "test", c)):
            s, f = run(p)
            m = maha(f)
            puad = (s - stats["eff_mean"]) / stats["eff_std"] + (m - stats["maha_mean"]) / stats["maha_std"]
            tests.append({"path": os.path.relpath(p, cat), "class": c, "efficient_ad": float(s),
                          "mahalanobis": float(m), "puad": float(puad), "feature_head": [float(v) for v in f[:4]]})
    y = [0 if t["class"] == "good" else 1 for t in tests]
    per_class = {}
    good = [t for t in tests if t["class"] == "good"]
    for c in classes:
        if c == "good":
            continue
        sub = good + [t for t in tests if t["class"] == c]
        per_class[c] = roc_auc_score([0 if t["class"] == "good" else 1 for t in sub], [t["puad"] for t in sub])
    out = {
        "dataset_name": DATASET, "category": CATEGORY, "size": args.size, "img_size": img,
        "extractor": args.extractor,
        "train": [os.path.relpath(p, cat) for p in train], "valid": [os.path.relpath(p, cat) for p in valid],
        "validation": stats, "test": tests,
        "efficient_ad_auroc": roc_auc_score(y, [t["efficient_ad"] for t in tests]),
        "puad_auroc": roc_auc_score(y, [t["puad"] for t in tests]),
        "puad_auroc_per_class": per_class,
    }
    if args.time_reference:
        import time
        t0 = time.perf_counter()
        # The reference's call pattern: PUAD.train runs every network for each
        # training image; PUAD.valid scores and then runs again for the
        # Mahalanobis distance; the test set is scored once for EfficientAD's
        # AUROC and twice more by PUAD.test.
        def full(p):
            return run(p, False)  # all three networks, as EfficientADInference.run
        feats = np.array([full(p)[1] for p in train])
        fmean = np.mean(feats, axis=0)
        covinv = np.linalg.pinv(LedoitWolf().fit(feats).covariance_)
        vs = [full(p)[0] for p in valid]
        vm = [maha(full(p)[1]) for p in valid]
        for c in classes:
            for p in pngs(os.path.join(cat, "test", c)):
                full(p)
                maha(full(p)[1])
                full(p)
        out["reference_seconds"] = time.perf_counter() - t0
        out["reference_threads"] = torch.get_num_threads()
    with open(os.path.join(args.out, "expected.json"), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()

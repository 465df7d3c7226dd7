#!/usr/bin/python3
"""Loads the files a Go training run wrote with PyTorch, as the reference
would: torch.load (also with weights_only=True) and load_state_dict(strict)
into networks defined here from the architecture.

usage: check_files.py MODEL_DIR SIZE [IMG_SIZE DATASET CATEGORY]

MODEL_DIR/<SIZE>_size/teacher/{teacher.pt, mu.pt, sigma.pt} (from the teacher
distillation: the padded PDN's state dict, loaded into the unpadded PDN as
the reference does) and MODEL_DIR/<SIZE>_size/DATASET/CATEGORY/{student.pt,
autoencoder.pt, mu.pt, sigma.pt, quantile.pt}. Prints one line per file.
"""
import os
import sys

import torch
import torch.nn as nn


def pdn(out_ch):
    m = nn.Module()
    for i, (cin, cout, k) in enumerate([(3, 128, 4), (128, 256, 4), (256, 256, 3), (256, out_ch, 4)]):
        setattr(m, "conv%d" % (i + 1), nn.Conv2d(cin, cout, k))
    return m


def autoencoder(out_ch, img):
    m = nn.Module()
    m.encoder = nn.Module()
    chans = [3, 32, 32, 64, 64, 64]
    for i in range(5):
        setattr(m.encoder, "enconv%d" % (i + 1), nn.Conv2d(chans[i], chans[i + 1], 4, stride=2, padding=1))
    m.encoder.enconv6 = nn.Conv2d(64, 64, 8 if img >= 256 else img // 32)
    m.decoder = nn.Module()
    for i in range(1, 7):
        setattr(m.decoder, "deconv%d" % i, nn.Conv2d(64, 64, 4, padding=2))
    m.decoder.deconv7 = nn.Conv2d(64, 64, 3, padding=1)
    m.decoder.deconv8 = nn.Conv2d(64, out_ch, 3, padding=1)
    return m


def load(path):
    a = torch.load(path)
    b = torch.load(path, weights_only=True)
    assert type(a) == type(b), path
    return a


def main():
    root, size = sys.argv[1], sys.argv[2]
    if size != "s":
        raise SystemExit("only size s is checked here")
    tdir = os.path.join(root, size + "_size", "teacher")
    pdn(384).load_state_dict(load(os.path.join(tdir, "teacher.pt")))
    print("teacher.pt ok")
    dirs = [tdir]
    if len(sys.argv) > 3:
        img, dataset, category = int(sys.argv[3]), sys.argv[4], sys.argv[5]
        dirs.append(os.path.join(root, size + "_size", dataset, category))
    for d in dirs:
        for name in ["mu.pt", "sigma.pt"]:
            p = os.path.join(d, name)
            if not os.path.exists(p):
                continue
            t = load(p)
            assert isinstance(t, torch.Tensor) and t.shape == (384,) and t.dtype == torch.float32, p
            assert torch.isfinite(t).all(), p
            print(os.path.relpath(p, root), "ok")
    if len(dirs) == 1:
        return
    cdir = dirs[1]
    pdn(768).load_state_dict(load(os.path.join(cdir, "student.pt")))
    print("student.pt ok")
    autoencoder(384, img).load_state_dict(load(os.path.join(cdir, "autoencoder.pt")))
    print("autoencoder.pt ok")
    q = load(os.path.join(cdir, "quantile.pt"))
    assert sorted(q) == sorted(["q_a_student", "q_b_student", "q_a_autoencoder", "q_b_autoencoder"]), q
    for k, v in q.items():
        assert isinstance(v, torch.Tensor) and v.dim() == 0, k
    assert q["q_a_student"] <= q["q_b_student"] and q["q_a_autoencoder"] <= q["q_b_autoencoder"], q
    print("quantile.pt ok")


if __name__ == "__main__":
    main()

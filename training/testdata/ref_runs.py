#!/usr/bin/python3
"""Short training runs of the PUAD reference's loops (train_teacher and
train_student_and_autoencoder) with puad's random streams, for the tests of
package training.

puad draws every random decision from libtorch CPU generators seeded from
the run's seed, one per purpose (training/random.go). This script derives
the same seeds, draws the same numbers in the same order from PyTorch's own
generators, runs the reference's steps on the inputs they select, and
writes what it drew and computed.

usage: ref_runs.py CONFIG.json OUT_DIR

CONFIG holds "kind" ("teacher" or "student"), "seed", "iterations",
"img_size", "threads" (libtorch's intra-op threads, as many as puad's run
uses: the float32 reductions split their work by thread) and the inputs: for the teacher "imagenet" (folder), "wrn" (the
extractor's weights, a wide ResNet with one block per layer), "batch_size"
and "stat_samples"; for the student "dataset" (category folder with
validation images), "imagenet" and "teacher" (teacher.pt).

Writes OUT_DIR/run.json: "draws" (the statistics samples and, per
iteration, the images and augmentations drawn), "losses" (per iteration,
the values of puad's train_loss.csv row), "lr" (the learning rate of each
iteration), "mu" and "sigma" (the reference's statistics; for the student
also "mu_train" and "sigma_train", those the run used, see student_run);
and the trained weights as state dicts, OUT_DIR/teacher.pt or
OUT_DIR/student.pt and autoencoder.pt.
"""
import json
import os
import sys

import torch
import torch.nn as nn
from PIL import Image
from torchvision import datasets, transforms
from torchvision.models.resnet import Bottleneck, ResNet

from gen_fixtures import AE, AUG, PDN, extract, imagenet_input, init_from, normalize, teacher_inputs, to_tensor

MASK = (1 << 64) - 1


def sub_seed(seed, stream):
    """The seed of one of puad's streams (training/random.go's subSeed)."""
    h = 0xCBF29CE484222325
    for b in stream.encode():
        h = ((h ^ b) * 0x100000001B3) & MASK
    x = ((seed ^ h) + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def stream(seed, name):
    return torch.Generator().manual_seed(sub_seed(seed, name))


def randint(g, lo, hi):
    return int(torch.randint(lo, hi, (1,), generator=g)[0])


def uniform(g):
    return torch.rand(1, generator=g)


def sample_distinct(g, n, k):
    """The first k entries of a random permutation of range(n), as a
    partial Fisher-Yates shuffle drawing randint(i, n) for i = 0..k-1."""
    a = list(range(n))
    out = []
    for i in range(min(k, n)):
        j = randint(g, i, n)
        a[i], a[j] = a[j], a[i]
        out.append(a[i])
    return out


def image_paths(folder):
    return [p for p, _ in datasets.ImageFolder(folder).samples]


def teacher_run(c, out):
    paths = image_paths(c["imagenet"])
    n, size, seed = c["stat_samples"], c["img_size"], c["seed"]
    net = ResNet(Bottleneck, [1, 1, 1, 1], width_per_group=128)
    # The file holds the extractor's part (stem, layer1..3) only.
    res = net.load_state_dict(torch.load(c["wrn"]), strict=False)
    assert not res.unexpected_keys and all(k.split(".")[0] in ("layer4", "fc") for k in res.missing_keys), res
    net.eval()
    # The reference's statistics samples; each pass's grayscale draws.
    idx = torch.randint(len(paths), (n,), generator=torch.Generator().manual_seed(42)).tolist()
    u = torch.rand(2 * n, generator=stream(seed, "stats"))
    gray1, gray2 = (u[:n] < 0.1).tolist(), (u[n:] < 0.1).tolist()
    with torch.no_grad():
        means = []
        for k, g in zip(idx, gray1):
            x, _ = teacher_inputs(paths[k], g, size)
            means.append(extract(net, x[None]).squeeze().mean(dim=(1, 2)))
        mu = torch.stack(means).mean(dim=0)
        variances = []
        for k, g in zip(idx, gray2):
            x, _ = teacher_inputs(paths[k], g, size)
            variances.append(((extract(net, x[None]).squeeze() - mu[:, None, None]) ** 2).mean(dim=(1, 2)))
        sigma = torch.sqrt(torch.stack(variances).mean(dim=0))
    teacher = PDN(384, True)
    init_from(teacher, stream(seed, "init"))
    teacher.train()
    opt = torch.optim.Adam(teacher.parameters(), lr=1e-4, weight_decay=1e-5)
    data = stream(seed, "data")
    draws, losses, lrs = [], [], []
    for _ in range(c["iterations"]):
        batch = sample_distinct(data, len(paths), c["batch_size"])
        gray = [bool(uniform(data) < 0.1) for _ in batch]
        draws.append({"idx": batch, "gray": gray})
        xs = [teacher_inputs(paths[k], g, size) for k, g in zip(batch, gray)]
        x_fe, x_pdn = torch.stack([a for a, _ in xs]), torch.stack([b for _, b in xs])
        with torch.no_grad():
            target = transforms.Normalize(mu, sigma)(extract(net, x_fe))
        loss = nn.MSELoss()(target, teacher(x_pdn))
        opt.zero_grad()
        loss.backward()
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        losses.append([loss.item()])
    torch.save(teacher.state_dict(), os.path.join(out, "teacher.pt"))
    stats = {"idx": idx, "gray1": gray1, "gray2": gray2}
    return {"stats": stats, "iterations": draws}, losses, lrs, mu, sigma, {}


def student_run(c, out):
    size, seed, total = c["img_size"], c["seed"], c["iterations"]
    train_dir = os.path.join(c["dataset"], "train", "good")
    train = [os.path.join(train_dir, f) for f in sorted(os.listdir(train_dir)) if f.endswith(".png")]
    imagenet = image_paths(c["imagenet"])
    teacher = PDN(384, False)
    teacher.load_state_dict(torch.load(c["teacher"]))
    teacher.eval()
    student, ae = PDN(768, False), AE(384, size)
    init = stream(seed, "init")
    init_from(student, init)
    init_from(ae, init)
    student.train()
    ae.train()

    def base(path):
        return to_tensor(transforms.Resize((size, size))(Image.open(path).convert("RGB")))

    with torch.no_grad():
        st = torch.stack([teacher(normalize(base(p))).squeeze() for p in train])
        mu, sigma = st.mean(dim=(0, 2, 3)), st.std(dim=(0, 2, 3))
        # puad computes the same statistics in float64 and rounds them once:
        # they differ from the float32 ones by an ulp, and the training below
        # uses puad's, so that the steps compare the loops alone.
        st = st.double()
        mu_train, sigma_train = st.mean(dim=(0, 2, 3)).float(), st.std(dim=(0, 2, 3)).float()
    tnorm = transforms.Normalize(mu_train, sigma_train)
    plist = nn.ParameterList()
    plist.extend(ae.parameters())
    plist.extend(student.parameters())
    opt = torch.optim.Adam(plist, lr=1e-4, weight_decay=1e-5)
    data = stream(seed, "data")
    torch.manual_seed(sub_seed(seed, "dropout"))
    draws, losses, lrs = [], [], []
    for it in range(total):
        k, kind = randint(data, 0, len(train)), randint(data, 1, 4)
        lam = uniform(data) * 0.4 + 0.8
        ki = randint(data, 0, len(imagenet))
        gray = bool(uniform(data) < 0.3)
        draws.append({"train": k, "kind": kind, "factor": lam.item(), "imagenet": ki, "imagenet_gray": gray})
        b = base(train[k])
        img_train, img_aug = normalize(b)[None], normalize(AUG[kind](b, lam))[None]
        img_net = imagenet_input(imagenet[ki], gray, size)[None]
        # The reference's step.
        with torch.no_grad():
            t = tnorm(teacher(img_train))
        diff = (t - student(img_train)[:, :384]) ** 2
        loss_hard = torch.mean(diff[torch.where(diff >= torch.quantile(input=diff, q=0.999))])
        loss_pen = torch.mean(student(img_net)[:, :384] ** 2)
        ae_out = ae(img_aug)
        with torch.no_grad():
            ta = tnorm(teacher(img_aug))
        loss_ae = torch.mean((ta - ae_out) ** 2)
        loss_sae = torch.mean((ae_out - student(img_aug)[:, 384:]) ** 2)
        total_loss = loss_hard + loss_pen + loss_ae + loss_sae
        opt.zero_grad()
        total_loss.backward()
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        losses.append([v.item() for v in (total_loss, loss_hard, loss_pen, loss_ae, loss_sae)])
        # The reference lowers the rate after iteration 66500 of 70000.
        if it == total * 95 // 100:
            opt.param_groups[0]["lr"] = 1e-5
    torch.save(student.state_dict(), os.path.join(out, "student.pt"))
    torch.save(ae.state_dict(), os.path.join(out, "autoencoder.pt"))
    stats = {"mu_train": mu_train.tolist(), "sigma_train": sigma_train.tolist()}
    return {"iterations": draws}, losses, lrs, mu, sigma, stats


def main():
    with open(sys.argv[1]) as f:
        c = json.load(f)
    out = sys.argv[2]
    torch.set_num_threads(c.get("threads", 1))
    run = {"teacher": teacher_run, "student": student_run}[c["kind"]]
    draws, losses, lrs, mu, sigma, extra = run(c, out)
    with open(os.path.join(out, "run.json"), "w") as f:
        json.dump(dict(extra, draws=draws, losses=losses, lr=lrs, mu=mu.tolist(), sigma=sigma.tolist()), f)


if __name__ == "__main__":
    main()

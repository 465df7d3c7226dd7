#!/usr/bin/python3
"""Reference fixtures for package training, computed with Debian's
python3-torch 1.13 and torchvision 0.14 the way the PUAD reference trains
(its transforms, losses, statistics and optimiser), with the networks
defined here from the architecture.

Every random part is explicit, so that Go can redo exactly the same
computation: images (written here as PNG files), grayscale decisions,
augmentation kinds and factors, initial weights (drawn from seeded
generators with PyTorch's default Conv2d distribution, U(-1/sqrt(fan_in),
1/sqrt(fan_in)), as models.InitDefault draws them), and dropout masks
(torch.manual_seed(s) before the step; Go seeds the autoencoder's generator
with s).

usage: gen_fixtures.py [OUT_DIR [IMAGE_DIR]]   (default: the folder of this script)

Writes OUT_DIR/img_a.png, img_b.png, img_c.png (unless IMAGE_DIR names a
folder that already holds them: the tests regenerate the fixtures on the
machine that runs them from the committed images) and OUT_DIR/fixtures.json
holding, per tensor, its sum, sum of absolute values, L2 norm and eight
sampled entries (at flat indices (2k+1)*n//16), and full vectors for the
statistics.
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms
from torchvision.models.resnet import Bottleneck, ResNet
import torchvision.transforms.functional as TF

torch.set_num_threads(1)
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
normalize = transforms.Normalize(MEAN, STD)
to_tensor = transforms.ToTensor()


def summary(t):
    t = t.detach().double().flatten()
    n = t.numel()
    return {
        "n": n,
        "sum": t.sum().item(),
        "abssum": t.abs().sum().item(),
        "norm": t.norm().item(),
        "samples": [t[(2 * k + 1) * n // 16].item() for k in range(8)],
    }


def make_image(path, w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = []
    for c in range(3):
        v = 128 + 90 * np.sin(x / (5 + 2 * c) + seed) * np.cos(y / (7 + c) - c) + rng.normal(0, 10, (h, w))
        chans.append(v)
    img = np.clip(np.stack(chans, axis=-1), 0, 255).astype(np.uint8)
    Image.fromarray(img, "RGB").save(path)


class PDN(nn.Module):
    def __init__(self, out_ch, padding):
        super().__init__()
        p = 1 if padding else 0
        self.conv1 = nn.Conv2d(3, 128, 4, padding=3 * p)
        self.conv2 = nn.Conv2d(128, 256, 4, padding=3 * p)
        self.conv3 = nn.Conv2d(256, 256, 3, padding=1 * p)
        self.conv4 = nn.Conv2d(256, out_ch, 4)
        self.pool_pad = p

    def forward(self, x):
        x = F.avg_pool2d(F.relu(self.conv1(x)), 2, 2, padding=self.pool_pad)
        x = F.avg_pool2d(F.relu(self.conv2(x)), 2, 2, padding=self.pool_pad)
        x = F.relu(self.conv3(x))
        return self.conv4(x)


class AE(nn.Module):
    def __init__(self, out_ch, img):
        super().__init__()
        self.encoder = nn.Module()
        chans = [3, 32, 32, 64, 64, 64]
        for i in range(5):
            setattr(self.encoder, "enconv%d" % (i + 1), nn.Conv2d(chans[i], chans[i + 1], 4, stride=2, padding=1))
        # The last kernel follows models.EncoderLastKernel: 8 from 256 up, img/32 below.
        self.encoder.enconv6 = nn.Conv2d(64, 64, 8 if img >= 256 else img // 32)
        self.decoder = nn.Module()
        for i in range(1, 7):
            setattr(self.decoder, "deconv%d" % i, nn.Conv2d(64, 64, 4, padding=2))
        self.decoder.deconv7 = nn.Conv2d(64, 64, 3, padding=1)
        self.decoder.deconv8 = nn.Conv2d(64, out_ch, 3, padding=1)
        self.sizes = [img // 64 - 1, img // 32, img // 16 - 1, img // 8, img // 4 - 1, img // 2 - 1, img // 4 - 8]

    def forward(self, x):
        e, d = self.encoder, self.decoder
        for i in range(1, 6):
            x = F.relu(getattr(e, "enconv%d" % i)(x))
        x = e.enconv6(x)
        for i in range(1, 7):
            x = F.interpolate(x, size=self.sizes[i - 1], mode="bilinear")
            x = F.relu(getattr(d, "deconv%d" % i)(x))
            x = F.dropout(x, p=0.2, training=self.training)
        x = F.interpolate(x, size=self.sizes[6], mode="bilinear")
        x = F.relu(d.deconv7(x))
        return d.deconv8(x)


def init_default(module, seed):
    """PyTorch's default Conv2d distribution, drawn in state-dict order from
    a generator seeded with seed (models.InitDefault)."""
    init_from(module, torch.Generator().manual_seed(seed))


def init_from(module, g):
    """init_default's draws, from the generator g."""
    fan_in = None
    with torch.no_grad():
        for _, p in module.named_parameters():
            if p.dim() > 1:
                fan_in = p[0].numel()
            bound = 1 / math.sqrt(fan_in)
            p.copy_(torch.rand(p.shape, generator=g) * (2 * bound) - bound)


def fill_wrn(net, seed):
    """Test weights of the extractor (stem, layer1..3), drawn in state-dict
    order: convolutions U(-sqrt(3/fan_in), sqrt(3/fan_in)), batch-norm
    weights and variances in [0.75, 1.25), biases and means in [-0.1, 0.1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for k, t in net.state_dict(keep_vars=True).items():
            if k.startswith("layer4.") or k.startswith("fc."):
                continue
            if k.endswith("num_batches_tracked"):
                t.zero_()
                continue
            u = torch.rand(t.shape, generator=g)
            if t.dim() == 4:
                t.copy_((u * 2 - 1) * math.sqrt(3 / t[0].numel()))
            elif k.endswith(".weight") or k.endswith("running_var"):
                t.copy_(u * 0.5 + 0.75)
            else:
                t.copy_(u * 0.2 - 0.1)


def extract(net, x, out_channels=384):
    h = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    f2 = net.layer2(net.layer1(h))
    f3 = net.layer3(f2)
    b, _, hh, ww = f2.shape
    f3 = F.interpolate(f3, size=(hh, ww), mode="bilinear", align_corners=False)
    f = torch.cat([f2, f3], dim=1)
    f = f.reshape(b, f.shape[1], hh * ww).transpose(1, 2)
    f = F.adaptive_avg_pool1d(f, out_channels).transpose(1, 2)
    return f.reshape(b, out_channels, hh, ww)


def load(path, gray):
    img = Image.open(path).convert("RGB")
    if gray:
        img = TF.rgb_to_grayscale(img, num_output_channels=3)
    return img


def teacher_inputs(path, gray, size):
    img = load(path, gray)
    fe = normalize(to_tensor(transforms.Resize((2 * size, 2 * size))(img)))
    pdn = normalize(to_tensor(transforms.Resize((size, size))(img)))
    return fe, pdn


def imagenet_input(path, gray, size):
    img = transforms.Resize((512, 512))(Image.open(path).convert("RGB"))
    if gray:
        img = TF.rgb_to_grayscale(img, num_output_channels=3)
    return normalize(to_tensor(transforms.CenterCrop((size, size))(img)))


AUG = {1: TF.adjust_brightness, 2: TF.adjust_contrast, 3: TF.adjust_saturation}


def grads_and_step(params, names, opt, step):
    grads = {n: summary(p.grad) for n, p in zip(names, params)}
    before = [p.detach().clone() for p in params]
    step()
    delta = {n: summary(p.detach() - b) for n, p, b in zip(names, params, before)}
    after = {n: summary(p) for n, p in zip(names, params)}
    return grads, delta, after


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    os.makedirs(out, exist_ok=True)
    img_dir = sys.argv[2] if len(sys.argv) > 2 else None
    img = {}
    for name, (w, h, seed) in {"a": (96, 80, 1), "b": (72, 100, 2), "c": (130, 90, 3)}.items():
        img[name] = os.path.join(img_dir or out, "img_%s.png" % name)
        if img_dir is None:
            make_image(img[name], w, h, seed)
    fx = {}

    # Transforms.
    fe, pdn = teacher_inputs(img["a"], True, 64)
    fx["teacher_input_fe"], fx["teacher_input_pdn"] = summary(fe), summary(pdn)
    fx["imagenet_input"] = summary(imagenet_input(img["b"], True, 128))
    big = transforms.Resize((512, 512))(Image.open(img["b"]).convert("RGB"))
    fx["center_crop_127"] = summary(to_tensor(transforms.CenterCrop((127, 127))(big)))
    fx["center_crop_pad"] = summary(to_tensor(transforms.CenterCrop((515, 600))(big)))
    base = to_tensor(transforms.Resize((128, 128))(Image.open(img["a"]).convert("RGB")))
    for kind, f in [(1, 0.8123), (2, 1.1877), (3, 0.9061)]:
        lam = torch.tensor([f], dtype=torch.float32)
        fx["augment_%d" % kind] = summary(AUG[kind](base, lam))

    # Extractor (ResNet with Bottleneck blocks [1, 1, 1, 1], width 128) and the
    # teacher statistics: two passes over the same samples, each with its own
    # grayscale decisions.
    torch.manual_seed(0)
    net = ResNet(Bottleneck, [1, 1, 1, 1], width_per_group=128)
    fill_wrn(net, 5)
    net.eval()
    samples = [img["a"], img["b"], img["c"]]
    gray1, gray2 = [False, True, False], [True, False, False]
    with torch.no_grad():
        means = []
        for p, g in zip(samples, gray1):
            x, _ = teacher_inputs(p, g, 64)
            means.append(extract(net, x[None]).squeeze().mean(dim=(1, 2)))
        mu = torch.stack(means).mean(dim=0)
        variances = []
        for p, g in zip(samples, gray2):
            x, _ = teacher_inputs(p, g, 64)
            o = extract(net, x[None]).squeeze()
            variances.append(((o - mu[:, None, None]) ** 2).mean(dim=(1, 2)))
        sigma = torch.sqrt(torch.stack(variances).mean(dim=0))
    fx["teacher_mu"], fx["teacher_sigma"] = mu.tolist(), sigma.tolist()

    # One distillation step: padded PDN_S at 64 pixels, batch of two.
    teacher = PDN(384, True)
    init_default(teacher, 7)
    teacher.train()
    batch = [(img["a"], True), (img["c"], False)]
    xs = [teacher_inputs(p, g, 64) for p, g in batch]
    x_fe = torch.stack([a for a, _ in xs])
    x_pdn = torch.stack([b for _, b in xs])
    fx["wrn_features"] = summary(extract(net, x_fe).detach())
    opt = torch.optim.Adam(teacher.parameters(), lr=1e-4, weight_decay=1e-5)
    with torch.no_grad():
        target = transforms.Normalize(mu, sigma)(extract(net, x_fe))
    loss = nn.MSELoss()(target, teacher(x_pdn))
    opt.zero_grad()
    loss.backward()
    names = [n for n, _ in teacher.named_parameters()]
    g, d, a = grads_and_step(list(teacher.parameters()), names, opt, opt.step)
    fx["distill"] = {"loss": loss.item(), "grads": g, "delta": d, "after": a}

    # Student and autoencoder at 128 pixels.
    size = 128
    teacher = PDN(384, False)
    init_default(teacher, 11)
    teacher.eval()
    student = PDN(768, False)
    init_default(student, 12)
    ae = AE(384, size)
    init_default(ae, 13)
    student.train()
    ae.train()
    train_imgs = [img["a"], img["c"]]
    with torch.no_grad():
        outs = []
        for p in train_imgs:
            x = normalize(to_tensor(transforms.Resize((size, size))(Image.open(p).convert("RGB"))))
            outs.append(teacher(x).squeeze())
        st = torch.stack(outs, dim=0)
        cmu, csigma = st.mean(dim=(0, 2, 3)), st.std(dim=(0, 2, 3))
    fx["category_mu"], fx["category_sigma"] = cmu.tolist(), csigma.tolist()
    tnorm = transforms.Normalize(cmu, csigma)

    plist = nn.ParameterList()
    plist.extend(ae.parameters())
    plist.extend(student.parameters())
    opt = torch.optim.Adam(plist, lr=1e-4, weight_decay=1e-5)
    base = to_tensor(transforms.Resize((size, size))(Image.open(img["a"]).convert("RGB")))
    img_train = normalize(base)[None]
    img_aug = normalize(TF.adjust_contrast(base, torch.tensor([0.9137], dtype=torch.float32)))[None]
    img_net = imagenet_input(img["b"], True, size)[None]
    torch.manual_seed(21)
    with torch.no_grad():
        t = tnorm(teacher(img_train))
    s = student(img_train)[:, :384]
    diff = (t - s) ** 2
    thr = torch.quantile(input=diff, q=0.999)
    loss_hard = torch.mean(diff[torch.where(diff >= thr)])
    loss_pen = torch.mean(student(img_net)[:, :384] ** 2)
    loss_student = loss_hard + loss_pen
    ae_out = ae(img_aug)
    with torch.no_grad():
        ta = tnorm(teacher(img_aug))
    sa = student(img_aug)[:, 384:]
    loss_ae = torch.mean((ta - ae_out) ** 2)
    loss_sae = torch.mean((ae_out - sa) ** 2)
    total = loss_student + loss_ae + loss_sae
    opt.zero_grad()
    total.backward()
    params = list(ae.parameters()) + list(student.parameters())
    names = ["autoencoder." + n for n, _ in ae.named_parameters()] + ["student." + n for n, _ in student.named_parameters()]
    g, d, a = grads_and_step(params, names, opt, opt.step)
    fx["student"] = {
        "losses": {"total": total.item(), "hard": loss_hard.item(), "penalty": loss_pen.item(),
                   "ae": loss_ae.item(), "student_ae": loss_sae.item()},
        "grads": g, "delta": d, "after": a,
    }

    # Quantiles of the validation maps, after the step, in evaluation mode.
    student.eval()
    ae.eval()
    smaps, amaps = [], []
    with torch.no_grad():
        for p in [img["b"], img["c"]]:
            x = normalize(to_tensor(transforms.Resize((size, size))(Image.open(p).convert("RGB"))))[None]
            t, s, a = tnorm(teacher(x)), student(x), ae(x)
            sm = torch.mean((t - s[:, :384]) ** 2, dim=1, keepdim=True)
            am = torch.mean((a - s[:, 384:]) ** 2, dim=1, keepdim=True)
            smaps.append(F.interpolate(sm, size=(size, size), mode="bilinear").squeeze())
            amaps.append(F.interpolate(am, size=(size, size), mode="bilinear").squeeze())
    sm, am = torch.stack(smaps), torch.stack(amaps)
    fx["quantiles"] = {
        "q_a_student": torch.quantile(sm, 0.9).item(), "q_b_student": torch.quantile(sm, 0.995).item(),
        "q_a_autoencoder": torch.quantile(am, 0.9).item(), "q_b_autoencoder": torch.quantile(am, 0.995).item(),
    }

    with open(os.path.join(out, "fixtures.json"), "w") as f:
        json.dump(fx, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Writes one random teacher PDN per size in each published state-dict layout,
an input batch and the teacher's PyTorch output into OUT_DIR, for the Go test
of the teacher layouts. Each layout's network is defined here from its own
description:

  reference: attributes conv1 ... conv4 (S) / conv6 (M), pooling functional;
  anomalib:  attributes conv1 ... conv4 / conv6 and avgpool1, avgpool2 modules;
  sequential: one nn.Sequential (convolutions, ReLUs and pools as modules),
              convolutions at indices 0, 3, 6, 8 (S) / 0, 3, 6, 8, 10, 12 (M).

The anomalib and sequential networks receive the reference network's
tensors, copied convolution by convolution, and are checked to compute the
same output.

usage: gen_teachers.py OUT_DIR
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

# (in, out, kernel) of each convolution; the teacher has 384 output channels.
SPECS = {
    "s": [(3, 128, 4), (128, 256, 4), (256, 256, 3), (256, 384, 4)],
    "m": [(3, 256, 4), (256, 512, 4), (512, 512, 1), (512, 512, 3), (512, 384, 4), (384, 384, 1)],
}


class ReferencePDN(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.n = len(SPECS[size])
        for i, (cin, cout, k) in enumerate(SPECS[size]):
            setattr(self, "conv%d" % (i + 1), nn.Conv2d(cin, cout, k))

    def convs(self):
        return [getattr(self, "conv%d" % (i + 1)) for i in range(self.n)]

    def forward(self, x):
        x = F.avg_pool2d(F.relu(self.conv1(x)), 2, 2)
        x = F.avg_pool2d(F.relu(self.conv2(x)), 2, 2)
        x = F.relu(self.conv3(x))
        if self.n == 4:
            return self.conv4(x)
        x = F.relu(self.conv4(x))
        return self.conv6(F.relu(self.conv5(x)))


class AnomalibPDN(ReferencePDN):
    def __init__(self, size):
        super().__init__(size)
        self.avgpool1 = nn.AvgPool2d(2, 2)
        self.avgpool2 = nn.AvgPool2d(2, 2)

    def forward(self, x):
        x = self.avgpool1(F.relu(self.conv1(x)))
        x = self.avgpool2(F.relu(self.conv2(x)))
        x = F.relu(self.conv3(x))
        if self.n == 4:
            return self.conv4(x)
        x = F.relu(self.conv4(x))
        return self.conv6(F.relu(self.conv5(x)))


def sequential_pdn(size):
    layers = []
    for i, (cin, cout, k) in enumerate(SPECS[size]):
        layers.append(nn.Conv2d(cin, cout, k))
        last = i == len(SPECS[size]) - 1
        if not last:
            layers.append(nn.ReLU(inplace=True))
        if i < 2:
            layers.append(nn.AvgPool2d(2, 2))
    return nn.Sequential(*layers)


def copy_convs(src, dst_convs):
    with torch.no_grad():
        for a, b in zip(src.convs(), dst_convs):
            b.weight.copy_(a.weight)
            b.bias.copy_(a.bias)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(11)
    index = {}
    for size in ("s", "m"):
        ref = ReferencePDN(size).eval()
        ana = AnomalibPDN(size).eval()
        seq = sequential_pdn(size).eval()
        copy_convs(ref, ana.convs())
        copy_convs(ref, [m for m in seq if isinstance(m, nn.Conv2d)])
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            y = ref(x)
            for other in (ana, seq):
                assert torch.equal(other(x), y), size
        keys = {}
        for name, net in (("reference", ref), ("anomalib", ana), ("sequential", seq)):
            torch.save(net.state_dict(), os.path.join(out, "teacher_%s_%s.pth" % (size, name)))
            keys[name] = list(net.state_dict().keys())
        torch.save(x, os.path.join(out, "teacher_%s_in.pt" % size))
        torch.save(y, os.path.join(out, "teacher_%s_out.pt" % size))
        index[size] = keys
    with open(os.path.join(out, "teachers.json"), "w") as f:
        json.dump(index, f)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Writes random PDN_S/PDN_M/AutoEncoder weights (torch.save state dicts), an
input batch and PyTorch's outputs into OUT_DIR, for the Go parity test.
The networks are defined here from the architecture (see package models).

usage: gen_outputs.py OUT_DIR
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class PDN(nn.Module):
    def __init__(self, size, out_ch, padding):
        super().__init__()
        p = 1 if padding else 0
        if size == "s":
            spec = [(3, 128, 4, 3), (128, 256, 4, 3), (256, 256, 3, 1), (256, out_ch, 4, 0)]
        else:
            spec = [(3, 256, 4, 3), (256, 512, 4, 3), (512, 512, 1, 0), (512, 512, 3, 1), (512, out_ch, 4, 0),
                    (out_ch, out_ch, 1, 0)]
        self.n, self.pool_pad = len(spec), p
        for i, (cin, cout, k, pad) in enumerate(spec):
            setattr(self, "conv%d" % (i + 1), nn.Conv2d(cin, cout, k, padding=pad * p))

    def forward(self, x):
        x = F.avg_pool2d(F.relu(self.conv1(x)), 2, 2, padding=self.pool_pad)
        x = F.avg_pool2d(F.relu(self.conv2(x)), 2, 2, padding=self.pool_pad)
        x = F.relu(self.conv3(x))
        if self.n == 4:
            return self.conv4(x)
        x = F.relu(self.conv4(x))
        x = F.relu(self.conv5(x))
        return self.conv6(x)


class AE(nn.Module):
    def __init__(self, out_ch, img, padding):
        super().__init__()
        self.encoder = nn.Module()
        chans = [3, 32, 32, 64, 64, 64]
        for i in range(5):
            setattr(self.encoder, "enconv%d" % (i + 1), nn.Conv2d(chans[i], chans[i + 1], 4, stride=2, padding=1))
        self.encoder.enconv6 = nn.Conv2d(64, 64, 8 if img >= 256 else img // 32)
        self.decoder = nn.Module()
        for i in range(1, 7):
            setattr(self.decoder, "deconv%d" % i, nn.Conv2d(64, 64, 4, padding=2))
        self.decoder.deconv7 = nn.Conv2d(64, 64, 3, padding=1)
        self.decoder.deconv8 = nn.Conv2d(64, out_ch, 3, padding=1)
        self.sizes = [img // 64 - 1, img // 32, img // 16 - 1, img // 8, img // 4 - 1, img // 2 - 1,
                      img // 4 if padding else img // 4 - 8]

    def forward(self, x):
        e = self.encoder
        for i in range(1, 6):
            x = F.relu(getattr(e, "enconv%d" % i)(x))
        x = e.enconv6(x)
        d = self.decoder
        for i in range(6):
            x = F.interpolate(x, size=self.sizes[i], mode="bilinear")
            x = F.relu(getattr(d, "deconv%d" % (i + 1))(x))
        x = F.interpolate(x, size=self.sizes[6], mode="bilinear")
        return d.deconv8(F.relu(d.deconv7(x)))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(7)
    cases = [
        ("pdn_s", PDN("s", 384, False), 2, 64),
        ("pdn_s_pad", PDN("s", 384, True), 1, 64),
        ("pdn_m", PDN("m", 768, False), 1, 64),
        ("pdn_m_pad", PDN("m", 384, True), 1, 48),
        ("ae_256", AE(384, 256, False), 1, 256),
        ("ae_128", AE(384, 128, False), 2, 128),
    ]
    index = {}
    for name, net, batch, size in cases:
        net.eval()
        x = torch.randn(batch, 3, size, size)
        with torch.no_grad():
            y = net(x)
        torch.save(net.state_dict(), os.path.join(out, name + ".pt"))
        torch.save(x, os.path.join(out, name + "_in.pt"))
        torch.save(y, os.path.join(out, name + "_out.pt"))
        index[name] = {"batch": batch, "size": size, "out_shape": list(y.shape)}
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f)


if __name__ == "__main__":
    main()

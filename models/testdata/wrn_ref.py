#!/usr/bin/python3
"""Writes a torchvision wide ResNet with seeded random weights (torch.save of
its state dict, in the legacy format of torchvision's model-zoo files), an
input batch and the EfficientAD feature extractor's output computed with
PyTorch into OUT_DIR, for the Go parity test of models.WRNExtractor.

usage: wrn_ref.py OUT_DIR BLOCKS IMG_SIZE
  BLOCKS: "wrn101" (torchvision.models.wide_resnet101_2) or four block
          counts such as "1,1,1,1" (torchvision's ResNet class with
          Bottleneck blocks and width_per_group=128).

Writes OUT_DIR/wrn.pth, x.pt, y.pt and keys.json ([name, shape] in state-dict
order).
"""
import json
import os
import sys

import torch
import torch.nn.functional as F
import torchvision
from torchvision.models.resnet import Bottleneck, ResNet


def features(net, x, out_channels=384):
    """Stem, layer1..layer3; layer3 resized to layer2's size, concatenated,
    each pixel's channels averaged down to out_channels."""
    h = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    f2 = net.layer2(net.layer1(h))
    f3 = net.layer3(f2)
    b, _, hh, ww = f2.shape
    f3 = F.interpolate(f3, size=(hh, ww), mode="bilinear", align_corners=False)
    f = torch.cat([f2, f3], dim=1)
    c = f.shape[1]
    f = f.reshape(b, c, hh * ww).transpose(1, 2)
    f = F.adaptive_avg_pool1d(f, out_channels).transpose(1, 2)
    return f.reshape(b, out_channels, hh, ww)


def main():
    out, blocks, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    if blocks == "wrn101":
        net = torchvision.models.wide_resnet101_2()
    else:
        net = ResNet(Bottleneck, [int(v) for v in blocks.split(",")], width_per_group=128)
    # Random batch-norm parameters and running statistics, so that evaluation
    # mode is exercised (torchvision initialises them to 1, 0, 0, 1).
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 0.2 - 0.1)
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 0.5 + 0.75)
                m.num_batches_tracked.fill_(7)
    net.eval()
    sd = net.state_dict()
    torch.save(sd, os.path.join(out, "wrn.pth"), _use_new_zipfile_serialization=False)
    with open(os.path.join(out, "keys.json"), "w") as f:
        json.dump([[k, list(v.shape)] for k, v in sd.items()], f)
    x = (torch.rand(2, 3, size, size, generator=g) - 0.45) / 0.225
    with torch.no_grad():
        y = features(net, x)
    torch.save(x, os.path.join(out, "x.pt"))
    torch.save(y, os.path.join(out, "y.pt"))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Times the reference's student/autoencoder training iteration with
PyTorch: the loop body of PUAD's train_student_and_autoencoder (data loading
through DataLoader with batch size 1 and shuffling, the reference's
transforms and RandomAugment, the ImageNet penalty, the three losses, Adam),
with the networks defined here from the architecture (EfficientAD-S).

usage: bench_step.py DATASET IMAGENET IMG_SIZE ITERATIONS

Prints {"it_per_s": ..., "seconds": ..., "iterations": ...} after one
untimed warm-up iteration.
"""
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms


class PDN_S(nn.Module):
    def __init__(self, out_ch):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 128, 4)
        self.conv2 = nn.Conv2d(128, 256, 4)
        self.conv3 = nn.Conv2d(256, 256, 3)
        self.conv4 = nn.Conv2d(256, out_ch, 4)

    def forward(self, x):
        x = F.avg_pool2d(F.relu(self.conv1(x)), 2, 2)
        x = F.avg_pool2d(F.relu(self.conv2(x)), 2, 2)
        x = F.relu(self.conv3(x))
        return self.conv4(x)


class AE(nn.Module):
    def __init__(self, out_ch, img):
        super().__init__()
        self.encoder = nn.Module()
        chans = [3, 32, 32, 64, 64, 64]
        for i in range(5):
            setattr(self.encoder, "enconv%d" % (i + 1), nn.Conv2d(chans[i], chans[i + 1], 4, stride=2, padding=1))
        self.encoder.enconv6 = nn.Conv2d(64, 64, 8 if img >= 256 else img // 32)
        self.decoder = nn.Module()
        for i in range(1, 7):
            setattr(self.decoder, "deconv%d" % i, nn.Conv2d(64, 64, 4, padding=2))
            setattr(self.decoder, "dropout%d" % i, nn.Dropout(p=0.2))
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
            x = getattr(d, "dropout%d" % i)(F.relu(getattr(d, "deconv%d" % i)(x)))
        x = F.interpolate(x, size=self.sizes[6], mode="bilinear")
        return d.deconv8(F.relu(d.deconv7(x)))


class RandomAugment:
    def __call__(self, img):
        i_aug = torch.randint(1, 4, (1,))
        lamda = torch.rand(1) * 0.4 + 0.8
        if i_aug == 1:
            return transforms.functional.adjust_brightness(img, lamda)
        elif i_aug == 2:
            return transforms.functional.adjust_contrast(img, lamda)
        return transforms.functional.adjust_saturation(img, lamda)


class Normal(Dataset):
    def __init__(self, d, transform):
        self.paths = [p for p in sorted(Path(d).iterdir()) if p.suffix == ".png"]
        self.transform = transform

    def __getitem__(self, i):
        return self.transform(Image.open(self.paths[i]).convert("RGB"))

    def __len__(self):
        return len(self.paths)


def main():
    dataset, imagenet, img_size, iterations = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.manual_seed(0)
    teacher, student, ae = PDN_S(384), PDN_S(768), AE(384, img_size)
    teacher.eval()
    student.train()
    ae.train()
    normalize = transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    base = transforms.Compose([transforms.Resize((img_size, img_size)), transforms.ToTensor()])
    augment = RandomAugment()

    def train_transform(img):
        return normalize(base(img)), normalize(augment(base(img)))

    train = Normal(os.path.join(dataset, "train", "good"), train_transform)
    loader = DataLoader(train, batch_size=1, shuffle=True)
    inet = torchvision.datasets.ImageFolder(imagenet, transform=transforms.Compose([
        transforms.Resize((512, 512)), transforms.RandomGrayscale(p=0.3), transforms.CenterCrop((img_size, img_size)),
        transforms.ToTensor(), normalize]))
    inet_loader = DataLoader(inet, batch_size=1, shuffle=True)
    with torch.no_grad():
        st = torch.stack([teacher(train[i][0]) for i in range(len(train))])
        tnorm = transforms.Normalize(st.mean(dim=(0, 2, 3)), st.std(dim=(0, 2, 3)))
    plist = nn.ParameterList()
    plist.extend(ae.parameters())
    plist.extend(student.parameters())
    opt = torch.optim.Adam(plist, lr=1e-4, weight_decay=1e-5)
    c = 384

    def iteration():
        img_train, img_aug = next(iter(loader))
        with torch.no_grad():
            t = tnorm(teacher(img_train))
        s = student(img_train)[:, :c]
        diff = (t - s) ** 2
        thr = torch.quantile(input=diff, q=0.999)
        loss_hard = torch.mean(diff[torch.where(diff >= thr)])
        img_net, _ = next(iter(inet_loader))
        loss_student = loss_hard + torch.mean(student(img_net)[:, :c] ** 2)
        ae_out = ae(img_aug)
        with torch.no_grad():
            ta = tnorm(teacher(img_aug))
        sa = student(img_aug)[:, c:]
        loss = loss_student + torch.mean((ta - ae_out) ** 2) + torch.mean((ae_out - sa) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    iteration()
    start = time.perf_counter()
    for _ in range(iterations):
        iteration()
    seconds = time.perf_counter() - start
    print(json.dumps({"it_per_s": iterations / seconds, "seconds": seconds, "iterations": iterations,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()

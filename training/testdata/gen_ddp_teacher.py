#!/usr/bin/python3
"""Data-parallel teacher distillation with PyTorch's DistributedDataParallel,
for the tests of package training: the reference's teacher loop
(ref_runs.py's teacher_run, on puad's random streams) run by two processes
with torch.distributed (Gloo, file:// rendezvous), each on its contiguous
share of every batch, the gradients averaged by DDP.

usage: gen_ddp_teacher.py CONFIG.json OUT_DIR

CONFIG holds "world_size", "seed", "iterations", "batch_size", "img_size",
"threads" (intra-op threads per process), "imagenet" (folder), "wrn" (the
extractor's weights, a wide ResNet with one block per layer), "mu" and
"sigma" (the feature statistics to normalise with, as puad saved them).

Writes OUT_DIR/run.json ("losses": per iteration, the mean over the ranks
of their losses, in float32 as puad logs it) and OUT_DIR/teacher.pt (the
weights after the run, a state dict), from rank 0.
"""
import json
import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from torchvision import transforms
from torchvision.models.resnet import Bottleneck, ResNet

from gen_fixtures import PDN, extract, init_from, teacher_inputs
from ref_runs import image_paths, sample_distinct, stream, uniform


def worker(rank, c, out):
    world = c["world_size"]
    torch.set_num_threads(c["threads"])
    dist.init_process_group("gloo", init_method="file://" + os.path.join(out, "rendezvous"), rank=rank, world_size=world)
    paths = image_paths(c["imagenet"])
    size, seed, batch_size = c["img_size"], c["seed"], c["batch_size"]
    net = ResNet(Bottleneck, [1, 1, 1, 1], width_per_group=128)
    net.load_state_dict(torch.load(c["wrn"]), strict=False)
    net.eval()
    mu, sigma = torch.load(c["mu"]), torch.load(c["sigma"])
    teacher = PDN(384, True)
    init_from(teacher, stream(seed, "init"))
    teacher.train()
    model = DistributedDataParallel(teacher)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-5)
    data = stream(seed, "data")
    lo, hi = rank * batch_size // world, (rank + 1) * batch_size // world
    losses = []
    for _ in range(c["iterations"]):
        batch = sample_distinct(data, len(paths), batch_size)
        gray = [bool(uniform(data) < 0.1) for _ in batch]
        xs = [teacher_inputs(paths[k], g, size) for k, g in zip(batch[lo:hi], gray[lo:hi])]
        x_fe, x_pdn = torch.stack([a for a, _ in xs]), torch.stack([b for _, b in xs])
        with torch.no_grad():
            target = transforms.Normalize(mu, sigma)(extract(net, x_fe))
        loss = nn.MSELoss()(target, model(x_pdn))
        opt.zero_grad()
        loss.backward()
        opt.step()
        total = loss.detach().clone()
        dist.all_reduce(total)
        losses.append([(total / world).item()])
    if rank == 0:
        torch.save(teacher.state_dict(), os.path.join(out, "teacher.pt"))
        with open(os.path.join(out, "run.json"), "w") as f:
            json.dump({"losses": losses}, f)
    dist.destroy_process_group()


def main():
    with open(sys.argv[1]) as f:
        c = json.load(f)
    mp.spawn(worker, args=(c, sys.argv[2]), nprocs=c["world_size"])


if __name__ == "__main__":
    main()

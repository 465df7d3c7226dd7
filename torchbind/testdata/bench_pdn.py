#!/usr/bin/python3
"""Times the PDN-S-shaped conv stack forward in PyTorch, for BenchmarkPDNSForward.

    /usr/bin/python3 bench_pdn.py --threads N --batch B --iters K [--warmup W] [--size S]

The stack is the one the Go benchmark runs: conv 3->128 k4, relu, avg_pool 2,
conv 128->256 k4, relu, avg_pool 2, conv 256->256 k3, relu, conv 256->384 k4,
with random weights, under torch.no_grad(), on a random B x 3 x S x S input.
It prints one line: "ms/iter <mean> min <fastest> cpu <process CPU time>",
milliseconds per forward. On a machine shared with other work the fastest
forward and the CPU time are the figures least disturbed by that work.
"""

import argparse
import time

import torch
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--iters", type=int, required=True)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--size", type=int, default=256)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    layers = [(3, 128, 4), (128, 256, 4), (256, 256, 3), (256, 384, 4)]
    ws = [torch.randn(co, ci, k, k, generator=g) * 0.05 for ci, co, k in layers]
    bs = [torch.randn(co, generator=g) * 0.05 for _, co, _ in layers]
    x = torch.randn(a.batch, 3, a.size, a.size, generator=g)

    def forward(x):
        h = F.avg_pool2d(F.relu(F.conv2d(x, ws[0], bs[0])), 2)
        h = F.avg_pool2d(F.relu(F.conv2d(h, ws[1], bs[1])), 2)
        h = F.relu(F.conv2d(h, ws[2], bs[2]))
        return F.conv2d(h, ws[3], bs[3])

    with torch.no_grad():
        for _ in range(a.warmup):
            forward(x)
        times = []
        cpu0 = time.process_time()
        for _ in range(a.iters):
            t0 = time.perf_counter()
            forward(x)
            times.append(time.perf_counter() - t0)
        cpu = time.process_time() - cpu0
    n = len(times)
    print("ms/iter %.3f min %.3f cpu %.3f" % (sum(times) * 1000 / n, min(times) * 1000, cpu * 1000 / n))


if __name__ == "__main__":
    main()

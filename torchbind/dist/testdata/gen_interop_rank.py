"""One rank of a process group shared with a Go rank (torchbind/dist tests).

Joins torch.distributed's default group through env:// (RANK, WORLD_SIZE,
MASTER_ADDR, MASTER_PORT, as torchrun sets them), runs the collectives that
interop_test.go runs, in the same order and with the same bucketing, and
prints the results as JSON on stdout.

The Go side reduces its tensors in buckets: all float32 tensors flattened
into one, then all float64 ones; this rank sends the same buckets.
"""
import datetime
import json
import sys

import torch
import torch.distributed as dist


def inputs(rank):
    a = torch.arange(12, dtype=torch.float32).reshape(3, 4) + 100 * rank
    c = torch.arange(6, dtype=torch.float64).reshape(2, 3) * 1000 + 0.25 * rank
    b = torch.arange(5, dtype=torch.float32) * 0.5 - rank
    inexact = (torch.arange(101, dtype=torch.float64) * 0.1 + 0.7 * rank).float()
    return a, c, b, inexact


def main():
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=float(sys.argv[1])))
    rank = dist.get_rank()
    a, c, b, inexact = inputs(rank)
    bucket32 = torch.cat([a.flatten(), b.flatten()])
    dist.all_reduce(bucket32)
    bucket64 = c.flatten().clone()
    dist.all_reduce(bucket64)
    dist.all_reduce(inexact)
    ints = torch.arange(4, dtype=torch.int64) + 10 * rank
    dist.broadcast(ints, src=1)
    from0 = torch.arange(3, dtype=torch.float64) + 10 * rank
    dist.broadcast(from0, src=0)
    dist.barrier()
    out = {
        "rank": rank,
        "world_size": dist.get_world_size(),
        "sum32": bucket32.tolist(),
        "sum64": bucket64.tolist(),
        "inexact": inexact.tolist(),
        "from1": ints.tolist(),
        "from0": from0.tolist(),
    }
    dist.destroy_process_group()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()

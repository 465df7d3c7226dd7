#!/usr/bin/python3
"""Writes the reference fixtures for the tests of package torchbind.

Run with Debian's python3-torch (the libtorch the shim links is the same
release), from anywhere:

    /usr/bin/python3 torchbind/testdata/gen_fixtures.py

It writes torchbind/testdata/fixtures.json and fixtures.bin. The binary file
holds every tensor (inputs and expected outputs) as raw little-endian values,
one after the other; the JSON file indexes them by name (dtype, shape, byte
offset) and lists the cases: an operation, the names of its input tensors, its
arguments and the names of its expected outputs. The Go tests feed the stored
inputs to the binding and compare with the stored outputs, so they need no
Python. Every input comes from a torch.Generator with a fixed seed, so rerunning
the script reproduces the files.

Groups and what they check (the tolerances live in the Go tests):
  elementwise  add/sub/mul/div with broadcasting, scalar variants (a Python
               float keeps the tensor's dtype), pow, sqrt, clamp, unary maps,
               comparisons, where, masked_select
  reduce       sum/mean/std/var over dims with keepdim and (un)biased, max/min,
               argmax, kthvalue, sort, quantile (linear) over all elements
               and along a dim
  shape        narrow, index_select, gather, cat, stack, expand, reshape,
               view, flatten, permute, transpose, contiguous, squeeze,
               unsqueeze
  nn           conv2d, relu, avg/max pooling, batch_norm (eval, and train with
               the updated running statistics), bilinear interpolation
               (align_corners=False, non-integer ratios), adaptive average
               pooling, mse_loss
  random       rand/randn/randint/randperm/bernoulli from
               torch.Generator().manual_seed(seed), dropout with a generator
  autograd     gradients of conv -> relu -> avg_pool -> mean
  adam         torch.optim.Adam steps (lr changed midway, weight decay) on
               elementwise parameters and on a small conv net
The quantile of a 2^24-element tensor (the largest torch.quantile accepts) is
stored as well; its input is a formula the Go test rebuilds.
"""

import json
import os

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.dirname(os.path.abspath(__file__))

DTYPES = {
    torch.float32: ("float32", "<f4"),
    torch.float64: ("float64", "<f8"),
    torch.int64: ("int64", "<i8"),
    torch.int32: ("int32", "<i4"),
    torch.uint8: ("uint8", "u1"),
    torch.bool: ("bool", "u1"),
}


class Fixtures:
    def __init__(self):
        self.blob = bytearray()
        self.tensors = {}
        self.cases = []

    def put(self, name, t):
        """Stores tensor t under name and returns the name."""
        assert name not in self.tensors, name
        t = t.detach().contiguous()
        dname, npt = DTYPES[t.dtype]
        data = t.numpy().astype(npt).tobytes()
        self.tensors[name] = {
            "dtype": dname,
            "shape": list(t.shape),
            "offset": len(self.blob),
            "nbytes": len(data),
        }
        self.blob += data
        while len(self.blob) % 8:
            self.blob.append(0)
        return name

    def case(self, group, name, op, inputs, outputs, **args):
        """Records a case: inputs and outputs are lists of (name, tensor)."""
        ins = [self.put(name + "/" + k, v) if v is not None else "" for k, v in inputs]
        outs = [self.put(name + "/" + k, v) for k, v in outputs]
        self.cases.append({"group": group, "name": name, "op": op, "in": ins, "out": outs, "args": args})

    def write(self, extra):
        with open(os.path.join(OUT, "fixtures.bin"), "wb") as f:
            f.write(self.blob)
        doc = {
            "torch_version": torch.__version__,
            "generator": "gen_fixtures.py",
            "tensors": self.tensors,
            "cases": self.cases,
        }
        doc.update(extra)
        with open(os.path.join(OUT, "fixtures.json"), "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")


def gen(seed):
    return torch.Generator().manual_seed(seed)


def randn(seed, *shape):
    return torch.randn(*shape, generator=gen(seed))


def elementwise(fx):
    x = randn(1, 2, 3, 4)
    pos = torch.rand(2, 3, 4, generator=gen(2)) + 0.1
    for name, op, y in [
        ("add_last", "add", randn(3, 4)),
        ("add_same", "add", randn(4, 2, 3, 4)),
        ("sub_col", "sub", randn(5, 3, 1)),
        ("mul_mid", "mul", randn(6, 2, 1, 4)),
        ("div_pos", "div", torch.rand(3, 4, generator=gen(7)) + 0.5),
        ("maximum", "maximum", randn(8, 3, 1)),
        ("minimum", "minimum", randn(9, 4)),
    ]:
        f = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
             "maximum": torch.maximum, "minimum": torch.minimum}[op]
        fx.case("elementwise", name, op, [("a", x), ("b", y)], [("out", f(x, y))])
    fx.case("elementwise", "pow_tensor", "pow", [("a", pos), ("b", randn(10, 3, 4))],
            [("out", torch.pow(pos, randn(10, 3, 4)))])

    # Python floats combined with a tensor keep the tensor's dtype (float32
    # stays float32); an int64 tensor with a float becomes float32.
    for name, op, s, f in [
        ("add_scalar", "add_scalar", 0.1, lambda t, s: t + s),
        ("sub_scalar", "sub_scalar", 0.3, lambda t, s: t - s),
        ("rsub_scalar", "rsub_scalar", 1.7, lambda t, s: s - t),
        ("mul_scalar", "mul_scalar", 0.7, lambda t, s: t * s),
        ("div_scalar", "div_scalar", 3.0, lambda t, s: t / s),
        ("pow_scalar", "pow_scalar", 1.5, lambda t, s: t ** s),
    ]:
        a = pos if op == "pow_scalar" else x
        out = f(a, s)
        assert out.dtype == torch.float32
        fx.case("elementwise", name, op, [("a", a)], [("out", out)], s=s)
    xd = randn(11, 5).double()
    fx.case("elementwise", "add_scalar_f64", "add_scalar", [("a", xd)], [("out", xd + 0.1)], s=0.1)
    xi = torch.arange(-3, 4)
    out = xi + 2.5
    assert out.dtype == torch.float32
    fx.case("elementwise", "add_scalar_int", "add_scalar", [("a", xi)], [("out", out)], s=2.5)
    fx.case("elementwise", "mul_scalar_int", "mul_scalar", [("a", xi)], [("out", xi * 0.5)], s=0.5)

    for name, f in [("sqrt", torch.sqrt), ("neg", torch.neg), ("abs", torch.abs), ("exp", torch.exp),
                    ("log", torch.log), ("relu", torch.relu), ("sigmoid", torch.sigmoid),
                    ("tanh", torch.tanh), ("floor", torch.floor), ("ceil", torch.ceil),
                    ("square", torch.square)]:
        a = pos if name in ("sqrt", "log") else x * 3
        fx.case("elementwise", name, name, [("a", a)], [("out", f(a))])

    for name, lo, hi in [("clamp_both", -0.5, 0.4), ("clamp_lo", -0.5, None), ("clamp_hi", None, 0.3)]:
        fx.case("elementwise", name, "clamp", [("a", x)], [("out", torch.clamp(x, lo, hi))],
                lo=lo if lo is not None else "-inf", hi=hi if hi is not None else "inf")

    # Comparisons on a half-integer grid, so that ties occur.
    g1 = torch.round(randn(12, 3, 5) * 2) / 2
    g2 = torch.round(randn(13, 5) * 2) / 2
    for op in ["gt", "ge", "lt", "le", "eq", "ne"]:
        fx.case("elementwise", op, op, [("a", g1), ("b", g2)], [("out", getattr(torch, op)(g1, g2))])
    for op in ["gt", "ge", "lt", "le", "eq"]:
        fx.case("elementwise", op + "_scalar", op + "_scalar", [("a", g1)],
                [("out", getattr(torch, op)(g1, 0.5))], s=0.5)

    cond = randn(14, 3, 4) > 0
    fx.case("elementwise", "where", "where", [("cond", cond), ("a", x), ("b", randn(15, 4))],
            [("out", torch.where(cond, x, randn(15, 4)))])
    mask = randn(16, 2, 3, 4) > 0.3
    fx.case("elementwise", "masked_select", "masked_select", [("a", x), ("mask", mask)],
            [("out", torch.masked_select(x, mask))])
    mask_b = randn(17, 4) > 0
    fx.case("elementwise", "masked_select_bcast", "masked_select", [("a", x), ("mask", mask_b)],
            [("out", torch.masked_select(x, mask_b))])


def reduce(fx):
    x = randn(20, 3, 4, 5) * 2 + 1
    for dims in [[], [1], [0, 2], [-1]]:
        for keep in [False, True]:
            tag = "all" if not dims else "d" + "_".join(str(d) for d in dims)
            tag += "_keep" if keep else ""

            def red(f):
                if dims:
                    return f(x, dim=dims, keepdim=keep)
                r = f(x)
                return r.reshape([1] * x.dim()) if keep else r

            fx.case("reduce", "sum_" + tag, "sum", [("a", x)], [("out", red(torch.sum))], dims=dims, keepdim=keep)
            fx.case("reduce", "mean_" + tag, "mean", [("a", x)], [("out", red(torch.mean))], dims=dims, keepdim=keep)
            fx.case("reduce", "max_" + tag, "max", [("a", x)], [("out", red(torch.amax))], dims=dims, keepdim=keep)
            fx.case("reduce", "min_" + tag, "min", [("a", x)], [("out", red(torch.amin))], dims=dims, keepdim=keep)
            for unb in [True, False]:
                u = "_unbiased" if unb else "_biased"
                for op in ["std", "var"]:
                    f = getattr(torch, op)
                    if dims:
                        out = f(x, dim=dims, unbiased=unb, keepdim=keep)
                    else:
                        out = f(x, unbiased=unb)
                        out = out.reshape([1] * x.dim()) if keep else out
                    fx.case("reduce", op + "_" + tag + u, op, [("a", x)], [("out", out)],
                            dims=dims, keepdim=keep, unbiased=unb)
    fx.case("reduce", "argmax_all", "argmax", [("a", x)], [("out", torch.argmax(x))], dim=None, keepdim=False)
    for d in [0, 2, -1]:
        for keep in [False, True]:
            fx.case("reduce", "argmax_d%d%s" % (d, "_keep" if keep else ""), "argmax", [("a", x)],
                    [("out", torch.argmax(x, dim=d, keepdim=keep))], dim=d, keepdim=keep)

    # Quantiles, linear interpolation (torch computes the rank in float32).
    v = torch.rand(1000, generator=gen(21)) * 4 - 1
    w = randn(22, 4097)
    for q in [0.0, 0.1, 0.5, 0.9, 0.995, 0.999, 1.0]:
        fx.case("reduce", "quantile_1000_q%g" % q, "quantile", [("a", v)], [("out", torch.quantile(v, q))], q=q)
        fx.case("reduce", "quantile_4097_q%g" % q, "quantile", [("a", w)], [("out", torch.quantile(w, q))], q=q)
    # Distinct values, so that the indices are unambiguous.
    k = randn(24, 4, 9)
    for kk, d, keep in [(3, 1, False), (1, 0, True), (9, -1, False)]:
        vals, idx = torch.kthvalue(k, kk, dim=d, keepdim=keep)
        fx.case("reduce", "kthvalue_k%d_d%d%s" % (kk, d, "_keep" if keep else ""), "kthvalue", [("a", k)],
                [("values", vals), ("indices", idx)], k=kk, dim=d, keepdim=keep)
    for d, desc in [(1, False), (0, True)]:
        vals, idx = torch.sort(k, dim=d, descending=desc)
        fx.case("reduce", "sort_d%d%s" % (d, "_desc" if desc else ""), "sort", [("a", k)],
                [("values", vals), ("indices", idx)], dim=d, descending=desc)
    m = randn(23, 7, 50)
    for d, keep in [(1, False), (0, True), (-1, True)]:
        fx.case("reduce", "quantile_dim%d%s" % (d, "_keep" if keep else ""), "quantile_dim", [("a", m)],
                [("out", torch.quantile(m, 0.9, dim=d, keepdim=keep))], q=0.9, dim=d, keepdim=keep)


def shape(fx):
    x = randn(30, 2, 3, 4)
    fx.case("shape", "narrow", "narrow", [("a", x)], [("out", x.narrow(2, 1, 2))], dim=2, start=1, length=2)
    idx = torch.tensor([2, 0, 2, 1])
    fx.case("shape", "index_select", "index_select", [("a", x), ("index", idx)],
            [("out", x.index_select(1, idx))], dim=1)
    y = randn(31, 2, 1, 4)
    fx.case("shape", "cat_1", "cat", [("a", x), ("b", y)], [("out", torch.cat([x, y], 1))], dim=1)
    z = randn(32, 2, 3, 4)
    fx.case("shape", "cat_neg", "cat", [("a", x), ("b", z)], [("out", torch.cat([x, z], -1))], dim=-1)
    fx.case("shape", "stack_0", "stack", [("a", x), ("b", z)], [("out", torch.stack([x, z], 0))], dim=0)
    fx.case("shape", "stack_3", "stack", [("a", x), ("b", z)], [("out", torch.stack([x, z], 3))], dim=3)
    fx.case("shape", "reshape", "reshape", [("a", x)], [("out", x.reshape(4, -1))], shape=[4, -1])
    fx.case("shape", "view", "view", [("a", x)], [("out", x.view(6, 4))], shape=[6, 4])
    fx.case("shape", "permute", "permute", [("a", x)], [("out", x.permute(2, 0, 1))], dims=[2, 0, 1])
    fx.case("shape", "transpose", "transpose", [("a", x)], [("out", x.transpose(0, 2))], d0=0, d1=2)
    fx.case("shape", "permute_contiguous", "permute_contiguous", [("a", x)],
            [("out", x.permute(1, 2, 0).contiguous())], dims=[1, 2, 0])
    gi = torch.randint(0, 3, (2, 5, 4), generator=gen(34))
    fx.case("shape", "gather", "gather", [("a", x), ("index", gi)], [("out", x.gather(1, gi))], dim=1)
    e = randn(35, 3, 1)
    fx.case("shape", "expand", "expand", [("a", e)], [("out", e.expand(2, 3, 4).contiguous())], shape=[2, -1, 4])
    fx.case("shape", "flatten", "flatten", [("a", x)], [("out", x.flatten())])
    s = randn(33, 1, 3, 1, 2)
    fx.case("shape", "squeeze", "squeeze", [("a", s)], [("out", s.squeeze())])
    fx.case("shape", "squeeze_dim", "squeeze_dim", [("a", s)], [("out", s.squeeze(2))], dim=2)
    fx.case("shape", "squeeze_dim_noop", "squeeze_dim", [("a", s)], [("out", s.squeeze(1))], dim=1)
    fx.case("shape", "unsqueeze", "unsqueeze", [("a", x)], [("out", x.unsqueeze(1))], dim=1)
    fx.case("shape", "unsqueeze_neg", "unsqueeze", [("a", x)], [("out", x.unsqueeze(-1))], dim=-1)


def nn(fx):
    x = randn(40, 2, 3, 9, 9)
    w = randn(41, 4, 3, 3, 3) * 0.3
    b = randn(42, 4)
    for name, bias, stride, pad, dil in [
        ("conv_s1_p0", True, [1, 1], [0, 0], [1, 1]),
        ("conv_s2_p1", True, [2, 2], [1, 1], [1, 1]),
        ("conv_nobias_s12_p21", False, [1, 2], [2, 1], [1, 1]),
        ("conv_dil2", True, [1, 1], [2, 2], [2, 2]),
    ]:
        out = F.conv2d(x, w, b if bias else None, stride=stride, padding=pad, dilation=dil)
        fx.case("nn", name, "conv2d", [("x", x), ("w", w), ("b", b if bias else None)], [("out", out)],
                stride=stride, padding=pad, dilation=dil, groups=1)
    x4 = randn(43, 1, 4, 7, 7)
    wg = randn(44, 6, 2, 3, 3) * 0.3
    bg = randn(45, 6)
    fx.case("nn", "conv_groups2", "conv2d", [("x", x4), ("w", wg), ("b", bg)],
            [("out", F.conv2d(x4, wg, bg, padding=1, groups=2))],
            stride=[1, 1], padding=[1, 1], dilation=[1, 1], groups=2)
    # PDN-like layer: 3 -> 16 channels, kernel 4, padding 3.
    xp = randn(46, 1, 3, 20, 20)
    wp = randn(47, 16, 3, 4, 4) * 0.2
    bp = randn(48, 16) * 0.1
    fx.case("nn", "conv_k4_p3", "conv2d", [("x", xp), ("w", wp), ("b", bp)],
            [("out", F.conv2d(xp, wp, bp, padding=3))], stride=[1, 1], padding=[3, 3], dilation=[1, 1], groups=1)

    fx.case("nn", "relu_4d", "relu", [("a", x)], [("out", F.relu(x))])

    p = randn(49, 2, 3, 9, 10)
    for name, k, s, pad, ceil, incl in [
        ("avgpool_k2", [2, 2], [2, 2], [0, 0], False, True),
        ("avgpool_k3_s2_p1_incl", [3, 3], [2, 2], [1, 1], False, True),
        ("avgpool_k3_s2_p1_excl", [3, 3], [2, 2], [1, 1], False, False),
        ("avgpool_k2_s1_p1_excl", [2, 2], [1, 1], [1, 1], False, False),
        ("avgpool_k2_ceil", [2, 2], [2, 2], [0, 0], True, True),
    ]:
        out = F.avg_pool2d(p, k, s, pad, ceil_mode=ceil, count_include_pad=incl)
        fx.case("nn", name, "avg_pool2d", [("x", p)], [("out", out)], kernel=k, stride=s, padding=pad,
                ceil_mode=ceil, count_include_pad=incl)
    for name, k, s, pad in [("maxpool_k2", [2, 2], [2, 2], [0, 0]), ("maxpool_k3_s2_p1", [3, 3], [2, 2], [1, 1])]:
        fx.case("nn", name, "max_pool2d", [("x", p)], [("out", F.max_pool2d(p, k, s, pad))],
                kernel=k, stride=s, padding=pad)

    xb = randn(50, 4, 3, 5, 5) * 2 + 0.5
    wb = torch.rand(3, generator=gen(51)) + 0.5
    bb = randn(52, 3)
    rm = randn(53, 3) * 0.1
    rv = torch.rand(3, generator=gen(54)) + 0.5
    fx.case("nn", "batchnorm_eval", "batch_norm", [("x", xb), ("w", wb), ("b", bb), ("rm", rm), ("rv", rv)],
            [("out", F.batch_norm(xb, rm.clone(), rv.clone(), wb, bb, False, 0.1, 1e-5))],
            training=False, momentum=0.1, eps=1e-5)
    rm2, rv2 = rm.clone(), rv.clone()
    out = F.batch_norm(xb, rm2, rv2, wb, bb, True, 0.1, 1e-5)
    fx.case("nn", "batchnorm_train", "batch_norm", [("x", xb), ("w", wb), ("b", bb), ("rm", rm), ("rv", rv)],
            [("out", out), ("rm_after", rm2), ("rv_after", rv2)], training=True, momentum=0.1, eps=1e-5)

    for name, shape, size in [
        ("bilinear_63to256", (1, 2, 63, 9), (256, 20)),
        ("bilinear_56to256", (1, 2, 9, 56), (15, 256)),
        ("bilinear_down", (2, 1, 64, 40), (17, 23)),
        ("bilinear_same", (1, 1, 6, 5), (6, 5)),
    ]:
        xi = randn(55 + len(name), *shape)
        out = F.interpolate(xi, size=size, mode="bilinear", align_corners=False)
        fx.case("nn", name, "upsample_bilinear", [("x", xi)], [("out", out)], size=list(size), align_corners=False)
    xi = randn(70, 1, 2, 5, 7)
    fx.case("nn", "bilinear_align", "upsample_bilinear", [("x", xi)],
            [("out", F.interpolate(xi, size=(11, 9), mode="bilinear", align_corners=True))],
            size=[11, 9], align_corners=True)

    for name, shape, size in [("adaptive1d_1536to384", (2, 3, 1536), 384), ("adaptive1d_10to3", (1, 2, 10), 3)]:
        xa = randn(71 + len(name), *shape)
        fx.case("nn", name, "adaptive_avg_pool1d", [("x", xa)], [("out", F.adaptive_avg_pool1d(xa, size))],
                size=size)
    for name, shape, size in [("adaptive2d_10x9to3x4", (1, 2, 10, 9), (3, 4)), ("adaptive2d_to1", (2, 3, 5, 6), (1, 1))]:
        xa = randn(80 + len(name), *shape)
        fx.case("nn", name, "adaptive_avg_pool2d", [("x", xa)], [("out", F.adaptive_avg_pool2d(xa, size))],
                size=list(size))

    a = randn(90, 2, 3, 4)
    t = randn(91, 2, 3, 4)
    for red, code in [("none", 0), ("mean", 1), ("sum", 2)]:
        fx.case("nn", "mse_" + red, "mse_loss", [("a", a), ("b", t)], [("out", F.mse_loss(a, t, reduction=red))],
                reduction=code)


def random(fx):
    fx.case("random", "rand", "rand", [], [("out", torch.rand(5, 7, generator=gen(0)))], seed=0, shape=[5, 7])
    fx.case("random", "rand_f64", "rand_f64", [], [("out", torch.rand(9, generator=gen(3), dtype=torch.float64))],
            seed=3, shape=[9])
    fx.case("random", "randn", "randn", [], [("out", torch.randn(4, 6, generator=gen(1)))], seed=1, shape=[4, 6])
    fx.case("random", "randn_odd", "randn", [], [("out", torch.randn(37, generator=gen(5)))], seed=5, shape=[37])
    fx.case("random", "randint", "randint", [], [("out", torch.randint(0, 10, (20,), generator=gen(2)))],
            seed=2, low=0, high=10, shape=[20])
    fx.case("random", "randint_neg", "randint", [], [("out", torch.randint(-5, 1000, (3, 7), generator=gen(9)))],
            seed=9, low=-5, high=1000, shape=[3, 7])
    for n, seed in [(50, 42), (1000, 42), (7, 0)]:
        fx.case("random", "randperm_%d_%d" % (n, seed), "randperm", [],
                [("out", torch.randperm(n, generator=gen(seed)))], seed=seed, n=n)
    # Two draws in a row from one generator: the state carries over.
    g = gen(11)
    first = torch.rand(10, generator=g)
    second = torch.randn(10, generator=g)
    third = torch.randperm(12, generator=g)
    fx.case("random", "sequence", "sequence", [], [("rand", first), ("randn", second), ("randperm", third)],
            seed=11)
    like = torch.zeros(6, 8)
    fx.case("random", "bernoulli", "bernoulli", [("like", like)],
            [("out", torch.empty_like(like).bernoulli_(0.3, generator=gen(12)))], seed=12, p=0.3)

    # Dropout: F.dropout on the CPU is a Bernoulli(1-p) mask divided by 1-p,
    # times x. Check that recipe against F.dropout on the default generator,
    # then store it drawn from a seeded generator, as the binding draws it.
    x = randn(60, 4, 50) + 2
    for p, seed in [(0.2, 7), (0.5, 8)]:
        torch.manual_seed(seed)
        ref = F.dropout(x, p, training=True)
        torch.manual_seed(seed)
        recipe = x * torch.empty_like(x).bernoulli_(1 - p).div_(1 - p)
        assert torch.equal(ref, recipe), "F.dropout is not the bernoulli recipe"
        noise = torch.empty_like(x).bernoulli_(1 - p, generator=gen(seed))
        out = x * noise.div_(1 - p)
        fx.case("random", "dropout_p%g" % p, "dropout", [("x", x)], [("out", out)], p=p, seed=seed, training=True)
    fx.case("random", "dropout_eval", "dropout", [("x", x)], [("out", F.dropout(x, 0.2, training=False))],
            p=0.2, seed=0, training=False)


def autograd(fx):
    x = randn(100, 2, 3, 8, 8).requires_grad_()
    w = (randn(101, 4, 3, 3, 3) * 0.3).requires_grad_()
    b = (randn(102, 4) * 0.1).requires_grad_()
    loss = F.avg_pool2d(F.relu(F.conv2d(x, w, b, padding=1)), 2).mean()
    loss.backward()
    fx.case("autograd", "conv_relu_avgpool_mean", "grad_conv", [("x", x), ("w", w), ("b", b)],
            [("loss", loss), ("grad_x", x.grad), ("grad_w", w.grad), ("grad_b", b.grad)], padding=1)


def adam(fx):
    # Elementwise: loss_t = sum(p1 * g1_t) + sum(p2 * g2_t) + sum(p3 * g3_t),
    # so the gradient of each step is exactly the stored g_t (plus weight
    # decay). g3 is tiny, so that eps and the weight decay term dominate p3's
    # update and a mistake in either shows.
    p1 = randn(110, 10)
    p2 = randn(111, 3, 4) * 0.5
    p3 = randn(112, 6)
    params = [p1.clone().requires_grad_(), p2.clone().requires_grad_(), p3.clone().requires_grad_()]
    opt = torch.optim.Adam(params, lr=1e-4, weight_decay=1e-5)
    steps, lrs = 6, [1e-4, 1e-4, 1e-4, 3e-4, 3e-4, 3e-4]
    ins = [("p1", p1), ("p2", p2), ("p3", p3)]
    outs = []
    for t in range(steps):
        for group in opt.param_groups:
            group["lr"] = lrs[t]
        gs = [randn(120 + t, 10) * (0.1 * (t + 1)), randn(130 + t, 3, 4) * 0.01, randn(135 + t, 6) * 1e-8]
        ins += [("g%d_%d" % (i + 1, t), g) for i, g in enumerate(gs)]
        opt.zero_grad()
        loss = sum((p * g).sum() for p, g in zip(params, gs))
        loss.backward()
        opt.step()
        # Snapshots: the parameters are updated in place by the next step.
        outs += [("p%d_%d" % (i + 1, t), p.detach().clone()) for i, p in enumerate(params)]
    fx.case("adam", "adam_elementwise", "adam_elementwise", ins, outs, steps=steps, lrs=lrs, weight_decay=1e-5)

    # A small conv net: conv(3->4, k3, p1) relu conv(4->2, k3), MSE to a target.
    w1 = randn(140, 4, 3, 3, 3) * 0.3
    b1 = randn(141, 4) * 0.1
    w2 = randn(142, 2, 4, 3, 3) * 0.3
    b2 = randn(143, 2) * 0.1
    params = [t.clone().requires_grad_() for t in (w1, b1, w2, b2)]
    opt = torch.optim.Adam(params, lr=1e-4, weight_decay=1e-5)
    ins = [("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2)]
    outs = []
    for t in range(steps):
        for group in opt.param_groups:
            group["lr"] = lrs[t]
        xb = randn(150 + t, 2, 3, 8, 8)
        yb = randn(160 + t, 2, 2, 6, 6)
        ins += [("x_%d" % t, xb), ("y_%d" % t, yb)]
        opt.zero_grad()
        h = F.relu(F.conv2d(xb, params[0], params[1], padding=1))
        loss = F.mse_loss(F.conv2d(h, params[2], params[3]), yb)
        loss.backward()
        opt.step()
        outs += [("loss_%d" % t, loss)]
        outs += [("%s_%d" % (n, t), p.detach().clone()) for n, p in zip(("w1", "b1", "w2", "b2"), params)]
    fx.case("adam", "adam_convnet", "adam_convnet", ins, outs, steps=steps, lrs=lrs, weight_decay=1e-5)


def quantile_2_24():
    """Quantiles of x[i] = ((i * 2654435761) mod 2^24) / 2^24, i < 2^24.

    The multiplier is odd, so the values are a permutation of k / 2^24, all
    exact in float32. This is the largest input torch.quantile accepts.
    """
    n = 1 << 24
    i = torch.arange(n, dtype=torch.int64)
    x = ((i * 2654435761) % n).to(torch.float32) / n
    qs = [0.999]
    return {"quantile_2_24": {"n": n, "mult": 2654435761, "q": qs,
                              "out": [float(torch.quantile(x, q)) for q in qs]}}


def main():
    torch.set_num_threads(1)
    fx = Fixtures()
    elementwise(fx)
    reduce(fx)
    shape(fx)
    nn(fx)
    random(fx)
    autograd(fx)
    adam(fx)
    fx.write(quantile_2_24())
    print("%d cases, %d tensors, %d bytes" % (len(fx.cases), len(fx.tensors), len(fx.blob)))


if __name__ == "__main__":
    main()

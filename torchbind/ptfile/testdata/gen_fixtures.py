"""Writes the PyTorch fixtures of the ptfile tests and their expected values.

Run from any directory with Debian's python3-torch (PyTorch 1.13):

    /usr/bin/python3 torchbind/ptfile/testdata/gen_fixtures.py

It writes *.pt files next to this script and expected.json, which describes
every saved value (see ptcommon.py). The outputs are committed so that the
Go tests need no Python. The legacy-format files name their storages after
memory addresses, so they differ from run to run; the zip files and
expected.json do not.
"""

import collections
import io
import json
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ptcommon import TinyNet, describe  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def tiny_state_dict():
    torch.manual_seed(0)
    net = TinyNet()
    with torch.no_grad():
        net.bn.running_mean.copy_(torch.randn(2))
        net.bn.running_var.copy_(torch.rand(2) + 0.5)
        net.bn.num_batches_tracked.fill_(7)
    return net.state_dict()


def fixtures():
    """Yields (file name, value, save keyword arguments, to a buffer?)."""
    legacy = {"_use_new_zipfile_serialization": False}
    sd = tiny_state_dict()
    yield "student.pt", sd, {}, False
    yield "student_legacy.pt", sd, legacy, False

    torch.manual_seed(1)
    t = torch.randn(2, 3)
    yield "tensor.pt", t, {}, False
    yield "tensor_legacy.pt", t, legacy, False
    yield "buffer.pt", t, {}, True

    yield "quantile.pt", {
        "q_a_student": torch.tensor(0.125),
        "q_b_student": torch.tensor(2.5),
        "q_a_autoencoder": torch.tensor(-0.75),
        "q_b_autoencoder": torch.tensor(3.0e-3),
    }, {}, False

    torch.manual_seed(2)
    yield "dtypes.pt", {
        "f32": torch.tensor([1.5, -0.0, float("inf"), float("nan"), 1e-45, 3.4e38], dtype=torch.float32),
        "f64": torch.randn(2, 2, dtype=torch.float64),
        "f16": torch.tensor([1.0, -2.5, 6e-8, 65504.0, float("-inf"), -0.0], dtype=torch.float16),
        "bf16": torch.tensor([1.0, -3.0, 1e-40, 3e38], dtype=torch.bfloat16),
        "i64": torch.tensor([0, -1, 2**62, -(2**63)], dtype=torch.int64),
        "i32": torch.tensor([-(2**31), 2**31 - 1], dtype=torch.int32),
        "i16": torch.tensor([-300, 300], dtype=torch.int16),
        "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 255], dtype=torch.uint8),
        "b": torch.tensor([[True, False], [False, True]]),
        "i64_0d": torch.tensor(42),
        "empty": torch.zeros(0, 3),
    }, {}, False

    yield "transposed.pt", torch.arange(12.0).reshape(3, 4).t(), {}, False

    a = torch.arange(12.0)
    shared = collections.OrderedDict(
        [("x", a[2:5]), ("y", a[6:].view(2, 3)), ("z", a[::3]), ("other", torch.ones(2))]
    )
    yield "shared.pt", shared, {}, False
    yield "shared_legacy.pt", shared, legacy, False

    torch.manual_seed(3)
    yield "parameter.pt", nn.Parameter(torch.randn(3)), {}, False
    yield "misc.pt", {
        "param": nn.Parameter(torch.randn(2), requires_grad=False),
        "list": [1, -2, 2**40, -(2**63), 2**70, 2.5, "text", None, True, False],
        "tuple": (1, "a"),
        "nested": {"t": torch.tensor([[1, 2]], dtype=torch.int32), "s": "x"},
    }, {}, False


def main():
    expected = []
    for name, value, kwargs, to_buffer in fixtures():
        path = os.path.join(HERE, name)
        if to_buffer:
            buf = io.BytesIO()
            torch.save(value, buf, **kwargs)
            with open(path, "wb") as f:
                f.write(buf.getvalue())
        else:
            torch.save(value, path, **kwargs)
        expected.append({"file": name, "value": describe(value, {})})
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump({"torch_version": torch.__version__, "fixtures": expected}, f)
        f.write("\n")


def cuda_location():
    """Writes quantile_cuda.pt: a quantile dict as a GPU run saves it (storage
    location "cuda:0"). Without a GPU the file is made by saving on the CPU
    and rewriting the location string in data.pkl, which is all that differs."""
    import zipfile
    buf = io.BytesIO()
    torch.save({"q_a_student": torch.tensor(0.25), "q_b_student": torch.tensor(2.5)}, buf)
    zin = zipfile.ZipFile(buf)
    with zipfile.ZipFile(os.path.join(HERE, "quantile_cuda.pt"), "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("data.pkl"):
                assert b"X\x03\x00\x00\x00cpu" in data
                data = data.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
            zout.writestr(item.filename.replace("archive/", "quantile_cuda/"), data)


if __name__ == "__main__":
    main()
    cuda_location()

"""Shared helpers of gen_fixtures.py and check_saved.py.

Values are described as JSON trees so that the Go tests can check every
element exactly:

  {"type": "tensor", "dtype": "float32", "shape": [...], "stride": [...],
   "offset": n, "requires_grad": b, "storage": "s0", "storage_numel": n,
   "values": [...]}      values in row-major order; floats as repr() strings
  {"type": "dict", "items": [[key, node], ...]}   in insertion order
  {"type": "list", "items": [node, ...]}          lists and tuples
  {"type": "int" | "float" | "str" | "bool", "value": v}  floats as repr()
  {"type": "none"}
"""

import collections
import math

import torch
from torch import nn


class TinyNet(nn.Module):
    """A small module with a convolution, a batch norm and a linear layer."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, kernel_size=3)
        self.bn = nn.BatchNorm2d(2)
        self.fc = nn.Linear(8, 3)


DTYPE_NAMES = {
    torch.float32: "float32",
    torch.float64: "float64",
    torch.float16: "float16",
    torch.bfloat16: "bfloat16",
    torch.int64: "int64",
    torch.int32: "int32",
    torch.int16: "int16",
    torch.int8: "int8",
    torch.uint8: "uint8",
    torch.bool: "bool",
}


def describe(value, groups):
    """Returns the JSON tree of value; groups maps storage pointers to labels."""
    if isinstance(value, torch.Tensor):
        ptr = value.storage().data_ptr()
        if ptr not in groups:
            groups[ptr] = "s%d" % len(groups)
        values = value.detach().contiguous().reshape(-1).tolist()
        if value.dtype.is_floating_point:
            values = [repr(float(v)) for v in values]
        return {
            "type": "tensor",
            "dtype": DTYPE_NAMES[value.dtype],
            "shape": list(value.shape),
            "stride": list(value.stride()),
            "offset": value.storage_offset(),
            "requires_grad": value.requires_grad,
            "storage": groups[ptr],
            "storage_numel": value.storage().size(),
            "values": values,
        }
    if isinstance(value, dict):
        return {"type": "dict", "items": [[k, describe(v, groups)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"type": "list", "items": [describe(v, groups) for v in value]}
    if value is None:
        return {"type": "none"}
    if isinstance(value, bool):
        return {"type": "bool", "value": value}
    if isinstance(value, int):
        return {"type": "int", "value": value}
    if isinstance(value, float):
        return {"type": "float", "value": repr(value)}
    if isinstance(value, str):
        return {"type": "str", "value": value}
    raise TypeError("cannot describe %r" % type(value))


def same_float(a, b):
    """Exact comparison that treats NaNs as equal and tells -0.0 from 0.0."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1, a) == math.copysign(1, b)


def compare(value, node, path, groups, layout=True):
    """Checks value against node; returns a list of differences."""
    errs = []
    kind = node["type"]
    if kind == "tensor":
        if not isinstance(value, torch.Tensor):
            return ["%s: got %s, want a tensor" % (path, type(value).__name__)]
        if DTYPE_NAMES.get(value.dtype) != node["dtype"]:
            errs.append("%s: dtype %s, want %s" % (path, value.dtype, node["dtype"]))
        if list(value.shape) != node["shape"]:
            errs.append("%s: shape %s, want %s" % (path, list(value.shape), node["shape"]))
        if layout and "stride" in node and list(value.stride()) != node["stride"]:
            errs.append("%s: stride %s, want %s" % (path, list(value.stride()), node["stride"]))
        if layout and "offset" in node and value.storage_offset() != node["offset"]:
            errs.append("%s: offset %d, want %d" % (path, value.storage_offset(), node["offset"]))
        if "requires_grad" in node and value.requires_grad != node["requires_grad"]:
            errs.append("%s: requires_grad %s, want %s" % (path, value.requires_grad, node["requires_grad"]))
        if "storage" in node:
            ptr = value.storage().data_ptr()
            label = node["storage"]
            if label in groups and groups[label] != ptr:
                errs.append("%s: does not share storage %s" % (path, label))
            if label not in groups and ptr in groups.values() and value.numel() > 0:
                errs.append("%s: shares a storage it should not" % path)
            groups.setdefault(label, ptr)
        if errs:
            return errs
        got = value.detach().contiguous().reshape(-1).tolist()
        want = node["values"]
        if value.dtype.is_floating_point:
            want = [float(v) for v in want]
            bad = [i for i, (a, b) in enumerate(zip(got, want)) if not same_float(a, b)]
        else:
            bad = [i for i, (a, b) in enumerate(zip(got, want)) if a != b]
        if len(got) != len(want) or bad:
            errs.append("%s: values differ (first at %s)" % (path, bad[:1]))
        return errs
    if kind == "dict":
        if not isinstance(value, dict):
            return ["%s: got %s, want a dict" % (path, type(value).__name__)]
        keys = [k for k, _ in node["items"]]
        if list(value.keys()) != keys:
            return ["%s: keys %s, want %s" % (path, list(value.keys()), keys)]
        for k, sub in node["items"]:
            errs += compare(value[k], sub, "%s[%r]" % (path, k), groups, layout)
        return errs
    if kind == "list":
        if not isinstance(value, (list, tuple)) or len(value) != len(node["items"]):
            return ["%s: got %r, want a list of %d" % (path, type(value).__name__, len(node["items"]))]
        for i, sub in enumerate(node["items"]):
            errs += compare(value[i], sub, "%s[%d]" % (path, i), groups, layout)
        return errs
    if kind == "none":
        return [] if value is None else ["%s: got %r, want None" % (path, value)]
    if kind == "float":
        ok = isinstance(value, float) and same_float(value, float(node["value"]))
        return [] if ok else ["%s: got %r, want %s" % (path, value, node["value"])]
    ok = type(value).__name__ == kind and value == node["value"]
    return [] if ok else ["%s: got %r, want %r" % (path, value, node["value"])]

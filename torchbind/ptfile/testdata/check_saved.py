"""Checks files written by ptfile.Save with PyTorch itself.

Usage: /usr/bin/python3 check_saved.py SPEC.json

SPEC.json holds {"files": [{"path": ..., "value": node, "module": "TinyNet"
or null}]}, with value trees as described in ptcommon.py. Every file is
loaded with torch.load and with torch.load(..., weights_only=True) and
compared with its tree; a file whose module is "TinyNet" is also loaded into
a TinyNet with load_state_dict(strict=True). Exits with status 0 when all
checks pass, 1 when one fails, and 77 when PyTorch is not installed.
"""

import json
import os
import sys

try:
    import torch
except ImportError as e:
    print("NO_TORCH: %s" % e)
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ptcommon import TinyNet, compare  # noqa: E402

MODULES = {"TinyNet": TinyNet}


def check(entry):
    errs = []
    path = entry["path"]
    for weights_only in (False, True):
        label = "%s (weights_only=%s)" % (os.path.basename(path), weights_only)
        try:
            value = torch.load(path, weights_only=weights_only)
        except Exception as e:  # report and go on with the other checks
            errs.append("%s: torch.load failed: %s" % (label, e))
            continue
        errs += compare(value, entry["value"], label, {})
        name = entry.get("module")
        if name:
            module = MODULES[name]()
            try:
                module.load_state_dict(value, strict=True)
            except Exception as e:
                errs.append("%s: load_state_dict failed: %s" % (label, e))
                continue
            for k, t in module.state_dict().items():
                if not torch.equal(t, value[k]):
                    errs.append("%s: %s differs after load_state_dict" % (label, k))
    return errs


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    errs = []
    for entry in spec["files"]:
        errs += check(entry)
    for e in errs:
        print(e)
    if errs:
        sys.exit(1)
    print("ok: %d files checked with torch %s" % (len(spec["files"]), torch.__version__))


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# gpu-check.sh: checks puad-go on a machine with an NVIDIA GPU.
#
#   LIBTORCH=/path/to/libtorch tools/gpu-check.sh
#
# LIBTORCH is a CUDA build of libtorch (the folder holding share/cmake/Torch,
# e.g. an unpacked libtorch-cxx11-abi zip, or a pip torch's
# $(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')).
# The script
#   1. builds the shim against it (build-cuda/, the CPU build/ is left alone),
#   2. runs the tests that need CUDA, failing instead of skipping when no GPU
#      is found (PUAD_REQUIRE_CUDA=1): CUDA float32 scores against the CPU's
#      (relative difference at most 1e-4, TF32 off), and bf16/fp16 image
#      AUROCs against CUDA float32 (within 0.01, Spearman of PUAD scores
#      at least 0.99), and float16 training (with its loss scale) against
#      float32 (losses within 1%, no step skipped),
#   3. prints images per second of EfficientAD-S and -M at batches of 1, 8
#      and 64 in fp32, bf16 and fp16.
set -euo pipefail

if [ -z "${LIBTORCH:-}" ]; then
  echo "gpu-check: set LIBTORCH to a CUDA build of libtorch" >&2
  exit 2
fi
cd "$(dirname "$0")/.."
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
BUILD=build-cuda

echo "== building the shim against $LIBTORCH into $BUILD"
make native LIBTORCH="$LIBTORCH" BUILD_DIR="$BUILD"

# cgo links build/libtorchbind.so: put the CUDA shim there for this run (it
# finds its libtorch through its run path) and put the CPU one back after.
mkdir -p build
if [ -f build/libtorchbind.so ]; then
  cp build/libtorchbind.so build/libtorchbind.so.cpu
  trap 'mv -f build/libtorchbind.so.cpu build/libtorchbind.so' EXIT
fi
cp "$BUILD/libtorchbind.so" build/libtorchbind.so
export PUAD_REQUIRE_CUDA=1

echo "== tests that need CUDA"
"$GO" test -count=1 -v -run 'CUDA' ./torchbind/ ./evaluate/ ./training/

echo "== throughput (images/s)"
"$GO" test -count=1 -run '^$' -bench 'CUDAThroughput' -benchtime 1x -v ./evaluate/ | grep -E 'images/s|^ok|FAIL'

#!/usr/bin/env bash
# The main demo: build the reference CNNs, classify a real photo, and
# benchmark sparsedge against onnxruntime (single thread, same process).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-build/models}
mkdir -p "$OUT"
sparsedge models build mobilenet-v1 -o "$OUT"
sparsedge models build efficientnet-lite0 -o "$OUT"
CAT=$(python3 -c "from sparsedge_export import assets; print(assets.skimage_image('chelsea.png'))")
sparsedge run "$OUT/efficientnet-lite0.onnx" --input "$CAT"
sparsedge bench "$OUT/mobilenet-v1.onnx" --vs onnxruntime --threads 1
sparsedge bench "$OUT/efficientnet-lite0.onnx" --vs onnxruntime --threads 1

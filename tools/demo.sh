#!/usr/bin/env bash
# The main demo: build the reference CNNs, classify a real photo,
# benchmark sparsedge against onnxruntime (single thread, same process),
# dense and 80% group-sparse; then generate text with SmolLM2 and benchmark
# its dense and 2:4 decoders.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-build/models}
mkdir -p "$OUT"
# The CLI through the interpreter, so the demo does not depend on where pip
# put the `sparsedge` script (or on a pyenv rehash).
sparsedge() { python3 -m sparsedge_export.cli "$@"; }
sparsedge models build mobilenet-v1 -o "$OUT"
sparsedge models build efficientnet-lite0 -o "$OUT"
CAT=$(python3 -c "from sparsedge_export import assets; print(assets.skimage_image('chelsea.png'))")
sparsedge run "$OUT/efficientnet-lite0.onnx" --input "$CAT"
sparsedge bench "$OUT/mobilenet-v1.onnx" --vs onnxruntime --threads 1
sparsedge bench "$OUT/efficientnet-lite0.onnx" --vs onnxruntime --threads 1
# The point of sparsedge: the same network pruned to 80% group sparsity (4x1
# blocks) runs faster than the dense one, while onnxruntime runs the same
# sparse file at dense speed.
sparsedge export "$OUT/mobilenet-v1.onnx" -o "$OUT/mobilenet-v1-sparse80.onnx" --sparsity 0.8 --pattern 4x1 --allocation uniform
sparsedge bench "$OUT/mobilenet-v1-sparse80.onnx" --vs onnxruntime --threads 1
# An LLM on the same core: SmolLM2-135M-Instruct (from the cached GGUF) as an
# ONNX decoder with KV cache, generating text with the C++ tokenizer, cache
# and sampler; then 2:4-pruned (magnitude, seconds to export) against the
# dense decoder and onnxruntime: prefill and decode tokens/s.
sparsedge models build smollm2 -o "$OUT/smollm2"
sparsedge generate "$OUT/smollm2" --prompt "The capital of France is" --max-new-tokens 16
sparsedge generate "$OUT/smollm2" --prompt "Write one sentence about the sea." --chat --max-new-tokens 40
GGUF=$(python3 -c "from sparsedge_export import assets; print(assets.smollm2_gguf())")
sparsedge export-llm "$GGUF" -o "$OUT/smollm2-2of4" --sparsity 2:4 --method magnitude
sparsedge bench-llm "$OUT/smollm2" "$OUT/smollm2-2of4" --prompt-tokens 128 --decode-tokens 16 --rounds 3 --no-memory

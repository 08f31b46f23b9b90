#!/usr/bin/env python3
"""Write whole-model checks for tests/cpp/test_models.cc into DIR.

For each model: the ONNX file, one seeded input and the output onnxruntime
computes for it (on this machine, normally x86), plus DIR/checks.txt listing
them. test_models (natively, or under qemu-aarch64 for the NEON kernels) runs
the same input through sde::Session and compares.

Models: MobileNet-v1 1.0/224 dense, the same pruned to 80% group sparsity
(4x1 blocks, no calibration: the check is numerical, not accuracy) and
EfficientNet-Lite0 with its real weights (from the asset cache).

Tensor files (.f32t): b"SDEF32T1", int64 rank, rank int64 dims, float32 data,
all little-endian.

    python tools/make_model_checks.py DIR [--models mobilenet-v1,...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

from sparsedge_export.models import build_model
from sparsedge_export.sparsify import export_sparse

MAGIC = b"SDEF32T1"
ALL_CHECKS = ("mobilenet-v1", "mobilenet-v1-sparse80", "efficientnet-lite0")


def write_f32t(path: Path, array: np.ndarray) -> None:
    array = np.ascontiguousarray(array, dtype="<f4")
    header = MAGIC + np.asarray([array.ndim, *array.shape], dtype="<i8").tobytes()
    path.write_bytes(header + array.tobytes())


def read_f32t(path: Path) -> np.ndarray:
    data = path.read_bytes()
    if data[:8] != MAGIC:
        raise ValueError(f"{path}: not an SDEF32T1 file")
    rank = int(np.frombuffer(data, "<i8", 1, 8)[0])
    shape = tuple(int(d) for d in np.frombuffer(data, "<i8", rank, 16))
    return np.frombuffer(data, "<f4", offset=16 + 8 * rank).reshape(shape)


def _image(seed: int, size: int = 224) -> np.ndarray:
    """Photo-like input: coarse colour blocks plus mild noise, about [-1, 1]."""
    rng = np.random.default_rng(seed)
    block = -(-size // 7)
    coarse = rng.uniform(-1, 1, (1, 3, 7, 7)).repeat(block, axis=2).repeat(block, axis=3)
    coarse = coarse[:, :, :size, :size]
    return (coarse + rng.normal(0, 0.1, coarse.shape)).astype(np.float32)


def _model_file(name: str, out_dir: Path) -> Path:
    if name == "mobilenet-v1":
        return build_model("mobilenet-v1", out_dir)
    if name == "mobilenet-v1-sparse80":
        dense = out_dir / "mobilenet-v1.onnx"
        if not dense.exists():
            build_model("mobilenet-v1", out_dir)
        sparse = out_dir / "mobilenet-v1-sparse80.onnx"
        export_sparse(dense, sparse, sparsity=0.8, pattern="4x1", allocation="uniform", progress=False)
        return sparse
    if name == "efficientnet-lite0":
        return build_model("efficientnet-lite0", out_dir)  # weights from the asset cache
    raise KeyError(f"unknown check {name!r}; known: {', '.join(ALL_CHECKS)}")


def make_checks(out_dir: Path | str, names=ALL_CHECKS, seed: int = 3) -> Path:
    """Write the models, inputs, onnxruntime outputs and checks.txt; returns checks.txt."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for index, name in enumerate(names):
        model_path = _model_file(name, out_dir)
        session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
        (inp,) = session.get_inputs()
        x = _image(seed + index)
        (y, *_) = session.run(None, {inp.name: x})
        write_f32t(out_dir / f"{name}.input.f32t", x)
        write_f32t(out_dir / f"{name}.expected.f32t", y)
        lines.append(f"{name} {model_path.name} {inp.name} {name}.input.f32t {name}.expected.f32t")
        print(f"[model checks] {name}: input {list(x.shape)} -> output {list(y.shape)}", file=sys.stderr)
    manifest = out_dir / "checks.txt"
    manifest.write_text("".join(line + "\n" for line in lines))
    return manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--models", default=",".join(ALL_CHECKS),
                        help=f"comma-separated subset of {', '.join(ALL_CHECKS)}")
    args = parser.parse_args(argv)
    names = [n for n in args.models.split(",") if n]
    print(make_checks(args.dir, names))
    return 0


if __name__ == "__main__":
    sys.exit(main())

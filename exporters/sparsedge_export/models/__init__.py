"""Model builders: each returns an ``onnx.ModelProto`` (IR 8, opset 13).

``build_model(name, out_dir, **opts)`` writes ``<out_dir>/<name>.onnx``
atomically; the CLI's ``sparsedge models build`` calls it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Callable

import onnx

from .efficientnet_lite0 import build_efficientnet_lite0
from .mobilenet_v1 import build_mobilenet_v1
from .preprocess import load_image_for

__all__ = ["MODEL_BUILDERS", "build_model", "build_efficientnet_lite0", "build_mobilenet_v1",
           "load_image_for", "save_model_atomic"]

MODEL_BUILDERS: dict[str, Callable[..., onnx.ModelProto]] = {
    "mobilenet-v1": build_mobilenet_v1,
    "efficientnet-lite0": build_efficientnet_lite0,
}


def _log(message: str) -> None:
    print(f"[sparsedge models] {message}", file=sys.stderr, flush=True)


def save_model_atomic(model: onnx.ModelProto, path: Path | str) -> Path:
    """Serialise ``model`` to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(model.SerializeToString())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def build_model(name: str, out_dir: Path | str, filename: str | None = None, **opts) -> Path:
    """Build model ``name`` (a key of MODEL_BUILDERS) and write ``<out_dir>/<name>.onnx``.

    ``opts`` go to the builder (e.g. ``width=0.25`` for mobilenet-v1,
    ``weights_path=...`` for efficientnet-lite0); options that are None are dropped,
    so a CLI can pass its defaults through. ``filename`` overrides the file name.
    """
    if name not in MODEL_BUILDERS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(MODEL_BUILDERS)}")
    opts = {key: value for key, value in opts.items() if value is not None}
    described = ", ".join(f"{k}={v}" for k, v in opts.items())
    _log(f"building {name}" + (f" ({described})" if described else ""))
    model = MODEL_BUILDERS[name](**opts)
    path = Path(out_dir) / (filename or f"{name}.onnx")
    _log(f"writing {path}")
    save_model_atomic(model, path)
    _log(f"{name}: {len(model.graph.node)} nodes, {path.stat().st_size / 1e6:.1f} MB -> {path}")
    return path

"""InferenceSession: the onnxruntime-style entry point to the native core."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from . import _core
from .errors import InvalidArgumentError, ModelFileNotFoundError

# ONNX type strings as onnxruntime's NodeArg.type reports them.
_ORT_TYPE = {
    "float32": "tensor(float)",
    "float64": "tensor(double)",
    "float16": "tensor(float16)",
    "int64": "tensor(int64)",
    "int32": "tensor(int32)",
    "int16": "tensor(int16)",
    "int8": "tensor(int8)",
    "uint8": "tensor(uint8)",
    "uint16": "tensor(uint16)",
    "uint32": "tensor(uint32)",
    "uint64": "tensor(uint64)",
    "bool": "tensor(bool)",
}


@dataclass(frozen=True)
class NodeArg:
    """A model input or output, like ``onnxruntime.NodeArg``."""

    name: str
    type: str
    shape: list[int | str | None] | None
    dtype: np.dtype

    def __repr__(self) -> str:
        return f"NodeArg(name={self.name!r}, type={self.type!r}, shape={self.shape!r})"


def _node_args(entries: list[tuple[str, str, list | None]]) -> list[NodeArg]:
    return [
        NodeArg(name, _ORT_TYPE.get(dtype, f"tensor({dtype})"), shape, np.dtype(dtype))
        for name, dtype, shape in entries
    ]


class InferenceSession:
    """Loads an ONNX model and runs it on the sparsedge core.

    Mirrors ``onnxruntime.InferenceSession``::

        session = sparsedge.InferenceSession("model.onnx", threads=1)
        (logits,) = session.run(None, {"input": x})

    ``path_or_bytes`` is a file path (external weights next to it are mapped,
    not copied) or the serialized model as bytes. ``threads`` sets the size of
    the session's thread pool (default 1). ``isa`` forces a kernel
    instruction set (``"scalar"``, ``"avx2"``...; default: the best this CPU
    has), for tests and for bisecting a wrong result to one kernel.
    """

    def __init__(
        self,
        path_or_bytes: str | os.PathLike | bytes,
        threads: int = 1,
        *,
        optimize: bool = True,
        isa: str | None = None,
    ):
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise InvalidArgumentError(f"threads must be a positive integer, got {threads!r}")
        if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
            model: Any = bytes(path_or_bytes)
        elif isinstance(path_or_bytes, (str, os.PathLike)):
            model = os.fspath(path_or_bytes)
            if not os.path.exists(model):
                raise ModelFileNotFoundError(f"model file not found: {model!r}")
            if os.path.isdir(model):
                raise InvalidArgumentError(f"{model!r} is a directory; pass the path of an .onnx file")
        else:
            raise InvalidArgumentError(
                f"expected a path or bytes, got {type(path_or_bytes).__name__}"
            )
        self._session = _core.Session(model, threads, optimize, isa or "")
        self._inputs = _node_args(self._session.inputs())
        self._outputs = _node_args(self._session.outputs())

    def get_inputs(self) -> list[NodeArg]:
        return list(self._inputs)

    def get_outputs(self) -> list[NodeArg]:
        return list(self._outputs)

    def get_modelmeta(self) -> dict[str, str]:
        """The model's metadata_props."""
        return dict(self._session.metadata())

    def get_nodes(self) -> list[dict]:
        """The executed nodes after optimisation, with the kernel each uses."""
        return list(self._session.nodes())

    def get_stats(self) -> dict[str, float]:
        """Counters the ops keep across runs, summed by key (e.g. the multiply-adds an
        attention op performed and skipped); empty when no op keeps any."""
        return dict(self._session.stats())

    def reset_stats(self) -> None:
        """Zeroes the counters reported by :meth:`get_stats`."""
        self._session.reset_stats()

    @property
    def threads(self) -> int:
        return self._session.threads()

    def run(
        self,
        output_names: Sequence[str] | None,
        input_feed: Mapping[str, Any],
        run_options: Any = None,
    ) -> list[np.ndarray]:
        """Runs the model; returns the requested outputs (all if None) as new arrays.

        Inputs are read, never modified.
        """
        if not isinstance(input_feed, Mapping):
            raise InvalidArgumentError("input_feed must be a dict of input name -> array")
        names = [] if output_names is None else list(output_names)
        return self._session.run(names, dict(input_feed))

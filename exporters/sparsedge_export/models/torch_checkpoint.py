"""Read a legacy (pre-zip) ``torch.save`` checkpoint without torch.

Layout of the legacy format: five pickles back to back (magic number,
protocol version, sys info, the object itself, the list of storage keys), then
for each storage key in that order an int64 element count and the raw
little-endian bytes. Tensors inside the object pickle refer to storages by
persistent id and are rebuilt with ``torch._utils._rebuild_tensor_v2``.

The unpickler below resolves only the handful of globals such a state dict
needs; anything else raises, so a hostile file cannot run code.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CheckpointError", "load_legacy_state_dict"]

_MAGIC = 0x1950A86A20F9469CFC6C
_PROTOCOL_VERSION = 1001

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class CheckpointError(ValueError):
    """The file is not a legacy torch checkpoint this reader understands."""


class _StorageType:
    def __init__(self, name: str):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _StorageRef:
    """A storage named in the object pickle; its bytes arrive after the pickles."""

    def __init__(self, key: str, dtype: np.dtype, numel: int):
        self.key, self.dtype, self.numel = key, dtype, numel
        self.data: np.ndarray | None = None


class _TensorRef:
    def __init__(self, storage: _StorageRef, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def materialize(self) -> np.ndarray:
        base = self.storage.data
        assert base is not None
        if not self.size:
            return base[self.offset: self.offset + 1].reshape(()).copy()
        itemsize = base.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            base[self.offset:], shape=self.size, strides=[s * itemsize for s in self.stride])
        return np.ascontiguousarray(view).copy()


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, storages: dict[str, _StorageRef]):
        super().__init__(file)
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise CheckpointError(f"refusing to load global {module}.{name} from the checkpoint")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise CheckpointError(f"unsupported persistent id {pid!r}")
        _, storage_type, key, _location, numel, view_metadata = pid
        if view_metadata is not None:
            raise CheckpointError("storage views (pre-1.0 checkpoints) are not supported")
        if key not in self._storages:
            self._storages[key] = _StorageRef(key, storage_type.dtype, int(numel))
        return self._storages[key]


def load_legacy_state_dict(path: Path | str) -> dict[str, np.ndarray]:
    """Return ``{name: numpy array}`` for a legacy torch.save'd state dict."""
    raw = Path(path).read_bytes()
    stream = io.BytesIO(raw)
    storages: dict[str, _StorageRef] = {}
    try:
        if pickle.load(stream) != _MAGIC:  # plain ints only: safe to load unrestricted
            raise CheckpointError(f"{path}: not a legacy torch checkpoint (bad magic number; "
                                  "zip-format checkpoints are not handled here)")
        if pickle.load(stream) != _PROTOCOL_VERSION:
            raise CheckpointError(f"{path}: unsupported torch protocol version")
        _RestrictedUnpickler(stream, storages).load()  # sys_info: a dict of plain values
        obj = _RestrictedUnpickler(stream, storages).load()
        keys = _RestrictedUnpickler(stream, storages).load()
    except (pickle.UnpicklingError, EOFError) as exc:
        raise CheckpointError(f"{path}: corrupt checkpoint ({exc})") from exc
    for key in keys:
        ref = storages[key]
        (numel,) = struct.unpack("<q", stream.read(8))
        if numel != ref.numel:
            raise CheckpointError(f"{path}: storage {key} has {numel} elements, expected {ref.numel}")
        nbytes = numel * ref.dtype.itemsize
        chunk = stream.read(nbytes)
        if len(chunk) != nbytes:
            raise CheckpointError(f"{path}: truncated storage {key}")
        ref.data = np.frombuffer(chunk, dtype=ref.dtype.newbyteorder("<")).astype(ref.dtype)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a state dict, found {type(obj).__name__}")
    return {name: (value.materialize() if isinstance(value, _TensorRef) else np.asarray(value))
            for name, value in obj.items()}

"""Exceptions raised by sparsedge.

Each mirrors one status code of the C++ core (``cpp/src/core/error.h``) and of
the C API (``sde_status`` in ``cpp/include/sparsedge.h``). They also derive
from the closest built-in exception, so ``except ValueError`` keeps working.
"""


class SparsedgeError(Exception):
    """Base class of every sparsedge error."""


class InvalidArgumentError(SparsedgeError, ValueError):
    """A call got a wrong input name, shape, dtype or option value."""


class InvalidModelError(SparsedgeError, ValueError):
    """The model file is malformed, truncated or inconsistent."""


class UnsupportedError(SparsedgeError, NotImplementedError):
    """The model is valid ONNX but uses an operator, type or attribute sparsedge lacks."""


class ModelFileNotFoundError(SparsedgeError, FileNotFoundError):
    """The model file, or one of its external-data files, does not exist."""


class OutOfMemoryError(SparsedgeError, MemoryError):
    """An allocation failed."""


__all__ = [
    "SparsedgeError",
    "InvalidArgumentError",
    "InvalidModelError",
    "UnsupportedError",
    "ModelFileNotFoundError",
    "OutOfMemoryError",
]

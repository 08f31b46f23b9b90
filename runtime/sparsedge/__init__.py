"""sparsedge: a runtime for sparse neural networks on phones and in browsers.

The public API is small: :class:`InferenceSession` (mirrors onnxruntime's),
:class:`Generator` (streaming text generation), :class:`Tokenizer` and
:class:`Sampler` (text generation without Python deps),
the exception classes in :mod:`sparsedge.errors`, and :func:`get_isa`.
"""

from .errors import (
    InvalidArgumentError,
    InvalidModelError,
    ModelFileNotFoundError,
    OutOfMemoryError,
    SparsedgeError,
    UnsupportedError,
)
from .generator import GenerationStats, Generator
from .session import InferenceSession, NodeArg
from .sampling import Sampler, sample
from .tokenizer import Tokenizer
from . import _core

__version__ = _core.__version__


def get_isa() -> str:
    """The kernel instruction set chosen at start-up (``SPARSEDGE_ISA`` can lower it)."""
    return _core.isa()


def get_available_isas() -> list[str]:
    """Instruction sets this build can use on this CPU (for ``InferenceSession(isa=...)``)."""
    return list(_core.supported_isas())


def get_operators() -> list[str]:
    """The ONNX operators the runtime executes."""
    return sorted(_core.operators())


__all__ = [
    "InferenceSession",
    "NodeArg",
    "Tokenizer",
    "Generator",
    "GenerationStats",
    "Sampler",
    "sample",
    "SparsedgeError",
    "InvalidArgumentError",
    "InvalidModelError",
    "UnsupportedError",
    "ModelFileNotFoundError",
    "OutOfMemoryError",
    "get_isa",
    "get_available_isas",
    "get_operators",
    "__version__",
]

"""Sampler: picks the next token from logits in the native core.

Greedy, temperature, top-k and top-p (nucleus) sampling with a seeded
generator whose draws are identical on every platform, so a seed reproduces
a generation in Python, the C API and WebAssembly alike.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from . import _core


class Sampler:
    """Draws token ids from logits::

        sampler = sparsedge.Sampler(temperature=0.7, top_k=50, top_p=0.9, seed=1)
        next_id = sampler.sample(logits[-1])

    ``temperature=0`` is greedy (argmax, lowest id on ties); ``top_k=0`` and
    ``top_p=1`` disable those filters. Top-k is applied first, then top-p keeps
    the smallest most-likely set whose probability reaches ``top_p``. Raises
    :class:`InvalidArgumentError` for temperature < 0 or not finite, top_k < 0,
    top_p outside (0, 1], and for NaN or all ``-inf`` logits.
    """

    def __init__(self, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int = 0) -> None:
        self.temperature = float(temperature)
        self.top_k = int(top_k)
        self.top_p = float(top_p)
        self.seed = int(seed)
        self._sampler = _core.Sampler(self.temperature, self.top_k, self.top_p, self.seed & (2**64 - 1))

    def sample(self, logits: ArrayLike) -> int:
        """One token id from a 1-D array of logits (converted to float32)."""
        return self._sampler.sample(np.asarray(logits, dtype=np.float32))

    def __repr__(self) -> str:
        return (f"Sampler(temperature={self.temperature}, top_k={self.top_k}, "
                f"top_p={self.top_p}, seed={self.seed})")


def sample(logits: ArrayLike, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int = 0) -> int:
    """One draw from a fresh :class:`Sampler` (for a sequence, keep a Sampler instead)."""
    return Sampler(temperature, top_k, top_p, seed).sample(logits)

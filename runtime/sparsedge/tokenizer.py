"""Tokenizer: the native byte-level BPE tokenizer (no Python dependencies).

Reads the ``tokenizer.json`` that ``sparsedge models build`` writes and
encodes exactly as PyPI ``tokenizers`` does with the same file.
"""

from __future__ import annotations

import os
from typing import Sequence

from . import _core
from .errors import ModelFileNotFoundError


class Tokenizer:
    """Byte-level BPE tokenizer (GPT-2 family, SmolLM2) from a ``tokenizer.json``::

        tok = sparsedge.Tokenizer("smollm2/tokenizer.json")
        ids = tok.encode("<|im_start|>user\\nHello<|im_end|>")
        text = tok.decode(ids, skip_special_tokens=True)

    Special tokens in the text are matched whole (longest first) and never
    split. Raises :class:`ModelFileNotFoundError` for a missing file,
    :class:`InvalidModelError` for a malformed one and
    :class:`UnsupportedError` for a tokenizer type the runtime lacks.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        path = os.fspath(path)
        if not os.path.exists(path):
            raise ModelFileNotFoundError(f"tokenizer file not found: {path}")
        self._tok = _core.Tokenizer(path)

    @property
    def vocab_size(self) -> int:
        """Number of token ids, added (special) tokens included."""
        return self._tok.vocab_size()

    def encode(self, text: str | bytes) -> list[int]:
        """Token ids of ``text`` (no special tokens are added).

        ``bytes`` need not be valid UTF-8: invalid bytes are encoded as bytes
        and ``decode_bytes`` gives them back.
        """
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        return self._tok.encode(data)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """Text of ``ids``; bytes that are not valid UTF-8 become U+FFFD.

        Raises :class:`InvalidArgumentError` for an id outside the vocabulary.
        """
        return self._tok.decode(list(ids), skip_special_tokens)

    def decode_bytes(self, ids: Sequence[int], skip_special_tokens: bool = False) -> bytes:
        """Raw bytes of ``ids`` (may end inside a UTF-8 character: useful when streaming)."""
        return self._tok.decode_bytes(list(ids), skip_special_tokens)

    def token_to_id(self, token: str) -> int | None:
        """Id of a vocabulary entry (in its byte-level spelling, e.g. ``"Ġthe"``), or None."""
        i = self._tok.token_to_id(token)
        return None if i < 0 else i

    def is_special(self, token_id: int) -> bool:
        """Whether ``token_id`` is a special token (skipped by ``skip_special_tokens``)."""
        return self._tok.is_special(token_id)

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size})"

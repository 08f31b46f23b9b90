"""Generator: streaming text generation with an LLM decoder directory, in the native core."""

from __future__ import annotations

import codecs
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from . import _core
from .errors import InvalidArgumentError, ModelFileNotFoundError
from .sampling import Sampler


@dataclass(frozen=True)
class GenerationStats:
    """What the last :meth:`Generator.generate` call did (filled when it ends)."""

    prompt_tokens: int
    new_tokens: int
    stopped_by: str  # "stop_token", "max_new_tokens", "context_full" or "caller"


class Generator:
    """Generates text with a decoder directory (``sparsedge models build smollm2`` or
    ``sparsedge export-llm`` output: model.onnx, tokenizer.json, generation_config.json)::

        gen = sparsedge.Generator("smollm2")
        for piece in gen.generate("The capital of France is", max_new_tokens=16):
            print(piece, end="", flush=True)

    The KV cache (``max_context`` positions, default min(model context, 2048)) is
    allocated once; prompts run in chunks of ``prefill_chunk`` tokens, then one
    token per step. Tokenizer, sampler and the loop all run in C++ (the same code
    the C API and WebAssembly use), so a seed reproduces a generation everywhere.
    """

    def __init__(self, model_dir: str | os.PathLike, threads: int = 1, *, max_context: int | None = None,
                 prefill_chunk: int = 256, isa: str | None = None) -> None:
        model_dir = os.fspath(model_dir)
        if not os.path.isdir(model_dir):
            raise ModelFileNotFoundError(f"model directory not found: {model_dir!r}")
        for name, value, low in (("threads", threads, 1), ("prefill_chunk", prefill_chunk, 1),
                                 ("max_context", 1 if max_context is None else max_context, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}")
        self.model_dir = Path(model_dir)
        self._gen = _core.Generator(model_dir, threads, isa or "", max_context or 0, prefill_chunk)
        self._info = self._gen.info()
        self.last_stats: GenerationStats | None = None

    @property
    def max_context(self) -> int:
        return int(self._info["max_context"])

    @property
    def stop_ids(self) -> list[int]:
        return list(self._info["stop_ids"])

    def memory(self) -> dict[str, int]:
        """Bytes held by the KV cache and by the activation arena (planned once)."""
        return {"kv_cache_bytes": int(self._info["kv_cache_bytes"]), "arena_bytes": int(self._info["arena_bytes"])}

    # Low-level use: drive the KV cache directly (scoring, benchmarks, custom loops).
    @property
    def position(self) -> int:
        """Tokens held in the KV cache."""
        return self._gen.position()

    def reset(self) -> None:
        """Empties the KV cache."""
        self._gen.reset()

    def truncate(self, count: int) -> None:
        """Keeps the first ``count`` cached positions (e.g. to decode again after one prefill)."""
        self._gen.truncate(count)

    def feed(self, ids: Sequence[int]) -> None:
        """Runs ``ids`` after the cached tokens (in prefill chunks); the cache grows by ``len(ids)``."""
        self._gen.feed([int(i) for i in ids])

    def logits(self):
        """Logits (float32 [vocab]) after the last fed token."""
        return self._gen.logits()

    def stats(self) -> dict[str, float]:
        """The session's counters (plans placed/reused, op counters such as attention sparsity)."""
        return dict(self._gen.stats())

    def encode(self, prompt: str, chat: bool = False) -> list[int]:
        """Prompt ids; ``chat`` applies the model's (ChatML) chat template for one user turn."""
        return self._gen.encode_prompt(prompt, chat)

    def generate_ids(self, prompt: str | Sequence[int], max_new_tokens: int | None = None, *,
                     temperature: float | None = None, top_k: int = 0, top_p: float | None = None,
                     seed: int = 0, chat: bool = False, stop_ids: Sequence[int] | None = None) -> Iterator[int]:
        """Yields new token ids; the prompt is text (encoded) or a list of ids.

        Sampling defaults to greedy (``temperature=0``). Stops at a stop token (from
        generation_config.json unless ``stop_ids`` is given; not yielded), after
        ``max_new_tokens`` (default: the config's), or when the cache is full.
        """
        ids = self.encode(prompt, chat) if isinstance(prompt, str) else [int(i) for i in prompt]
        if not ids:
            raise InvalidArgumentError("the prompt is empty: give at least one token")
        if len(ids) > self.max_context:
            raise InvalidArgumentError(f"the prompt has {len(ids)} tokens but the context holds {self.max_context} "
                                       "(pass a larger max_context, up to the model's context length, or shorten it)")
        if max_new_tokens is None:
            max_new_tokens = int(self._info["max_new_tokens"])
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise InvalidArgumentError(f"max_new_tokens must be a non-negative integer, got {max_new_tokens!r}")
        sampler = Sampler(0.0 if temperature is None else temperature, top_k, 1.0 if top_p is None else top_p, seed)
        stops = set(self.stop_ids if stop_ids is None else (int(s) for s in stop_ids))
        self._gen.reset()
        self._gen.feed(ids)
        produced, reason = 0, "max_new_tokens"
        try:
            while produced < max_new_tokens:
                token = self._gen.sample(sampler._sampler)
                if token in stops:
                    reason = "stop_token"
                    break
                produced += 1
                yield token
                if produced == max_new_tokens:
                    break
                if self._gen.position() >= self.max_context:
                    reason = "context_full"
                    break
                self._gen.feed([token])
        except GeneratorExit:
            reason = "caller"
            raise
        finally:
            self.last_stats = GenerationStats(len(ids), produced, reason)

    def generate(self, prompt: str | Sequence[int], max_new_tokens: int | None = None, **kwargs) -> Iterator[str]:
        """Like :meth:`generate_ids`, but yields text pieces as soon as they are whole UTF-8.

        Special tokens are skipped. ``"".join(pieces)`` is the decoded continuation.
        """
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        for token in self.generate_ids(prompt, max_new_tokens, **kwargs):
            piece = decoder.decode(self._gen.token_bytes(token))
            if piece:
                yield piece
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

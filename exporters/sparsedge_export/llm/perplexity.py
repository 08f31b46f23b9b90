"""Perplexity of a decoder directory (model.onnx + tokenizer.json) on a text (``sparsedge perplexity``).

The text is tokenised with the directory's ``tokenizer.json`` and cut into non-overlapping
windows of ``context`` tokens; each window runs as one prompt (empty KV cache) and scores
tokens 2..n of the window from the logits before them (the first token of a window is
context only). Perplexity = exp(mean negative log-likelihood over all scored tokens).

Runtimes: ``onnxruntime`` (default; runs the ai.sparsedge ops through their function
bodies) or ``sparsedge`` (``sparsedge.InferenceSession`` with the same feeds; works once the
native runtime implements the LLM ops).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from .errors import LlmExportError

__all__ = ["perplexity", "window_nll", "RUNTIMES"]

RUNTIMES = ("onnxruntime", "sparsedge")


def _log(message: str) -> None:
    print(f"[sparsedge perplexity] {message}", file=sys.stderr, flush=True)


def _session(model: Path, runtime: str, threads: int | None):
    if runtime == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    if runtime == "sparsedge":
        import sparsedge

        return sparsedge.InferenceSession(str(model), threads=threads or 1)
    raise LlmExportError(f"unknown runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")


def window_nll(logits: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Negative log-likelihood of ids[1:] given logits[:-1] ([T, vocab], [T]) -> [T-1], in float64."""
    x = logits[:-1].astype(np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    log_z = np.log(np.exp(x).sum(axis=-1))
    return log_z - x[np.arange(len(ids) - 1), ids[1:]]


def perplexity(model_dir: Path | str, text: str, context: int = 512, max_tokens: int | None = None,
               runtime: str = "onnxruntime", threads: int | None = None, progress: bool = True) -> float:
    from tokenizers import Tokenizer

    model_dir = Path(model_dir)
    model, tok_file = model_dir / "model.onnx", model_dir / "tokenizer.json"
    for path in (model, tok_file):
        if not path.is_file():
            raise LlmExportError(f"{path} not found: expected a directory written by `sparsedge export-llm` "
                                 "or `sparsedge models build smollm2`")
    if context < 2:
        raise LlmExportError(f"--context must be at least 2, got {context}")
    if not text.strip():
        raise LlmExportError("the evaluation text is empty")
    ids = np.asarray(Tokenizer.from_file(str(tok_file)).encode(text).ids, np.int64)
    if max_tokens is not None:
        ids = ids[:max_tokens]
    windows = [ids[i:i + context] for i in range(0, len(ids), context)]
    windows = [w for w in windows if len(w) >= 2]
    if not windows:
        raise LlmExportError("the evaluation text has fewer than 2 tokens")
    session = _session(model, runtime, threads)
    inputs = [arg.name for arg in session.get_inputs()]
    kv_shape = _kv_shape(model)
    empty = np.zeros((1, 0, *kv_shape), np.float32)
    total, count, began = 0.0, 0, time.perf_counter()
    for n, window in enumerate(windows, 1):
        feeds = {"input_ids": window[None], "position_ids": np.arange(len(window), dtype=np.int64)[None]}
        feeds.update({name: empty for name in inputs if name.startswith("past_")})
        logits = session.run(["logits"], feeds)[0][0]
        nll = window_nll(logits, window)
        total += float(nll.sum())
        count += nll.size
        if progress:
            _log(f"window {n}/{len(windows)}: {count} tokens scored, running perplexity "
                 f"{math.exp(total / count):.3f} [{time.perf_counter() - began:.0f} s]")
    return math.exp(total / count)


def _kv_shape(model: Path) -> tuple[int, int]:
    import onnx

    from .. import format as fmt

    meta = {p.key: p.value for p in onnx.load(str(model), load_external_data=False).metadata_props}
    if fmt.META_LLM not in meta:
        raise LlmExportError(f"{model} has no {fmt.META_LLM} metadata: not a sparsedge decoder")
    config = json.loads(meta[fmt.META_LLM])
    return int(config["kv_heads"]), int(config["head_dim"])

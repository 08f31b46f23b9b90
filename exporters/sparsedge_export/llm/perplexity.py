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

__all__ = ["perplexity", "window_nll", "RUNTIMES", "AttentionReport"]

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


class AttentionReport:
    """Attention multiply-adds over an evaluation (from the sparsedge runtime's op counters)."""

    def __init__(self):
        self.prefill_dense = self.prefill_done = self.total_dense = self.total_done = 0.0
        self.state_bytes = 0.0

    @staticmethod
    def _sparsity(dense: float, done: float) -> float:
        return 1.0 - done / dense if dense > 0 else 0.0

    @property
    def prefill_sparsity(self) -> float:
        return self._sparsity(self.prefill_dense, self.prefill_done)

    @property
    def sparsity(self) -> float:
        return self._sparsity(self.total_dense, self.total_done)


def _attention_counts(session) -> tuple[float, float, float]:
    stats = session.get_stats()
    return (stats.get("attention.macs_dense", 0.0), stats.get("attention.macs_done", 0.0),
            stats.get("attention.state_bytes", 0.0))


def _prefill_decode_logits(session, inputs, window: np.ndarray, kv_shape, chunk: int,
                           report: AttentionReport) -> np.ndarray:
    """Logits of ``window``: its first half as a chunked prefill, the rest decoded one token at a time."""
    n = len(window)
    prefill = max(1, n // 2)
    past = {name: np.zeros((1, 0, *kv_shape), np.float32) for name in inputs if name.startswith("past_")}
    present_names = [name.replace("past_", "present_", 1) for name in past]
    logits = []
    session.reset_stats()
    pos = 0
    steps = [(s, min(s + chunk, prefill)) for s in range(0, prefill, chunk)] + [(s, s + 1) for s in range(prefill, n)]
    for i, (lo, hi) in enumerate(steps):
        feeds = {"input_ids": window[None, lo:hi], "position_ids": np.arange(lo, hi, dtype=np.int64)[None], **past}
        outs = session.run(["logits", *present_names], feeds)
        logits.append(outs[0][0])
        past = dict(zip(past, outs[1:]))
        pos = hi
        if hi == prefill:
            dense, done, _ = _attention_counts(session)
            report.prefill_dense += dense
            report.prefill_done += done
    dense, done, state = _attention_counts(session)
    report.total_dense += dense
    report.total_done += done
    report.state_bytes = max(report.state_bytes, state)
    assert pos == n
    return np.concatenate(logits, axis=0)


def perplexity(model_dir: Path | str, text: str, context: int = 512, max_tokens: int | None = None,
               runtime: str = "onnxruntime", threads: int | None = None, progress: bool = True,
               attention_report: AttentionReport | None = None, prefill_chunk: int = 128) -> float:
    """Perplexity of ``text``. With ``attention_report`` (sparsedge runtime only), each window runs as a
    chunked prefill of its first half then token-by-token decode of the rest, and the report receives the
    attention multiply-adds performed against dense causal attention (docs/DELTA_ATTENTION.md)."""
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
    if attention_report is not None and runtime != "sparsedge":
        raise LlmExportError("attention sparsity is reported by the sparsedge runtime: use --runtime sparsedge")
    if prefill_chunk < 1:
        raise LlmExportError(f"--prefill-chunk must be at least 1, got {prefill_chunk}")
    session = _session(model, runtime, threads)
    inputs = [arg.name for arg in session.get_inputs()]
    kv_shape = _kv_shape(model)
    empty = np.zeros((1, 0, *kv_shape), np.float32)
    total, count, began = 0.0, 0, time.perf_counter()
    for n, window in enumerate(windows, 1):
        if attention_report is not None:
            logits = _prefill_decode_logits(session, inputs, window, kv_shape, prefill_chunk, attention_report)
        else:
            feeds = {"input_ids": window[None], "position_ids": np.arange(len(window), dtype=np.int64)[None]}
            feeds.update({name: empty for name in inputs if name.startswith("past_")})
            logits = session.run(["logits"], feeds)[0][0]
        nll = window_nll(logits, window)
        total += float(nll.sum())
        count += nll.size
        if progress:
            extra = "" if attention_report is None else f", attention sparsity {attention_report.sparsity:.1%}"
            _log(f"window {n}/{len(windows)}: {count} tokens scored, running perplexity "
                 f"{math.exp(total / count):.3f}{extra} [{time.perf_counter() - began:.0f} s]")
    return math.exp(total / count)


def _kv_shape(model: Path) -> tuple[int, int]:
    import onnx

    from .. import format as fmt

    meta = {p.key: p.value for p in onnx.load(str(model), load_external_data=False).metadata_props}
    if fmt.META_LLM not in meta:
        raise LlmExportError(f"{model} has no {fmt.META_LLM} metadata: not a sparsedge decoder")
    config = json.loads(meta[fmt.META_LLM])
    return int(config["kv_heads"]), int(config["head_dim"])

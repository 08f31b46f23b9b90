"""Latency benchmarks: candidates run in one process, alternating, with medians.

Shared machines are noisy, so every candidate is timed in the same loop, in
an order that rotates each round, after a warm-up; the median of the rounds is
compared. Never used inside tests (timings are not assertions).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np


@dataclass
class Timing:
    name: str
    samples_ms: list[float]

    @property
    def median_ms(self) -> float:
        return float(np.median(self.samples_ms))

    @property
    def p10_ms(self) -> float:
        return float(np.percentile(self.samples_ms, 10))

    @property
    def p90_ms(self) -> float:
        return float(np.percentile(self.samples_ms, 90))


def time_alternating(
    candidates: Mapping[str, Callable[[], object]],
    warmup: int = 5,
    repeats: int = 30,
    progress: bool = True,
    label: str = "bench",
) -> dict[str, Timing]:
    """Times each callable `repeats` times, interleaved, after `warmup` untimed calls."""
    names = list(candidates)
    for _ in range(warmup):
        for name in names:
            candidates[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            start = time.perf_counter()
            candidates[name]()
            samples[name].append((time.perf_counter() - start) * 1e3)
        if progress and (r + 1) % max(1, repeats // 10) == 0:
            print(f"\r[{label}] round {r + 1}/{repeats}", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    return {name: Timing(name, samples[name]) for name in names}


def random_feeds(inputs, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs for a session's NodeArgs; symbolic dimensions become 1."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for arg in inputs:
        shape = [d if isinstance(d, int) and d >= 0 else 1 for d in (arg.shape or [])]
        dtype = np.dtype(arg.dtype)
        if dtype.kind == "f":
            feeds[arg.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[arg.name] = rng.integers(0, 2, size=shape).astype(dtype)
    return feeds


def onnxruntime_session(model_path: str, threads: int):
    """A CPU onnxruntime session pinned to `threads` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if threads > 1:
        # onnxruntime's workers spin after each run by default; in alternating
        # runs they would take the cores sparsedge's next run needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])


def format_table(timings: Mapping[str, Timing], baseline: str) -> str:
    base = timings[baseline].median_ms
    lines = [f"{'runtime':<28} {'median ms':>10} {'p10':>8} {'p90':>8} {'speed vs ' + baseline:>22}"]
    for name, t in timings.items():
        ratio = base / t.median_ms if t.median_ms > 0 else float("inf")
        lines.append(f"{name:<28} {t.median_ms:>10.3f} {t.p10_ms:>8.3f} {t.p90_ms:>8.3f} {ratio:>21.2f}x")
    return "\n".join(lines)

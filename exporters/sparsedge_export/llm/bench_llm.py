"""Prefill and decode throughput of decoder directories (``sparsedge bench-llm``).

Every model runs in this one process, alternating each round: sparsedge
(``sparsedge.Generator``: KV cache preallocated, chunked prefill) for every
directory given, and onnxruntime on the first (dense) directory's model.onnx
with the cache passed as past/present arrays, as its users run it. Prefill =
one prompt of ``prompt_tokens`` tokens of real text on an empty cache; decode
= ``decode_tokens`` single-token steps after that prompt (the text's next
tokens fed, so every runtime does identical work). Medians over rounds.
Peak memory is measured in a fresh subprocess per (runtime, model): the peak
resident set (VmHWM) of loading the model, the prefill and the decode,
Python and NumPy included (about 35 MB for both runtimes).
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import LlmExportError

__all__ = ["bench_llm", "LlmTiming", "prompt_ids"]


def _log(message: str) -> None:
    print(f"[sparsedge bench-llm] {message}", file=sys.stderr, flush=True)


@dataclass
class LlmTiming:
    name: str
    prefill_ms: list[float] = field(default_factory=list)
    decode_ms: list[float] = field(default_factory=list)  # per token, one median per round
    peak_rss_mb: float | None = None

    def prefill_tps(self, tokens: int) -> float:
        return tokens / (float(np.median(self.prefill_ms)) / 1e3)

    def decode_tps(self) -> float:
        return 1e3 / float(np.median(self.decode_ms))


def prompt_ids(tokenizer_file: Path, count: int) -> list[int]:
    """The first ``count`` tokens of *Persuasion* (public domain, janeaustenr)."""
    from tokenizers import Tokenizer

    from ..assets import janeausten_texts

    text = janeausten_texts()["persuasion"]
    ids = Tokenizer.from_file(str(tokenizer_file)).encode(text[: count * 8]).ids
    if len(ids) < count:
        raise LlmExportError(f"the benchmark text has only {len(ids)} tokens, {count} wanted")
    return ids[:count]


class _Sparsedge:
    def __init__(self, model_dir: Path, threads: int, max_context: int, chunk: int):
        import sparsedge

        self.gen = sparsedge.Generator(model_dir, threads, max_context=max_context, prefill_chunk=chunk)

    def prefill(self, ids):
        self.gen.reset()
        self.gen.feed(ids)
        return self.gen.logits()

    def decode(self, start: int, steps) -> list[float]:
        self.gen.truncate(start)
        out = []
        for t in steps:
            t0 = time.perf_counter()
            self.gen.feed([t])
            out.append((time.perf_counter() - t0) * 1e3)
        return out


class _Onnxruntime:
    def __init__(self, model_dir: Path, threads: int):
        from ..bench import onnxruntime_session

        self.session = onnxruntime_session(str(model_dir / "model.onnx"), threads)
        self.outputs = [o.name for o in self.session.get_outputs()]
        past = [i for i in self.session.get_inputs() if i.name.startswith("past_")]
        self.past_names = [i.name for i in past]
        self.kv_tail = [int(d) for d in past[0].shape[2:]]
        self.cache = None

    def _run(self, ids, position, past):
        feeds = {"input_ids": np.asarray([ids], np.int64),
                 "position_ids": np.arange(position, position + len(ids), dtype=np.int64)[None], **past}
        out = dict(zip(self.outputs, self.session.run(None, feeds)))
        present = {n: out[n.replace("past_", "present_")] for n in self.past_names}
        return out["logits"][0, -1], present

    def prefill(self, ids):
        empty = np.zeros([1, 0, *self.kv_tail], np.float32)
        logits, self.cache = self._run(ids, 0, {n: empty for n in self.past_names})
        return logits

    def decode(self, start: int, steps) -> list[float]:
        past, position, out = self.cache, start, []
        for t in steps:
            t0 = time.perf_counter()
            _, past = self._run([t], position, past)
            out.append((time.perf_counter() - t0) * 1e3)
            position += 1
        return out


def _peak_rss(runtime: str, model_dir: Path, threads: int, prompt: int, decode: int, chunk: int) -> float:
    """Peak RSS (MB) of a fresh process that loads the model, prefills and decodes."""
    # VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child forked from this
    # (large) process would report at least the parent's resident set.
    code = (
        "from pathlib import Path\n"
        "from sparsedge_export.llm.bench_llm import _run_once\n"
        f"_run_once({runtime!r}, Path({str(model_dir)!r}), {threads}, {prompt}, {decode}, {chunk})\n"
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise LlmExportError(f"memory measurement of {runtime} on {model_dir} failed:\n{result.stderr[-2000:]}")
    return int(result.stdout.strip().splitlines()[-1]) / 1024.0  # kB -> MB


def _run_once(runtime: str, model_dir: Path, threads: int, prompt: int, decode: int, chunk: int) -> None:
    ids = prompt_ids(model_dir / "tokenizer.json", prompt + decode)
    r = (_Sparsedge(model_dir, threads, prompt + decode, chunk) if runtime == "sparsedge"
         else _Onnxruntime(model_dir, threads))
    r.prefill(ids[:prompt])
    r.decode(prompt, ids[prompt:])


def bench_llm(model_dirs: list[Path], prompt_tokens: int = 512, decode_tokens: int = 32, rounds: int = 5,
              threads: int = 1, chunk: int = 256, vs_onnxruntime: bool = True, memory: bool = True,
              progress: bool = True) -> tuple[dict[str, LlmTiming], str]:
    """Times every directory with sparsedge (and the first with onnxruntime); returns (timings, report)."""
    model_dirs = [Path(d) for d in model_dirs]
    for d in model_dirs:
        if not (d / "model.onnx").is_file() or not (d / "tokenizer.json").is_file():
            raise LlmExportError(f"{d}: expected a decoder directory (model.onnx, tokenizer.json) written by "
                                 "`sparsedge models build smollm2` or `sparsedge export-llm`")
    if prompt_tokens < 1 or decode_tokens < 1 or rounds < 1:
        raise LlmExportError("--prompt-tokens, --decode-tokens and --rounds must be at least 1")
    ids = prompt_ids(model_dirs[0] / "tokenizer.json", prompt_tokens + decode_tokens)
    prompt, steps = ids[:prompt_tokens], ids[prompt_tokens:]
    runners, timings = {}, {}
    for d in model_dirs:
        name = f"sparsedge {d.name}"
        if progress:
            _log(f"loading {name}")
        runners[name] = _Sparsedge(d, threads, prompt_tokens + decode_tokens, chunk)
    if vs_onnxruntime:
        name = f"onnxruntime {model_dirs[0].name}"
        if progress:
            _log(f"loading {name}")
        runners[name] = _Onnxruntime(model_dirs[0], threads)
    names = list(runners)
    check = {}
    for name in names:  # warm-up round, and a numerical check between runtimes on the same file
        check[name] = runners[name].prefill(prompt)
        runners[name].decode(prompt_tokens, steps[:2])
        timings[name] = LlmTiming(name)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            t0 = time.perf_counter()
            runners[name].prefill(prompt)
            timings[name].prefill_ms.append((time.perf_counter() - t0) * 1e3)
            timings[name].decode_ms.append(float(np.median(runners[name].decode(prompt_tokens, steps))))
        if progress:
            _log(f"round {r + 1}/{rounds}")
    if memory:
        for d in model_dirs:
            if progress:
                _log(f"peak memory: sparsedge {d.name}")
            timings[f"sparsedge {d.name}"].peak_rss_mb = _peak_rss("sparsedge", d, threads, prompt_tokens,
                                                                   decode_tokens, chunk)
        if vs_onnxruntime:
            if progress:
                _log(f"peak memory: onnxruntime {model_dirs[0].name}")
            timings[f"onnxruntime {model_dirs[0].name}"].peak_rss_mb = _peak_rss(
                "onnxruntime", model_dirs[0], threads, prompt_tokens, decode_tokens, chunk)

    base_name = names[-1] if vs_onnxruntime else names[0]
    dense_name = names[0]
    lines = [f"prompt {prompt_tokens} tokens (prefill chunk {chunk} for sparsedge), {decode_tokens} decode steps, "
             f"threads {threads}, {rounds} alternating rounds, medians",
             f"{'runtime model':<34} {'prefill tok/s':>13} {'decode tok/s':>13} {'decode ms':>10} "
             f"{'decode vs ' + base_name.split()[0]:>22} {'vs ' + dense_name:>24} {'peak RSS MB':>12}"]
    base, dense = timings[base_name], timings[dense_name]
    for name in names:
        t = timings[name]
        rss = f"{t.peak_rss_mb:.0f}" if t.peak_rss_mb is not None else "-"
        lines.append(f"{name:<34} {t.prefill_tps(prompt_tokens):>13.1f} {t.decode_tps():>13.2f} "
                     f"{np.median(t.decode_ms):>10.2f} {t.decode_tps() / base.decode_tps():>21.2f}x "
                     f"{t.decode_tps() / dense.decode_tps():>23.2f}x {rss:>12}")
    prefill_ratio = timings[dense_name].prefill_tps(prompt_tokens) / base.prefill_tps(prompt_tokens)
    lines.append(f"prefill {dense_name} vs {base_name}: {prefill_ratio:.2f}x")
    if vs_onnxruntime:
        a, b = check[dense_name], check[base_name]
        lines.append(f"last-token logits, {dense_name} vs {base_name}: max|diff|/max|ref| = "
                     f"{float(np.abs(a - b).max() / np.abs(b).max()):.2e}")
    return timings, "\n".join(lines)


def plot_llm(timings: dict[str, LlmTiming], prompt_tokens: int, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(timings)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, values, title in ((axes[0], [timings[n].prefill_tps(prompt_tokens) for n in names],
                               f"prefill tokens/s ({prompt_tokens}-token prompt)"),
                              (axes[1], [timings[n].decode_tps() for n in names], "decode tokens/s")):
        ax.barh(names, values, color=["#3b75af" if n.startswith("sparsedge") else "#999999" for n in names])
        ax.set_title(title)
        for i, v in enumerate(values):
            ax.text(v, i, f" {v:.1f}", va="center")
        ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

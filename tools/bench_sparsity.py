"""Latency of MobileNet-v1 against sparsity: sparsedge sparse vs sparsedge dense
vs onnxruntime dense, single thread, all in one process, alternating, medians.

    python tools/bench_sparsity.py [--width 1.0] [--sparsities 0.3,0.5,0.7,0.8,0.9]
                                   [--pattern 4x1] [--allocation uniform] [--repeats 30] [--plot docs/img/mobilenet_v1_sparsity.png]

Prints a markdown table (paste it into docs/BENCHMARKS.md) and draws the plot.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

import sparsedge
from sparsedge_export.bench import onnxruntime_session, time_alternating
from sparsedge_export.models import build_model
from sparsedge_export.sparsify import export_sparse


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--sparsities", default="0.3,0.5,0.7,0.8,0.9")
    ap.add_argument("--pattern", default="4x1")
    ap.add_argument("--allocation", default="uniform", choices=["uniform", "global", "sensitivity"],
                    help="per-layer sparsity allocation (default uniform: every pruned layer at the target, "
                         "so MACs fall with the weights; global keeps the MAC-heavy early layers denser)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--plot", default="docs/img/mobilenet_v1_sparsity.png")
    ap.add_argument("--workdir", default=None, help="where models are written (default: a temp dir)")
    args = ap.parse_args(argv)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="sparsedge-bench-"))
    dense = build_model("mobilenet-v1", work, filename=f"mobilenet-v1-{args.width}.onnx", width=args.width)
    sparsities = [float(s) for s in args.sparsities.split(",")]
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 224, 224)).astype(np.float32)
    feeds = {"input": x}

    candidates = {}
    ort_dense = onnxruntime_session(str(dense), args.threads)
    candidates["onnxruntime dense"] = lambda: ort_dense.run(None, feeds)
    sessions = {"sparsedge dense": sparsedge.InferenceSession(dense, threads=args.threads)}
    for s in sparsities:
        path = work / f"mobilenet-v1-{args.width}-{args.pattern}-{args.allocation}-{int(round(s * 100))}.onnx"
        if not path.exists():
            export_sparse(dense, path, sparsity=s, pattern=args.pattern, allocation=args.allocation, progress=False)
        sessions[f"sparsedge {int(round(s * 100))}%"] = sparsedge.InferenceSession(path, threads=args.threads)
    for name, session in sessions.items():
        candidates[name] = (lambda sess: (lambda: sess.run(None, feeds)))(session)

    print(f"MobileNet-v1 {args.width}/224, pattern {args.pattern}, allocation {args.allocation}, threads {args.threads}, ISA {sparsedge.get_isa()}, "
          f"{args.repeats} alternating rounds after {args.warmup} warm-up", file=sys.stderr)
    timings = time_alternating(candidates, warmup=args.warmup, repeats=args.repeats, label="bench-sparsity")
    ort_ms = timings["onnxruntime dense"].median_ms
    sde_dense_ms = timings["sparsedge dense"].median_ms
    print("| model | median ms | p10–p90 ms | speed-up vs sparsedge dense | speed-up vs onnxruntime dense |")
    print("|---|---:|---:|---:|---:|")
    for name, t in timings.items():
        print(f"| {name} | {t.median_ms:.2f} | {t.p10_ms:.2f}–{t.p90_ms:.2f} | "
              f"{sde_dense_ms / t.median_ms:.2f}x | {ort_ms / t.median_ms:.2f}x |")

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        xs = [0.0] + sparsities
        ys = [sde_dense_ms] + [timings[f"sparsedge {int(round(s * 100))}%"].median_ms for s in sparsities]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot([100 * v for v in xs], ys, "o-", label="sparsedge (group-sparse 4x1)")
        ax.axhline(ort_ms, color="tab:red", ls="--", label="onnxruntime dense")
        ax.axhline(sde_dense_ms, color="tab:gray", ls=":", label="sparsedge dense")
        ax.set_xlabel("sparsity of pruned layers (%)")
        ax.set_ylabel("latency, median ms (1 thread)")
        ax.set_title(f"MobileNet-v1 {args.width}/224 on x86-64 {sparsedge.get_isa()}")
        ax.set_ylim(bottom=0)
        ax.legend()
        ax.grid(alpha=0.3)
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"plot: {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

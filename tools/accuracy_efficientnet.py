"""EfficientNet-Lite0 group sparsity: agreement with the dense model on real photo crops.

No ImageNet validation set is available here, so each sparse model is compared
with the dense one: top-1 agreement and mean KL(dense || sparse) of the softmax,
over random crops/scales/flips of scikit-image photographs. Calibration crops and
evaluation crops come from DISJOINT photos. Every model is run with onnxruntime
from the sparse file itself (function bodies).

    python tools/accuracy_efficientnet.py [--sparsities 0.3 0.5 0.7] [--eval-crops 13]
        [--calib-crops 4] [--out docs/ACCURACY.md]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from sparsedge_export import assets
from sparsedge_export.models import build_model
from sparsedge_export.sparsify import export_sparse

# Natural photographs among scikit-image's data files (synthetic images left out);
# grayscale ones are converted to RGB. motorcycle_left/right are a stereo pair and
# stay on the same side of the split.
EVAL_PHOTOS = ["astronaut", "chelsea", "motorcycle_left", "motorcycle_right", "gravel", "cell", "page", "text"]
CALIB_PHOTOS = ["coffee", "ihc", "brick", "camera", "grass", "moon", "coins", "clock_motion"]
SIZE, MEAN, STD = 224, 127.0, 128.0


def random_crops(photo: str, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` crops [count, 3, 224, 224]: shorter side resized to 224..320, random crop, random flip."""
    with Image.open(assets.skimage_image(f"{photo}.png")) as image:
        image = image.convert("RGB")
        crops = []
        for _ in range(count):
            short = int(rng.integers(SIZE, 321))
            scale = short / min(image.size)
            w, h = max(SIZE, round(image.width * scale)), max(SIZE, round(image.height * scale))
            resized = image.resize((w, h), Image.BILINEAR)
            left, top = int(rng.integers(0, w - SIZE + 1)), int(rng.integers(0, h - SIZE + 1))
            crop = resized.crop((left, top, left + SIZE, top + SIZE))
            if rng.random() < 0.5:
                crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
            pixels = (np.asarray(crop, np.float32) - MEAN) / STD
            crops.append(pixels.transpose(2, 0, 1))
    return np.stack(crops)


def crops_for(photos: list[str], per_photo: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([random_crops(p, per_photo, rng) for p in photos])


def logits_of(path: Path, data: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: data[i:i + 1]})[0] for i in range(len(data))])


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64) - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def compare(dense: np.ndarray, sparse: np.ndarray) -> tuple[float, float]:
    lp, lq = log_softmax(dense), log_softmax(sparse)
    agreement = float((dense.argmax(1) == sparse.argmax(1)).mean())
    kl = float((np.exp(lp) * (lp - lq)).sum(axis=1).mean())
    return agreement, kl


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    parser.add_argument("--pattern", default="4x1")
    parser.add_argument("--eval-crops", type=int, default=13, help="crops per evaluation photo")
    parser.add_argument("--calib-crops", type=int, default=4, help="crops per calibration photo")
    parser.add_argument("--allocation", default="global")
    parser.add_argument("--out", help="write the markdown section to this file (replacing the section)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="sparsedge-acc-"))
    dense_path = build_model("efficientnet-lite0", work)
    evaluation = crops_for(EVAL_PHOTOS, args.eval_crops, seed=1)
    calibration = crops_for(CALIB_PHOTOS, args.calib_crops, seed=2)
    print(f"{len(evaluation)} evaluation crops from {len(EVAL_PHOTOS)} photos, {len(calibration)} calibration "
          f"crops from {len(CALIB_PHOTOS)} other photos", file=sys.stderr)
    dense = logits_of(dense_path, evaluation)
    rows = []
    for sparsity, rearrange, recover in itertools.product(args.sparsities, (False, True), (False, True)):
        out = work / f"s{sparsity}_{int(rearrange)}{int(recover)}.onnx"
        start = time.monotonic()
        report = export_sparse(dense_path, out, sparsity, pattern=args.pattern, calibration=calibration,
                               rearrange=rearrange, recover=recover, allocation=args.allocation, progress=False)
        seconds = time.monotonic() - start
        agreement, kl = compare(dense, logits_of(out, evaluation))
        rows.append((sparsity, rearrange, recover, report.achieved_sparsity, report.overall_sparsity,
                     agreement, kl, seconds))
        print(f"sparsity {sparsity:.2f} rearrange {rearrange!s:5} recover {recover!s:5}: top-1 agreement "
              f"{100 * agreement:5.1f}%  KL {kl:.4f}  (export {seconds:.0f}s)", file=sys.stderr, flush=True)

    command = "python tools/accuracy_efficientnet.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = ["## EfficientNet-Lite0 (group sparsity)", "",
             "No ImageNet validation set is available here, so the sparse models are compared with the "
             "dense one: top-1 agreement and mean KL(dense || sparse) of the softmax outputs, over "
             f"{len(evaluation)} random crops (scale, position, horizontal flip) of {len(EVAL_PHOTOS)} "
             f"scikit-image photographs ({', '.join(EVAL_PHOTOS)}). Calibration uses {len(calibration)} crops "
             f"of {len(CALIB_PHOTOS)} DIFFERENT photographs ({', '.join(CALIB_PHOTOS)}). Pattern "
             f"{args.pattern}, {args.allocation} allocation, first and last prunable layers (stem conv, "
             "classifier) kept dense, depthwise convs dense; every sparse model is run by onnxruntime from "
             "the exported file (model-local function bodies). 'sparsity' is the fraction of the pruned "
             "layers' weights removed; 'of all prunable' counts the protected stem and classifier too. "
             "Without recovery, calibration data still drives activation-aware (Wanda-style) block scores.",
             "", f"Command: `{command.strip()}`", "",
             "| sparsity | of all prunable | rearrangement | recovery | top-1 agreement | KL(dense‖sparse) | export time |",
             "|---:|---:|:---:|:---:|---:|---:|---:|"]
    for sparsity, rearrange, recover, achieved, overall, agreement, kl, seconds in rows:
        lines.append(f"| {100 * achieved:.1f}% | {100 * overall:.1f}% | {'yes' if rearrange else 'no'} | "
                     f"{'yes' if recover else 'no'} | {100 * agreement:.1f}% | {kl:.4f} | {seconds:.0f} s |")
    section = "\n".join(lines) + "\n"
    print(section)
    if args.out:
        path = Path(args.out)
        text = path.read_text() if path.exists() else "# Accuracy\n\n"
        marker = "## EfficientNet-Lite0 (group sparsity)"
        if marker in text:
            head, _, rest = text.partition(marker)
            tail = rest.split("\n## ", 1)
            text = head + section + ("\n## " + tail[1] if len(tail) > 1 else "")
        else:
            text = text.rstrip("\n") + "\n\n" + section
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

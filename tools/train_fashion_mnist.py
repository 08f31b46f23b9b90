#!/usr/bin/env python3
"""Train a small MobileNet-v1 on Fashion-MNIST and export it to ONNX.

Dev tool (needs torch; not part of the installed package). The model is the
accuracy testbed for the sparsedge exporter: ``tools/accuracy_fashion_mnist.py``
prunes it and measures test accuracy.

Model: MobileNet-v1 (Howard et al. 2017) adapted to 32x32 grayscale (28x28
zero-padded to 32, see ``fashion_mnist_common.preprocess``): a 3x3 stride-2 stem,
then depthwise-separable blocks (3x3 depthwise + BN + ReLU, 1x1 pointwise + BN
+ ReLU) with the paper's channel progression scaled by the width multiplier but
two stride-2 stages after the stem (32 -> 16 -> 8 -> 4; the CPU budget is small), global average pool, linear
classifier. The ONNX export (eval mode, constant folding) folds BN into the convs:
Conv(+bias) -> Relu, GlobalAveragePool -> Flatten -> Gemm.

Training: AdamW + one-cycle LR, batch 256, 3 epochs (optional random flips and
shifts of up to 2 pixels with --augment), fixed seed, deterministic algorithms, fixed thread
count. Writes ``$SPARSEDGE_CACHE|~/.cache/sparsedge/models/fashion_mobilenet_v1.onnx``
(atomically) and a JSON with the training metadata next to it.

    OMP_WAIT_POLICY=PASSIVE python tools/train_fashion_mnist.py [--epochs 3] [--width 0.75] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# Idle OpenMP threads sleep instead of spinning: on a machine shared with compiles
# spinning makes training several times slower. Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "exporters"))

import fashion_mnist_common as common  # noqa: E402
from sparsedge_export.assets import fashion_mnist  # noqa: E402

# (depthwise stride, pointwise output channels at width 1.0)
BLOCKS = [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (1, 512), (1, 512), (1, 512)]
STEM = 32
STEM_STRIDE = 2


def scaled(c: int, width: float) -> int:
    return max(8, int(c * width))


class MobileNetV1(nn.Module):
    def __init__(self, width: float = 0.75, num_classes: int = 10, blocks=BLOCKS):
        super().__init__()
        c = scaled(STEM, width)
        layers: list[nn.Module] = [nn.Conv2d(1, c, 3, STEM_STRIDE, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        for stride, out in blocks:
            o = scaled(out, width)
            layers += [
                nn.Conv2d(c, c, 3, stride, 1, groups=c, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                nn.Conv2d(c, o, 1, 1, 0, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
            ]
            c = o
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)  # ONNX: GlobalAveragePool + Flatten
        return self.classifier(x)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and random shift by up to 2 px (zero-background padding)."""
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    bg = float((0.0 - common.MEAN) / common.STD)
    padded = F.pad(x, (2, 2, 2, 2), value=bg)
    dy = torch.randint(0, 5, (n,), generator=gen)
    dx = torch.randint(0, 5, (n,), generator=gen)
    s = common.INPUT_SIZE
    rows = (dy[:, None] + torch.arange(s)[None, :])  # [n, s]
    cols = (dx[:, None] + torch.arange(s)[None, :])
    idx_n = torch.arange(n)[:, None, None]
    return padded[idx_n, 0, rows[:, :, None], cols[:, None, :]][:, None]


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(x)


def export_onnx(model: nn.Module, dest: Path) -> None:
    import onnx

    model.eval()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-", suffix=".onnx")
    os.close(fd)
    try:
        dummy = torch.zeros(1, 1, common.INPUT_SIZE, common.INPUT_SIZE)
        torch.onnx.export(model, (dummy,), tmp, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                          opset_version=13, dynamo=False, do_constant_folding=True)
        m = onnx.load(tmp)
        m.ir_version = 8
        m.producer_name = "sparsedge tools/train_fashion_mnist.py"
        onnx.checker.check_model(m)
        onnx.save(m, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json_atomic(obj: dict, dest: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2)
    os.chmod(tmp, 0o644)
    os.replace(tmp, dest)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--width", type=float, default=0.75)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 is fastest on a machine shared with compiles)")
    ap.add_argument("--augment", action="store_true", help="random flips and 2-px shifts (off by default: few epochs)")
    ap.add_argument("--time-batches", type=int, default=0,
                    help="only time this many training batches and exit (no export)")
    ap.add_argument("-o", "--output", type=Path, default=None, help=f"default: {common.model_path()}")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.use_deterministic_algorithms(True)

    train_x, train_y, test_x, test_y = fashion_mnist()
    xtr = torch.from_numpy(common.preprocess(train_x))
    ytr = torch.from_numpy(train_y.astype(np.int64))
    xte = torch.from_numpy(common.preprocess(test_x))
    yte = torch.from_numpy(test_y.astype(np.int64))

    model = MobileNetV1(args.width)
    params = sum(p.numel() for p in model.parameters())
    steps_per_epoch = len(xtr) // args.batch
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs,
                                                steps_per_epoch=steps_per_epoch, pct_start=0.25)
    gen = torch.Generator().manual_seed(args.seed)
    print(f"MobileNet-v1 width {args.width}, {len(BLOCKS)} blocks, {params} parameters; "
          f"{args.epochs} epochs x {steps_per_epoch} steps, {args.threads} threads", flush=True)

    t_start = time.time()
    history = []
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        t0 = time.time()
        loss_sum = 0.0
        for step in range(steps_per_epoch):
            idx = perm[step * args.batch:(step + 1) * args.batch]
            xb, yb = xtr[idx], ytr[idx]
            if args.augment:
                xb = augment(xb, gen)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item()
            if step % 50 == 0:
                print(f"  step {step}/{steps_per_epoch} loss {loss.item():.4f} {time.time() - t0:.0f} s", flush=True)
            if args.time_batches and step + 1 == args.time_batches:
                dt = time.time() - t0
                print(f"{args.time_batches} batches in {dt:.1f} s -> {dt / args.time_batches * steps_per_epoch:.0f} s/epoch")
                return 0
        last = epoch + 1 == args.epochs
        acc = evaluate(model, xte, yte) if last else evaluate(model, xte[:2000], yte[:2000])
        dt = time.time() - t0
        history.append({"epoch": epoch + 1, "train_loss": loss_sum / steps_per_epoch,
                        ("test_acc" if last else "test_acc_first2000"): acc, "seconds": round(dt, 1)})
        print(f"epoch {epoch + 1}/{args.epochs}: loss {loss_sum / steps_per_epoch:.4f}, "
              f"test acc {acc:.4f}{'' if last else ' (first 2000)'}, {dt:.0f} s", flush=True)
    train_seconds = time.time() - t_start

    dest = args.output or common.model_path()
    export_onnx(model, dest)
    torch.save(model.state_dict(), dest.with_suffix(".pt"))  # for re-export without retraining
    # Check the ONNX against torch on the test set with onnxruntime.
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    sess = ort.InferenceSession(str(dest), so, providers=["CPUExecutionProvider"])
    xte_np = xte.numpy()
    preds = np.concatenate([sess.run(None, {"input": xte_np[i:i + 256]})[0].argmax(1)
                            for i in range(0, len(xte_np), 256)])
    onnx_acc = float((preds == test_y).mean())
    meta = {
        "model": "MobileNet-v1 (depthwise-separable, BN + ReLU) for Fashion-MNIST",
        "width": args.width, "blocks": BLOCKS, "stem": scaled(STEM, args.width), "parameters": params,
        "input": {"name": "input", "shape": ["N", 1, common.INPUT_SIZE, common.INPUT_SIZE],
                  "preprocess": f"x/255, zero-pad {common.PAD} px to {common.INPUT_SIZE}x{common.INPUT_SIZE}, "
                                f"(x - {common.MEAN}) / {common.STD}"},
        "output": "logits",
        "epochs": args.epochs, "batch": args.batch, "optimizer": "AdamW + OneCycleLR",
        "lr": args.lr, "weight_decay": args.weight_decay, "augment": args.augment,
        "seed": args.seed, "threads": args.threads, "torch": torch.__version__,
        "train_seconds": round(train_seconds, 1), "history": history,
        "test_accuracy_torch": history[-1]["test_acc"] if history else None,
        "test_accuracy_onnxruntime": onnx_acc,
        "onnx": {"opset": 13, "ir_version": 8, "path": str(dest)},
        "command": "python tools/train_fashion_mnist.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    meta_dest = dest.with_suffix(".json")
    write_json_atomic(meta, meta_dest)
    print(f"trained in {train_seconds:.0f} s; test accuracy {onnx_acc:.4f} (onnxruntime); wrote {dest} and {meta_dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

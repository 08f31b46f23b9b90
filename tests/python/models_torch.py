"""Test-only torch models: MobileNetV2 and MobileNetV3-Small, exported to ONNX.

torchvision is not available, so both are written out here from their papers
(Sandler et al. 2018; Howard et al. 2019), with the layer layout torchvision
uses. Weights are random from a fixed seed; BatchNorm layers get non-trivial
running statistics and the modules are put in eval mode, so an exporter has
real BN to fold. torch is imported only in this file.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

__all__ = ["MobileNetV2", "MobileNetV3Small", "make_model", "export_onnx", "export_all", "MODELS"]


def _make_divisible(value: float, divisor: int = 8) -> int:
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


class ConvBNAct(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1, groups: int = 1,
                 act: type[nn.Module] | None = nn.ReLU6):
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        if act is not None:
            layers.append(act(inplace=True))
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, linear 1x1 project."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int):
        super().__init__()
        hidden = c_in * expand
        self.use_residual = stride == 1 and c_in == c_out
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNAct(c_in, hidden, 1))
        layers += [ConvBNAct(hidden, hidden, 3, stride, groups=hidden),
                   ConvBNAct(hidden, c_out, 1, act=None)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    # (expand t, channels c, repeats n, stride s) from Table 2 of the paper.
    SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, num_classes: int = 1000, width: float = 1.0):
        super().__init__()
        c_in = _make_divisible(32 * width)
        last = _make_divisible(1280 * max(1.0, width))
        layers: list[nn.Module] = [ConvBNAct(3, c_in, 3, 2)]
        for t, c, n, s in self.SETTINGS:
            c_out = _make_divisible(c * width)
            for i in range(n):
                layers.append(InvertedResidual(c_in, c_out, s if i == 0 else 1, t))
                c_in = c_out
        layers.append(ConvBNAct(c_in, last, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, 1)
        return self.classifier(torch.flatten(x, 1))


class SqueezeExcite(nn.Module):
    """SE with ReLU and hard-sigmoid gate; squeeze width made divisible by 8."""

    def __init__(self, channels: int):
        super().__init__()
        squeezed = _make_divisible(channels // 4)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = nn.functional.adaptive_avg_pool2d(x, 1)
        scale = nn.functional.hardsigmoid(self.fc2(nn.functional.relu(self.fc1(scale))))
        return x * scale


class V3Block(nn.Module):
    def __init__(self, c_in: int, kernel: int, expanded: int, c_out: int, use_se: bool,
                 act: type[nn.Module], stride: int):
        super().__init__()
        self.use_residual = stride == 1 and c_in == c_out
        layers: list[nn.Module] = []
        if expanded != c_in:
            layers.append(ConvBNAct(c_in, expanded, 1, act=act))
        layers.append(ConvBNAct(expanded, expanded, kernel, stride, groups=expanded, act=act))
        if use_se:
            layers.append(SqueezeExcite(expanded))
        layers.append(ConvBNAct(expanded, c_out, 1, act=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.use_residual else self.block(x)


class MobileNetV3Small(nn.Module):
    # (kernel, expanded, out, SE, activation, stride) from Table 2 of the paper.
    SETTINGS = [
        (3, 16, 16, True, "RE", 2), (3, 72, 24, False, "RE", 2), (3, 88, 24, False, "RE", 1),
        (5, 96, 40, True, "HS", 2), (5, 240, 40, True, "HS", 1), (5, 240, 40, True, "HS", 1),
        (5, 120, 48, True, "HS", 1), (5, 144, 48, True, "HS", 1), (5, 288, 96, True, "HS", 2),
        (5, 576, 96, True, "HS", 1), (5, 576, 96, True, "HS", 1),
    ]

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = [ConvBNAct(3, 16, 3, 2, act=nn.Hardswish)]
        c_in = 16
        for kernel, expanded, c_out, se, act, stride in self.SETTINGS:
            layers.append(V3Block(c_in, kernel, expanded, c_out, se,
                                  nn.ReLU if act == "RE" else nn.Hardswish, stride))
            c_in = c_out
        layers.append(ConvBNAct(c_in, 576, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(576, 1024), nn.Hardswish(inplace=True),
                                        nn.Dropout(0.2), nn.Linear(1024, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


MODELS = {"mobilenet-v2": MobileNetV2, "mobilenet-v3-small": MobileNetV3Small}


@torch.no_grad()
def _randomise(module: nn.Module, seed: int) -> None:
    """He-init convs/linears and give every BN non-trivial eval statistics, from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            fan_in = layer.weight[0].numel()
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            if layer.bias is not None:
                layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen) * 0.05)
        elif isinstance(layer, nn.BatchNorm2d):
            n = layer.num_features
            layer.weight.copy_(torch.rand(n, generator=gen) + 0.5)
            layer.bias.copy_(torch.randn(n, generator=gen) * 0.1)
            layer.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            layer.running_var.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)


def make_model(name: str, seed: int = 0, num_classes: int = 1000) -> nn.Module:
    """A seeded, eval-mode instance of ``name`` (a key of MODELS)."""
    module = MODELS[name](num_classes=num_classes)
    _randomise(module, seed)
    return module.eval()


def _onnxscript_available() -> bool:
    try:
        import onnxscript  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def export_onnx(module: nn.Module, path: Path | str, opset: int = 13, resolution: int = 224,
                batch: int = 1, dynamo: bool | None = None) -> Path:
    """Export ``module`` to ``path`` with ``torch.onnx.export`` (IR 8, written atomically).

    ``dynamo=None`` picks the exporter: torch's default (dynamo) exporter for
    opset >= 18 when onnxscript is installed, since it cannot down-convert these
    graphs below 18 (ReduceMean's axes became an input in 18); the TorchScript
    exporter otherwise. Both fold BatchNorm into the convs in eval mode. The
    file's opset must equal ``opset``, or this raises.
    """
    path = Path(path)
    module = module.eval()
    if dynamo is None:
        dynamo = opset >= 18 and _onnxscript_available()
    example = (torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(0)),)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        staging = Path(tmp) / "model.onnx"
        kwargs = {"external_data": False, "verbose": False} if dynamo else {}
        torch.onnx.export(module, example, str(staging), input_names=["input"],
                          output_names=["logits"], opset_version=opset, dynamo=dynamo, **kwargs)
        model = onnx.load(str(staging))
    got = {o.domain: o.version for o in model.opset_import}.get("", None)
    if got != opset:
        raise RuntimeError(f"asked torch.onnx.export for opset {opset}, got {got} (dynamo={dynamo})")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(model.SerializeToString())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def export_all(out_dir: Path | str, opsets: tuple[int, ...] = (13, 18), seed: int = 0) -> dict[tuple[str, int], Path]:
    """Export every model in MODELS at each opset: ``{(name, opset): path}``."""
    out_dir = Path(out_dir)
    return {(name, opset): export_onnx(make_model(name, seed), out_dir / f"{name}-opset{opset}.onnx", opset)
            for name in MODELS for opset in opsets}

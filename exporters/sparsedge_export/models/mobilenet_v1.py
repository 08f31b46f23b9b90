"""MobileNet-v1 (Howard et al. 2017) as an ONNX graph with random weights.

No pretrained MobileNet-v1 exists in the reachable registries; speed depends on
shapes and sparsity, not values, so random weights from a fixed seed suffice.
The graph has the form an exporter produces from a trained network:

* Conv (no bias) -> BatchNormalization -> Relu, with BN kept as its own node
  (the runtime is expected to fold it). Activation is plain ReLU, as in the
  paper; ``activation="relu6"`` gives Clip(0, 6) as in TF-slim's version.
* 3x3 convs use symmetric pads of 1 (PyTorch style), also at stride 2.
* Width multiplier: channels = max(8, int(c * width)), as TF-slim's depth().
* Classifier: GlobalAveragePool -> Flatten -> Gemm (``classifier="gemm"``) or
  GlobalAveragePool -> 1x1 Conv -> Flatten (``classifier="conv"``). Output
  ``logits``, no softmax.

Initialisation: conv weights He-normal (std sqrt(2 / fan_in)). BN running
statistics are measured (with jitter) on a seeded batch of smooth synthetic
images pushed through the network while it is built, as a trained network's
would be; gamma ~ U(0.5, 1.5), beta ~ N(0, 0.25). Without that calibration a
random ReLU network's pooled features are dominated by an input-independent
per-channel mean and the logits barely depend on the input. The classifier is
centred the same way, so logits on photos have a spread of order 1 and differ
from image to image. (Inputs far from photos, e.g. iid Gaussian noise, give much
larger logits.)
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from .graph_builder import GraphBuilder, float_input, make_model

__all__ = ["MOBILENET_V1_BLOCKS", "build_mobilenet_v1", "scaled_channels"]

BN_EPS = 1e-5
STEM_CHANNELS = 32
# (stride of the depthwise 3x3, output channels of the pointwise 1x1), Table 1 of the
# paper. The paper's last depthwise is listed with stride 2, but its output stays
# 7x7: every implementation uses stride 1 there, and so do we.
MOBILENET_V1_BLOCKS = [
    (1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512),
    (1, 512), (1, 512), (1, 512), (1, 512), (1, 512),
    (2, 1024), (1, 1024),
]


def scaled_channels(channels: int, width: float) -> int:
    return max(8, int(channels * width))


def _conv_nchw(x: np.ndarray, weight: np.ndarray, stride: int, depthwise: bool) -> np.ndarray:
    """Reference conv with symmetric pads k//2, used only to calibrate BN statistics."""
    k = weight.shape[2]
    if k == 1:
        return np.einsum("nchw,oc->nohw", x, weight[:, :, 0, 0], optimize=True)
    pad = k // 2
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    h_out = (x.shape[2] + 2 * pad - k) // stride + 1
    w_out = (x.shape[3] + 2 * pad - k) // stride + 1
    out = None
    for dy in range(k):
        for dx in range(k):
            patch = xp[:, :, dy: dy + stride * (h_out - 1) + 1: stride, dx: dx + stride * (w_out - 1) + 1: stride]
            if depthwise:
                term = patch * weight[None, :, 0, dy, dx, None, None]
            else:
                term = np.einsum("nchw,oc->nohw", patch, weight[:, :, dy, dx], optimize=True)
            out = term if out is None else out + term
    return out


def _calibration_images(rng: np.random.Generator, count: int, resolution: int) -> np.ndarray:
    """Smooth random colour fields in about [-1, 1]: spatially correlated like photos."""
    coarse = rng.uniform(-1.0, 1.0, (count, 3, 8, 8))
    images = coarse.repeat(-(-resolution // 8), axis=2).repeat(-(-resolution // 8), axis=3)
    images = images[:, :, :resolution, :resolution]
    images = images + rng.normal(0.0, 0.2, images.shape)
    return images.astype(np.float32)


class _V1Writer:
    def __init__(self, seed: int, activation: str, resolution: int):
        if activation not in ("relu", "relu6"):
            raise ValueError(f"activation must be 'relu' or 'relu6', not {activation!r}")
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.g = GraphBuilder()
        self.activation = activation
        self.calib = _calibration_images(np.random.default_rng([seed, 1]), 4, resolution)

    def he_weight(self, c_out: int, c_in_per_group: int, k: int) -> np.ndarray:
        fan_in = c_in_per_group * k * k
        w = self.rng.standard_normal((c_out, c_in_per_group, k, k)) * np.sqrt(2.0 / fan_in)
        return w.astype(np.float32)

    def conv_bn_act(self, x: str, name: str, c_in: int, c_out: int, k: int, stride: int,
                    depthwise: bool = False) -> str:
        """Add conv -> BN -> act; BN statistics are measured on the calibration batch."""
        g, rng = self.g, self.rng
        weight = self.he_weight(c_out, 1 if depthwise else c_in, k)
        y = g.conv(x, name, weight, None, stride=stride, group=c_in if depthwise else 1)
        pre = _conv_nchw(self.calib, weight, stride, depthwise).astype(np.float64)
        # Running statistics as a trained network would have them (measured, with a
        # little jitter); gamma/beta random around 1/0 so the fold is non-trivial.
        mean = pre.mean(axis=(0, 2, 3)) * rng.uniform(0.9, 1.1, c_out)
        var = pre.var(axis=(0, 2, 3)) * rng.uniform(0.8, 1.25, c_out) + 1e-3
        scale = rng.uniform(0.5, 1.5, c_out)
        bias = rng.normal(0.0, 0.25, c_out)
        y = g.batch_norm(y, f"{name}.bn", scale=scale, bias=bias, mean=mean, var=var, eps=BN_EPS)
        normalised = (pre - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + BN_EPS)
        post = normalised * scale[None, :, None, None] + bias[None, :, None, None]
        upper = 6.0 if self.activation == "relu6" else np.inf
        self.calib = np.clip(post, 0.0, upper).astype(np.float32)
        if self.activation == "relu":
            return g.relu(y, f"{name}.relu")
        return g.relu6(y, f"{name}.relu6")

    def build(self, width: float, resolution: int, num_classes: int, batch: int | str,
              classifier: str) -> onnx.ModelProto:
        g = self.g
        c = scaled_channels(STEM_CHANNELS, width)
        x = self.conv_bn_act("input", "conv0", 3, c, 3, 2)
        for i, (stride, c_out) in enumerate(MOBILENET_V1_BLOCKS, start=1):
            c_out = scaled_channels(c_out, width)
            x = self.conv_bn_act(x, f"block{i}.dw", c, c, 3, stride, depthwise=True)
            x = self.conv_bn_act(x, f"block{i}.pw", c, c_out, 1, 1)
            c = c_out
        x = g.node("GlobalAveragePool", [x], "pool")
        # Centre the classifier on the calibration features so logits vary with the
        # input rather than being dominated by the (input-independent) feature mean.
        features = self.calib.mean(axis=(2, 3)).astype(np.float64)
        fc_w = self.rng.standard_normal((num_classes, c)) / np.sqrt(c)
        spread = features.std(axis=0).mean() + 1e-6
        fc_w = fc_w / spread
        fc_b = -fc_w @ features.mean(axis=0) + self.rng.normal(0.0, 0.1, num_classes)
        fc_w, fc_b = fc_w.astype(np.float32), fc_b.astype(np.float32)
        if classifier == "gemm":
            x = g.node("Flatten", [x], "flatten", axis=1)
            g.node("Gemm", [x, g.constant("fc.weight", fc_w), g.constant("fc.bias", fc_b)],
                   "logits", transB=1)
        elif classifier == "conv":
            x = g.conv(x, "fc", fc_w.reshape(num_classes, c, 1, 1), fc_b, pads=[0, 0, 0, 0])
            g.node("Flatten", [x], "logits", axis=1)
        else:
            raise ValueError(f"classifier must be 'gemm' or 'conv', not {classifier!r}")
        return make_model(
            g, f"mobilenet_v1_{width}_{resolution}",
            [float_input("input", [batch, 3, resolution, resolution])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, num_classes])],
            doc=f"MobileNet-v1 width {width} resolution {resolution}, RANDOM weights (seed "
                f"{self.seed}); BN unfolded; {self.activation}; output logits (no softmax).",
        )


def build_mobilenet_v1(width: float = 1.0, resolution: int = 224, num_classes: int = 1000,
                       seed: int = 0, batch: int | str = 1, activation: str = "relu",
                       classifier: str = "gemm") -> onnx.ModelProto:
    """MobileNet-v1 ``width``/``resolution`` with seeded random weights; see the module doc.

    ``batch`` may be a string (e.g. ``"N"``) for a symbolic batch dimension.
    The same arguments always give byte-identical models.
    """
    if width <= 0:
        raise ValueError(f"width must be positive, not {width}")
    if resolution % 32:
        raise ValueError(f"resolution must be a multiple of 32, not {resolution}")
    return _V1Writer(seed, activation, resolution).build(width, resolution, num_classes, batch, classifier)

"""A small helper for writing CNN graphs with onnx.helper.

Every model this package emits goes through :func:`make_model`, which pins
IR version 8 and opset 13: onnx 1.23 would otherwise write IR 14, which
onnxruntime-web cannot read.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["IR_VERSION", "OPSET", "GraphBuilder", "float_input", "make_model", "same_pads"]

IR_VERSION = 8
OPSET = 13


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding along one axis: (before, after); the extra pad goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class GraphBuilder:
    """Accumulates nodes and initializers; names are unique and readable."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: set[str] = set()

    def _unique(self, name: str) -> str:
        if name in self._names:
            raise ValueError(f"duplicate tensor/node name {name!r}")
        self._names.add(name)
        return name

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), self._unique(name)))
        return name

    def node(self, op: str, inputs: Sequence[str], name: str, **attrs) -> str:
        """Add a single-output node; its output tensor has the node's name."""
        self.nodes.append(helper.make_node(op, list(inputs), [self._unique(name)], name=name, **attrs))
        return name

    def conv(self, x: str, name: str, weight: np.ndarray, bias: np.ndarray | None,
             stride: int = 1, pads: Sequence[int] | None = None, group: int = 1) -> str:
        """Conv with explicit pads [top, left, bottom, right] (default: symmetric k//2)."""
        k_h, k_w = weight.shape[2:]
        if pads is None:
            pads = [k_h // 2, k_w // 2, k_h // 2, k_w // 2]
        inputs = [x, self.constant(f"{name}.weight", weight.astype(np.float32))]
        if bias is not None:
            inputs.append(self.constant(f"{name}.bias", bias.astype(np.float32)))
        return self.node("Conv", inputs, name, kernel_shape=[k_h, k_w], strides=[stride, stride],
                         pads=list(pads), group=group, dilations=[1, 1])

    def batch_norm(self, x: str, name: str, scale: np.ndarray, bias: np.ndarray,
                   mean: np.ndarray, var: np.ndarray, eps: float) -> str:
        inputs = [x] + [self.constant(f"{name}.{part}", arr.astype(np.float32))
                        for part, arr in (("scale", scale), ("bias", bias), ("mean", mean), ("var", var))]
        return self.node("BatchNormalization", inputs, name, epsilon=float(eps))

    def relu(self, x: str, name: str) -> str:
        return self.node("Relu", [x], name)

    def relu6(self, x: str, name: str) -> str:
        """ReLU6 as Clip(x, 0, 6); opset 13 takes min/max as inputs, not attributes."""
        lo, hi = "relu6.min", "relu6.max"  # shared by every ReLU6 in the graph
        if lo not in self._names:
            self.constant(lo, np.array(0.0, dtype=np.float32))
            self.constant(hi, np.array(6.0, dtype=np.float32))
        return self.node("Clip", [x, lo, hi], name)


def make_model(builder: GraphBuilder, graph_name: str, inputs: Sequence[onnx.ValueInfoProto],
               outputs: Sequence[onnx.ValueInfoProto], doc: str = "") -> onnx.ModelProto:
    graph = helper.make_graph(builder.nodes, graph_name, list(inputs), list(outputs),
                              initializer=builder.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="sparsedge_export", doc_string=doc)
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def float_input(name: str, shape: Sequence[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))

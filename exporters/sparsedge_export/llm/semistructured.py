"""2:4 semi-structured weights: encoding, decoding and the ``SemiStructuredMatMul`` node with its function body.

Layout (docs/FORMAT.md, "SemiStructuredMatMul"): for ``W`` [O, I] with ``I % 4 == 0``,
``values`` float32 [O, I/2] holds the two kept weights of every group of four
consecutive inputs (in increasing position order) and ``indices`` uint8 [O, I/4]
holds, per group, ``p0 | (p1 << 2)`` with ``p0 < p1`` their positions in the group.
A kernel decodes a byte with two shifts and masks (or a 16-entry shuffle table).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper

from .. import format as fmt

__all__ = ["SemiStructuredWeights", "encode_2_4", "densify_2_4", "make_semi_structured_node",
           "semi_structured_function"]

N, M = fmt.SEMI_STRUCTURED_N, fmt.SEMI_STRUCTURED_M


@dataclass
class SemiStructuredWeights:
    values: np.ndarray   # [O, I/2] float32
    indices: np.ndarray  # [O, I/4] uint8


def encode_2_4(weight: np.ndarray, mask: np.ndarray) -> SemiStructuredWeights:
    """``weight`` [O, I] and ``mask`` [O, I] (True = kept, exactly 2 per group of 4) -> values/indices."""
    out_channels, in_channels = weight.shape
    if in_channels % M:
        raise ValueError(f"2:4 needs the input size to be a multiple of {M}, got {in_channels}")
    groups = mask.reshape(out_channels, in_channels // M, M)
    if not np.all(groups.sum(axis=-1) == N):
        raise ValueError("the mask does not keep exactly 2 of every 4 consecutive weights")
    # Positions of the kept weights, ascending within each group.
    positions = np.argsort(~groups, axis=-1, kind="stable")[..., :N]  # [O, G, 2]
    w = weight.reshape(out_channels, in_channels // M, M)
    values = np.take_along_axis(w, positions, axis=-1).reshape(out_channels, in_channels // 2)
    indices = (positions[..., 0] | (positions[..., 1] << 2)).astype(np.uint8)
    return SemiStructuredWeights(np.ascontiguousarray(values, np.float32), indices)


def densify_2_4(sw: SemiStructuredWeights) -> np.ndarray:
    """Inverse of encode_2_4 (pruned weights are zero): [O, I]."""
    out_channels, groups = sw.indices.shape
    positions = np.stack([sw.indices & 3, sw.indices >> 2], axis=-1).astype(np.int64)
    dense = np.zeros((out_channels, groups, M), np.float32)
    np.put_along_axis(dense, positions, sw.values.reshape(out_channels, groups, N), axis=-1)
    return dense.reshape(out_channels, groups * M)


def make_semi_structured_node(name: str, x: str, y: str, sw: SemiStructuredWeights,
                              bias: np.ndarray | None = None) -> tuple[onnx.NodeProto, dict[str, np.ndarray]]:
    """One SemiStructuredMatMul node and its three initializers (name -> array)."""
    out_channels, half = sw.values.shape
    names = [f"{name}.values", f"{name}.indices", f"{name}.bias"]
    bias = np.zeros(out_channels, np.float32) if bias is None else np.asarray(bias, np.float32).reshape(out_channels)
    tensors = dict(zip(names, [sw.values.astype(np.float32), sw.indices.astype(np.uint8), bias]))
    node = helper.make_node(fmt.SEMI_STRUCTURED_MATMUL, [x] + names, [y], name=name, domain=fmt.DOMAIN,
                            **{fmt.ATTR_OUT_CHANNELS: int(out_channels), fmt.ATTR_IN_CHANNELS: int(half * 2)})
    return node, tensors


def semi_structured_function() -> onnx.FunctionProto:
    """The body: decode positions with Mod/Div (no bitwise ops at opset 17), scatter into [O, I/4, 4], MatMul."""
    def c64(out: str, values: list[int]) -> onnx.NodeProto:
        return helper.make_node("Constant", [], [out], value_ints=values)

    nodes = [
        c64("four", [4]), c64("minus_one", [-1]), c64("group_shape", [0, -1, N]), c64("dense_shape", [0, -1]),
        helper.make_node("Cast", ["indices"], ["idx"], to=TensorProto.INT64),
        helper.make_node("Mod", ["idx", "four"], ["p0"]),
        helper.make_node("Div", ["idx", "four"], ["p1"]),
        helper.make_node("Unsqueeze", ["p0", "minus_one"], ["p0_col"]),
        helper.make_node("Unsqueeze", ["p1", "minus_one"], ["p1_col"]),
        helper.make_node("Concat", ["p0_col", "p1_col"], ["positions"], axis=-1),       # [O, G, 2]
        helper.make_node("Reshape", ["values", "group_shape"], ["group_values"]),        # [O, G, 2]
        helper.make_node("Shape", ["positions"], ["pos_shape"], start=0, end=2),
        helper.make_node("Concat", ["pos_shape", "four"], ["grid_shape"], axis=0),      # [O, G, 4]
        helper.make_node("ConstantOfShape", ["grid_shape"], ["grid_zeros"],
                         value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0])),
        helper.make_node("ScatterElements", ["grid_zeros", "positions", "group_values"], ["grid"], axis=2),
        helper.make_node("Reshape", ["grid", "dense_shape"], ["w_oi"]),
        helper.make_node("Transpose", ["w_oi"], ["w_io"], perm=[1, 0]),
        helper.make_node("MatMul", ["X", "w_io"], ["matmul_out"]),
        helper.make_node("Add", ["matmul_out", "bias"], ["Y"]),
    ]
    return helper.make_function(fmt.DOMAIN, fmt.SEMI_STRUCTURED_MATMUL,
                                inputs=["X", "values", "indices", "bias"], outputs=["Y"], nodes=nodes,
                                opset_imports=[helper.make_opsetid("", fmt.ONNX_OPSET)],
                                attributes=[fmt.ATTR_OUT_CHANNELS, fmt.ATTR_IN_CHANNELS])


"""Model-local ONNX function bodies of the ai.sparsedge ops (standard ops only).

The bodies are the numerical reference for the sparsedge kernels (docs/FORMAT.md,
"Function bodies"): they densify the BSR weight and call the dense op, then clamp.
Attribute values reach the body through attribute references (``ref_attr_name``).
"""

from __future__ import annotations

import onnx
from onnx import AttributeProto, TensorProto, helper

from .. import format as fmt

__all__ = ["function_for"]

_CONV_ATTRS = [fmt.ATTR_BLOCK_SIZE, fmt.ATTR_OUT_CHANNELS, fmt.ATTR_KERNEL_SHAPE, fmt.ATTR_STRIDES,
               fmt.ATTR_PADS, fmt.ATTR_DILATIONS, fmt.ATTR_ACTIVATION_MIN, fmt.ATTR_ACTIVATION_MAX]
_MATMUL_ATTRS = [fmt.ATTR_BLOCK_SIZE, fmt.ATTR_OUT_CHANNELS, fmt.ATTR_ACTIVATION_MIN, fmt.ATTR_ACTIVATION_MAX]


def _ref(name: str, ref: str, kind: int) -> AttributeProto:
    attr = AttributeProto()
    attr.name = name
    attr.ref_attr_name = ref
    attr.type = kind
    return attr


def _ref_node(op: str, inputs: list[str], outputs: list[str], refs: dict[str, tuple[str, int]],
              **attrs) -> onnx.NodeProto:
    node = helper.make_node(op, inputs, outputs, **attrs)
    for name, (ref, kind) in refs.items():
        node.attribute.append(_ref(name, ref, kind))
    return node


def _const_i64(out: str, values: list[int]) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [out], value_ints=values)


def _densify(nodes: list[onnx.NodeProto], in_channels_from: str, in_axis: int) -> str:
    """Append nodes building W_dense [O, I, K] from values/col_indices/row_ptr; returns its name."""
    n = nodes.append
    n(_const_i64("one", [1]))
    n(_const_i64("zero", [0]))
    n(_const_i64("minus_one", [-1]))
    n(_const_i64("axis_in", [in_axis]))
    n(_const_i64("axis_in_end", [in_axis + 1 if in_axis != -1 else 2 ** 62]))
    # Each block's block row: scatter-add a 1 at every interior row start, cumulative sum.
    n(helper.make_node("Cast", ["row_ptr"], ["row_ptr64"], to=TensorProto.INT64))
    n(helper.make_node("Cast", ["col_indices"], ["cols64"], to=TensorProto.INT64))
    n(helper.make_node("Shape", ["values"], ["nnz"], start=0, end=1))
    n(helper.make_node("Shape", ["values"], ["block_shape"], start=1, end=3))  # [B, K]
    n(helper.make_node("Shape", ["row_ptr"], ["rp_len"]))
    n(helper.make_node("Sub", ["rp_len", "one"], ["block_rows"]))
    n(helper.make_node("Add", ["nnz", "one"], ["nnz_plus_one"]))
    n(helper.make_node("ConstantOfShape", ["nnz_plus_one"], ["row_start_zeros"],
                       value=helper.make_tensor("v", TensorProto.INT64, [1], [0])))
    n(helper.make_node("Slice", ["row_ptr64", "one", "minus_one"], ["interior_starts"]))
    n(helper.make_node("Shape", ["interior_starts"], ["interior_len"]))
    n(helper.make_node("ConstantOfShape", ["interior_len"], ["interior_ones"],
                       value=helper.make_tensor("v", TensorProto.INT64, [1], [1])))
    n(helper.make_node("ScatterElements", ["row_start_zeros", "interior_starts", "interior_ones"],
                       ["row_starts"], axis=0, reduction="add"))
    n(helper.make_node("CumSum", ["row_starts", "zero"], ["rows_all"]))
    n(helper.make_node("Slice", ["rows_all", "zero", "nnz"], ["rows"]))
    n(helper.make_node("Unsqueeze", ["rows", "one"], ["rows_col"]))
    n(helper.make_node("Unsqueeze", ["cols64", "one"], ["cols_col"]))
    n(helper.make_node("Concat", ["rows_col", "cols_col"], ["block_index"], axis=1))
    # Zero [rows, I, B, K], scatter the kept blocks, reorder to [rows*B, I, K], keep O rows.
    n(helper.make_node("Shape", [in_channels_from], ["x_shape"]))
    n(helper.make_node("Slice", ["x_shape", "axis_in", "axis_in_end"], ["in_channels"]))
    n(helper.make_node("Concat", ["block_rows", "in_channels", "block_shape"], ["grid_shape"], axis=0))
    n(helper.make_node("ConstantOfShape", ["grid_shape"], ["grid_zeros"],
                       value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0])))
    n(helper.make_node("ScatterND", ["grid_zeros", "block_index", "values"], ["grid"]))
    n(helper.make_node("Transpose", ["grid"], ["grid_t"], perm=[0, 2, 1, 3]))
    n(helper.make_node("Gather", ["block_shape", "one"], ["taps"], axis=0))
    n(helper.make_node("Concat", ["minus_one", "in_channels", "taps"], ["padded_shape"], axis=0))
    n(helper.make_node("Reshape", ["grid_t", "padded_shape"], ["w_padded"]))
    n(_ref_node("Constant", [], ["out_channels"], {"value_int": (fmt.ATTR_OUT_CHANNELS, AttributeProto.INT)}))
    n(helper.make_node("Unsqueeze", ["out_channels", "zero"], ["out_channels_1d"]))
    n(helper.make_node("Slice", ["w_padded", "zero", "out_channels_1d"], ["w_oik"]))
    return "w_oik"


def _clamp(nodes: list[onnx.NodeProto], pre: str) -> None:
    nodes.append(_ref_node("Constant", [], ["act_min"], {"value_float": (fmt.ATTR_ACTIVATION_MIN, AttributeProto.FLOAT)}))
    nodes.append(_ref_node("Constant", [], ["act_max"], {"value_float": (fmt.ATTR_ACTIVATION_MAX, AttributeProto.FLOAT)}))
    nodes.append(helper.make_node("Clip", [pre, "act_min", "act_max"], ["Y"]))


def _conv_function() -> onnx.FunctionProto:
    nodes: list[onnx.NodeProto] = []
    w_oik = _densify(nodes, "X", 1)
    nodes.append(_ref_node("Constant", [], ["kernel_shape"], {"value_ints": (fmt.ATTR_KERNEL_SHAPE, AttributeProto.INTS)}))
    nodes.append(helper.make_node("Concat", ["out_channels_1d", "in_channels", "kernel_shape"], ["w_shape"], axis=0))
    nodes.append(helper.make_node("Reshape", [w_oik, "w_shape"], ["w_dense"]))
    nodes.append(_ref_node("Conv", ["X", "w_dense", "bias"], ["conv_out"], {
        fmt.ATTR_STRIDES: (fmt.ATTR_STRIDES, AttributeProto.INTS),
        fmt.ATTR_PADS: (fmt.ATTR_PADS, AttributeProto.INTS),
        fmt.ATTR_DILATIONS: (fmt.ATTR_DILATIONS, AttributeProto.INTS)}))
    _clamp(nodes, "conv_out")
    return _make_function(fmt.GROUP_SPARSE_CONV, nodes, _CONV_ATTRS)


def _matmul_function() -> onnx.FunctionProto:
    nodes: list[onnx.NodeProto] = []
    w_oik = _densify(nodes, "X", -1)
    nodes.append(helper.make_node("Squeeze", [w_oik, "minus_one"], ["w_oi"]))
    nodes.append(helper.make_node("Transpose", ["w_oi"], ["w_io"], perm=[1, 0]))
    nodes.append(helper.make_node("MatMul", ["X", "w_io"], ["matmul_out"]))
    nodes.append(helper.make_node("Add", ["matmul_out", "bias"], ["linear_out"]))
    _clamp(nodes, "linear_out")
    return _make_function(fmt.GROUP_SPARSE_MATMUL, nodes, _MATMUL_ATTRS)


def _make_function(name: str, nodes: list[onnx.NodeProto], attrs: list[str]) -> onnx.FunctionProto:
    return helper.make_function(
        fmt.DOMAIN, name,
        inputs=["X", "values", "col_indices", "row_ptr", "bias"], outputs=["Y"],
        nodes=nodes, opset_imports=[helper.make_opsetid("", fmt.ONNX_OPSET)],
        attributes=attrs,
    )


def function_for(op_type: str) -> onnx.FunctionProto:
    """The model-local function defining ``op_type`` (GroupSparseConv or GroupSparseMatMul)."""
    if op_type == fmt.GROUP_SPARSE_CONV:
        return _conv_function()
    if op_type == fmt.GROUP_SPARSE_MATMUL:
        return _matmul_function()
    raise KeyError(f"no function body for {op_type!r}")

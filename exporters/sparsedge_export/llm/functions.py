"""Model-local ONNX function bodies (standard opset-17 ops) of the LLM decoder ops.

They let a stock onnxruntime run a sparsedge decoder unchanged and are the
numerical reference for the C++ kernels (docs/FORMAT.md, "LLM decoder ops").
Attribute values reach a body through attribute references. Sizes the body
needs (heads, head dim, sequence lengths) are read from input shapes; the
``num_heads``/``kv_heads`` attributes exist for the runtime and must agree.
"""

from __future__ import annotations

import onnx
from onnx import AttributeProto, TensorProto, helper

from .. import format as fmt

__all__ = ["llm_functions", "rms_norm_function", "rotary_embedding_function", "causal_attention_function"]

_OPSETS = [helper.make_opsetid("", fmt.ONNX_OPSET)]
# Masked scores: the lowest finite float, so a row never turns into NaN (every query sees key 0).
MASKED_SCORE = -3.4028234663852886e38


def _ref_node(op: str, inputs: list[str], outputs: list[str], ref: str, kind: int, attr: str) -> onnx.NodeProto:
    node = helper.make_node(op, inputs, outputs)
    a = AttributeProto()
    a.name, a.ref_attr_name, a.type = attr, ref, kind
    node.attribute.append(a)
    return node


def _i64(out: str, values: list[int]) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [out], value_ints=values)


def _scalar_i64(out: str, value: int) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [out], value=helper.make_tensor(out, TensorProto.INT64, [], [value]))


def _function(name: str, inputs: list[str], outputs: list[str], nodes: list[onnx.NodeProto],
              attributes: list[str]) -> onnx.FunctionProto:
    return helper.make_function(fmt.DOMAIN, name, inputs, outputs, nodes, _OPSETS, attributes)


def rms_norm_function() -> onnx.FunctionProto:
    """y = x / sqrt(mean(x^2 over the last axis) + epsilon) * weight."""
    n = [
        helper.make_node("Mul", ["x", "x"], ["x2"]),
        helper.make_node("ReduceMean", ["x2"], ["mean_sq"], axes=[-1], keepdims=1),
        _ref_node("Constant", [], ["eps"], fmt.ATTR_EPSILON, AttributeProto.FLOAT, "value_float"),
        helper.make_node("Add", ["mean_sq", "eps"], ["var_eps"]),
        helper.make_node("Sqrt", ["var_eps"], ["rms"]),
        helper.make_node("Div", ["x", "rms"], ["normed"]),
        helper.make_node("Mul", ["normed", "weight"], ["y"]),
    ]
    return _function(fmt.RMS_NORM, ["x", "weight"], ["y"], n, [fmt.ATTR_EPSILON])


def rotary_embedding_function() -> onnx.FunctionProto:
    """Rotate pairs of x [B,T,H,D] by theta = position * base^(-2i/D), i in [0, D/2).

    interleaved=1: pair i is (2i, 2i+1) (GGUF/llama.cpp layout);
    interleaved=0: pair i is (i, i + D/2) (rotate-half, Hugging Face layout).
    Both are computed and ``Where`` picks one; the choice is a constant, so a
    runtime (or onnxruntime's constant folding) computes only one.
    """
    n = [
        _scalar_i64("zero", 0), _scalar_i64("one", 1), _scalar_i64("two", 2),
        _i64("axis4", [4]), _i64("two_1d", [2]),
        helper.make_node("Shape", ["x"], ["x_shape"]),
        helper.make_node("Shape", ["x"], ["lead_shape"], start=0, end=3),      # [B, T, H]
        helper.make_node("Shape", ["x"], ["dim_1d"], start=3, end=4),           # [D]
        helper.make_node("Squeeze", ["dim_1d"], ["dim"]),
        helper.make_node("Div", ["dim", "two"], ["half"]),
        helper.make_node("Unsqueeze", ["half", "zero"], ["half_1d"]),
        # inv_freq[i] = base ** (-2 i / D)
        helper.make_node("Range", ["zero", "half", "one"], ["freq_index"]),
        helper.make_node("Cast", ["freq_index"], ["freq_index_f"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["dim"], ["dim_f"], to=TensorProto.FLOAT),
        helper.make_node("Constant", [], ["minus_two"], value_float=-2.0),
        helper.make_node("Mul", ["freq_index_f", "minus_two"], ["exp_num"]),
        helper.make_node("Div", ["exp_num", "dim_f"], ["exponent"]),
        _ref_node("Constant", [], ["base"], fmt.ATTR_BASE, AttributeProto.FLOAT, "value_float"),
        helper.make_node("Pow", ["base", "exponent"], ["inv_freq"]),                 # [D/2]
        helper.make_node("Cast", ["position_ids"], ["pos_f"], to=TensorProto.FLOAT),  # [B, T]
        _i64("axes_2", [2]),
        helper.make_node("Unsqueeze", ["pos_f", "axes_2"], ["pos_col"]),              # [B, T, 1]
        helper.make_node("Mul", ["pos_col", "inv_freq"], ["angles"]),                 # [B, T, D/2]
        helper.make_node("Unsqueeze", ["angles", "axes_2"], ["angles_h"]),            # [B, T, 1, D/2]
        helper.make_node("Cos", ["angles_h"], ["cos"]),
        helper.make_node("Sin", ["angles_h"], ["sin"]),
        # Adjacent pairs: view as [B, T, H, D/2, 2].
        helper.make_node("Concat", ["lead_shape", "half_1d", "two_1d"], ["pair_shape"], axis=0),
        helper.make_node("Reshape", ["x", "pair_shape"], ["x_pairs"]),
        helper.make_node("Gather", ["x_pairs", "zero"], ["ia"], axis=4),
        helper.make_node("Gather", ["x_pairs", "one"], ["ib"], axis=4),
        # Rotate-half pairs: the two halves of the last axis.
        helper.make_node("Split", ["x"], ["ha", "hb"], axis=3),
    ]
    for tag in ("i", "h"):
        a, b = f"{tag}a", f"{tag}b"
        n += [
            helper.make_node("Mul", [a, "cos"], [f"{tag}_a_cos"]),
            helper.make_node("Mul", [b, "sin"], [f"{tag}_b_sin"]),
            helper.make_node("Sub", [f"{tag}_a_cos", f"{tag}_b_sin"], [f"{tag}_first"]),
            helper.make_node("Mul", [a, "sin"], [f"{tag}_a_sin"]),
            helper.make_node("Mul", [b, "cos"], [f"{tag}_b_cos"]),
            helper.make_node("Add", [f"{tag}_a_sin", f"{tag}_b_cos"], [f"{tag}_second"]),
        ]
    n += [
        helper.make_node("Unsqueeze", ["i_first", "axis4"], ["i_first_u"]),
        helper.make_node("Unsqueeze", ["i_second", "axis4"], ["i_second_u"]),
        helper.make_node("Concat", ["i_first_u", "i_second_u"], ["i_pairs"], axis=4),
        helper.make_node("Reshape", ["i_pairs", "x_shape"], ["y_interleaved"]),
        helper.make_node("Concat", ["h_first", "h_second"], ["y_half"], axis=3),
        _ref_node("Constant", [], ["interleaved"], fmt.ATTR_INTERLEAVED, AttributeProto.INT, "value_int"),
        helper.make_node("Cast", ["interleaved"], ["is_interleaved"], to=TensorProto.BOOL),
        helper.make_node("Where", ["is_interleaved", "y_interleaved", "y_half"], ["y"]),
    ]
    return _function(fmt.ROTARY_EMBEDDING, ["x", "position_ids"], ["y"], n, [fmt.ATTR_BASE, fmt.ATTR_INTERLEAVED])


def causal_attention_function() -> onnx.FunctionProto:
    """Grouped-query attention over past + new keys, causal in absolute positions.

    q [B,T,Hq,D], k/v [B,T,Hkv,D], past_k/past_v [B,P,Hkv,D] ->
    out [B,T,Hq*D], present_k/present_v [B,P+T,Hkv,D] (= past ++ new, on axis 1).
    Query head h reads KV head h // (Hq/Hkv); query t (absolute position P+t)
    sees keys 0..P+t; scores are scaled by ``scale`` before the softmax.
    """
    n = [
        helper.make_node("Concat", ["past_k", "k"], ["present_k"], axis=1),
        helper.make_node("Concat", ["past_v", "v"], ["present_v"], axis=1),
        _i64("minus_one", [-1]),
        helper.make_node("Shape", ["q"], ["batch"], start=0, end=1),
        helper.make_node("Shape", ["q"], ["new_len"], start=1, end=2),
        helper.make_node("Shape", ["q"], ["head_dim"], start=3, end=4),
        helper.make_node("Shape", ["k"], ["kv_heads"], start=2, end=3),
        helper.make_node("Shape", ["past_k"], ["past_len"], start=1, end=2),
        helper.make_node("Add", ["past_len", "new_len"], ["total_len"]),
        # q -> [B, Hkv, G*T, D]: the G query heads of one KV head stacked along the rows.
        helper.make_node("Concat", ["batch", "new_len", "kv_heads", "minus_one", "head_dim"], ["q5_shape"], axis=0),
        helper.make_node("Reshape", ["q", "q5_shape"], ["q5"]),
        helper.make_node("Transpose", ["q5"], ["q5_t"], perm=[0, 2, 3, 1, 4]),      # [B, Hkv, G, T, D]
        helper.make_node("Concat", ["batch", "kv_heads", "minus_one", "head_dim"], ["rows_shape"], axis=0),
        helper.make_node("Reshape", ["q5_t", "rows_shape"], ["q_rows"]),
        helper.make_node("Transpose", ["present_k"], ["k_t"], perm=[0, 2, 3, 1]),    # [B, Hkv, D, S]
        helper.make_node("Transpose", ["present_v"], ["v_t"], perm=[0, 2, 1, 3]),    # [B, Hkv, S, D]
        helper.make_node("MatMul", ["q_rows", "k_t"], ["raw_scores"]),               # [B, Hkv, G*T, S]
        _ref_node("Constant", [], ["scale"], fmt.ATTR_SCALE, AttributeProto.FLOAT, "value_float"),
        helper.make_node("Mul", ["raw_scores", "scale"], ["scores"]),
        helper.make_node("Concat", ["batch", "kv_heads", "minus_one", "new_len", "total_len"], ["s5_shape"], axis=0),
        helper.make_node("Reshape", ["scores", "s5_shape"], ["scores5"]),            # [B, Hkv, G, T, S]
        # visible[t, s] = s <= P + t
        helper.make_node("Squeeze", ["past_len"], ["past_scalar"]),
        helper.make_node("Squeeze", ["total_len"], ["total_scalar"]),
        _scalar_i64("zero", 0), _scalar_i64("one", 1),
        helper.make_node("Range", ["past_scalar", "total_scalar", "one"], ["query_pos"]),
        helper.make_node("Unsqueeze", ["query_pos", "one"], ["query_col"]),          # [T, 1]
        helper.make_node("Range", ["zero", "total_scalar", "one"], ["key_pos"]),     # [S]
        helper.make_node("LessOrEqual", ["key_pos", "query_col"], ["visible"]),      # [T, S]
        helper.make_node("Constant", [], ["masked"], value_float=MASKED_SCORE),
        helper.make_node("Where", ["visible", "scores5", "masked"], ["masked_scores"]),
        helper.make_node("Softmax", ["masked_scores"], ["probs5"], axis=-1),
        helper.make_node("Concat", ["batch", "kv_heads", "minus_one", "total_len"], ["probs_shape"], axis=0),
        helper.make_node("Reshape", ["probs5", "probs_shape"], ["probs"]),
        helper.make_node("MatMul", ["probs", "v_t"], ["ctx_rows"]),                  # [B, Hkv, G*T, D]
        helper.make_node("Concat", ["batch", "kv_heads", "minus_one", "new_len", "head_dim"], ["c5_shape"], axis=0),
        helper.make_node("Reshape", ["ctx_rows", "c5_shape"], ["ctx5"]),
        helper.make_node("Transpose", ["ctx5"], ["ctx5_t"], perm=[0, 3, 1, 2, 4]),   # [B, T, Hkv, G, D]
        helper.make_node("Concat", ["batch", "new_len", "minus_one"], ["out_shape"], axis=0),
        helper.make_node("Reshape", ["ctx5_t", "out_shape"], ["out"]),
    ]
    # The delta-attention attributes (docs/DELTA_ATTENTION.md) are declared so nodes may carry them; the body
    # ignores them and computes dense attention, the limit the delta path reaches at threshold 0.
    return _function(fmt.CAUSAL_ATTENTION, ["q", "k", "v", "past_k", "past_v"], ["out", "present_k", "present_v"],
                     n, [fmt.ATTR_NUM_HEADS, fmt.ATTR_KV_HEADS, fmt.ATTR_SCALE, fmt.ATTR_DELTA_WINDOW,
                         fmt.ATTR_DELTA_Q_THRESHOLDS, fmt.ATTR_DELTA_P_THRESHOLD])


def llm_functions() -> list[onnx.FunctionProto]:
    return [rms_norm_function(), rotary_embedding_function(), causal_attention_function()]

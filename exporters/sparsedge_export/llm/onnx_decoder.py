"""The ONNX graph of a llama decoder step with a KV cache (docs/FORMAT.md, "SmolLM2 decoder graph").

Inputs ``input_ids``/``position_ids`` [1, T] and, per layer, ``past_key_i``/
``past_value_i`` [1, P, kv_heads, head_dim]; outputs ``logits`` [1, T, vocab]
and ``present_key_i``/``present_value_i`` [1, P+T, kv_heads, head_dim]. The
same graph serves the prompt (P = 0) and each decode step (T = 1).

Linear layers are standard ``MatMul`` with a constant right operand ``W^T``
([in, out]) so the sparse exporter can swap them for ``GroupSparseMatMul``.
The tied LM head is ``Gemm(transB=1)`` on the embedding table itself, so the
table is stored once. RMSNorm, RoPE and attention are ai.sparsedge ops with
function bodies (functions.py); SwiGLU is standard ops (``Sigmoid``, ``Mul``).
"""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper

from .. import format as fmt
from .functions import llm_functions
from .gguf_model import GgufModel

__all__ = ["build_decoder_graph", "DecoderModel", "input_names", "output_names"]

SEQ, PAST, TOTAL = "sequence", "past_sequence", "total_sequence"


class DecoderModel:
    """The ModelProto without weight bytes, and the weights to store externally (name -> array)."""

    def __init__(self, model: onnx.ModelProto, weights: dict[str, np.ndarray]):
        self.model = model
        self.weights = weights


def input_names(layers: int) -> list[str]:
    names = ["input_ids", "position_ids"]
    for i in range(layers):
        names += [f"past_key_{i}", f"past_value_{i}"]
    return names


def output_names(layers: int) -> list[str]:
    names = ["logits"]
    for i in range(layers):
        names += [f"present_key_{i}", f"present_value_{i}"]
    return names


def _weight_placeholder(name: str, array: np.ndarray) -> TensorProto:
    """An initializer with shape and type only; the writer points it at external data."""
    tensor = TensorProto()
    tensor.name = name
    tensor.data_type = TensorProto.FLOAT
    tensor.dims.extend(array.shape)
    return tensor


def build_decoder_graph(gm: GgufModel) -> DecoderModel:
    c = gm.config
    weights: dict[str, np.ndarray] = {}
    nodes: list[onnx.NodeProto] = []
    small_inits = [
        helper.make_tensor("q_heads_shape", TensorProto.INT64, [4], [0, 0, c.heads, c.head_dim]),
        helper.make_tensor("kv_heads_shape", TensorProto.INT64, [4], [0, 0, c.kv_heads, c.head_dim]),
        helper.make_tensor("rows_shape", TensorProto.INT64, [2], [-1, c.hidden]),
        helper.make_tensor("logits_shape", TensorProto.INT64, [3], [1, -1, c.vocab]),
    ]

    def weight(name: str, array: np.ndarray) -> str:
        weights[name] = np.ascontiguousarray(array, dtype=np.float32)
        return name

    def node(op: str, inputs: list[str], outputs: list[str], name: str, domain: str = "", **attrs) -> None:
        nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain, **attrs))

    def linear(x: str, gguf_name: str, out: str) -> str:
        # GGUF stores [out, in]; MatMul wants the constant right operand [in, out].
        w = weight(gguf_name, gm.weights[gguf_name].T)
        node("MatMul", [x, w], [out], out)
        return out

    def rms_norm(x: str, gguf_name: str, out: str) -> str:
        node(fmt.RMS_NORM, [x, weight(gguf_name, gm.weights[gguf_name])], [out], out, fmt.DOMAIN,
             **{fmt.ATTR_EPSILON: float(c.rms_eps)})
        return out

    embed = weight("token_embd.weight", gm.embedding)
    node("Gather", [embed, "input_ids"], ["embedded"], "embed", axis=0)
    x = "embedded"
    rope = {fmt.ATTR_BASE: float(c.rope_base), fmt.ATTR_INTERLEAVED: 1}
    for i in range(c.layers):
        b = f"blk.{i}"
        h = rms_norm(x, f"{b}.attn_norm.weight", f"{b}.attn_norm")
        q = linear(h, f"{b}.attn_q.weight", f"{b}.q")
        k = linear(h, f"{b}.attn_k.weight", f"{b}.k")
        v = linear(h, f"{b}.attn_v.weight", f"{b}.v")
        node("Reshape", [q, "q_heads_shape"], [f"{b}.q_heads"], f"{b}.q_heads")
        node("Reshape", [k, "kv_heads_shape"], [f"{b}.k_heads"], f"{b}.k_heads")
        node("Reshape", [v, "kv_heads_shape"], [f"{b}.v_heads"], f"{b}.v_heads")
        node(fmt.ROTARY_EMBEDDING, [f"{b}.q_heads", "position_ids"], [f"{b}.q_rot"], f"{b}.q_rot", fmt.DOMAIN, **rope)
        node(fmt.ROTARY_EMBEDDING, [f"{b}.k_heads", "position_ids"], [f"{b}.k_rot"], f"{b}.k_rot", fmt.DOMAIN, **rope)
        node(fmt.CAUSAL_ATTENTION,
             [f"{b}.q_rot", f"{b}.k_rot", f"{b}.v_heads", f"past_key_{i}", f"past_value_{i}"],
             [f"{b}.attn", f"present_key_{i}", f"present_value_{i}"], f"{b}.attention", fmt.DOMAIN,
             **{fmt.ATTR_NUM_HEADS: c.heads, fmt.ATTR_KV_HEADS: c.kv_heads,
                fmt.ATTR_SCALE: float(1.0 / np.sqrt(c.head_dim))})
        o = linear(f"{b}.attn", f"{b}.attn_output.weight", f"{b}.attn_out")
        node("Add", [x, o], [f"{b}.attn_residual"], f"{b}.attn_residual")
        x = f"{b}.attn_residual"
        h = rms_norm(x, f"{b}.ffn_norm.weight", f"{b}.ffn_norm")
        gate = linear(h, f"{b}.ffn_gate.weight", f"{b}.gate")
        up = linear(h, f"{b}.ffn_up.weight", f"{b}.up")
        node("Sigmoid", [gate], [f"{b}.gate_sigmoid"], f"{b}.gate_sigmoid")
        node("Mul", [gate, f"{b}.gate_sigmoid"], [f"{b}.gate_silu"], f"{b}.gate_silu")
        node("Mul", [f"{b}.gate_silu", up], [f"{b}.swiglu"], f"{b}.swiglu")
        d = linear(f"{b}.swiglu", f"{b}.ffn_down.weight", f"{b}.down")
        node("Add", [x, d], [f"{b}.ffn_residual"], f"{b}.ffn_residual")
        x = f"{b}.ffn_residual"
    final = rms_norm(x, "output_norm.weight", "output_norm")
    node("Reshape", [final, "rows_shape"], ["output_rows"], "output_rows")
    head = embed if c.tied_lm_head else weight("output.weight", gm.weights["output.weight"])
    node("Gemm", ["output_rows", head], ["logits_rows"], "lm_head", transB=1)
    node("Reshape", ["logits_rows", "logits_shape"], ["logits"], "logits")

    kv_dims = [c.kv_heads, c.head_dim]
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, SEQ]),
              helper.make_tensor_value_info("position_ids", TensorProto.INT64, [1, SEQ])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, SEQ, c.vocab])]
    for i in range(c.layers):
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_{kind}_{i}", TensorProto.FLOAT, [1, PAST, *kv_dims]))
            outputs.append(helper.make_tensor_value_info(f"present_{kind}_{i}", TensorProto.FLOAT,
                                                         [1, TOTAL, *kv_dims]))
    inits = [_weight_placeholder(n, a) for n, a in weights.items()] + small_inits
    graph = helper.make_graph(nodes, "smollm2_decoder", inputs, outputs, inits)
    model = helper.make_model(graph, functions=llm_functions(),
                              opset_imports=[helper.make_opsetid("", fmt.ONNX_OPSET),
                                             helper.make_opsetid(fmt.DOMAIN, fmt.DOMAIN_VERSION)],
                              producer_name="sparsedge_export.llm")
    model.ir_version = fmt.IR_VERSION
    meta = dict(c.to_json_dict(), rope_interleaved=True,
                weights_note="dequantized from the GGUF file (already rounded to its quantization)",
                source=gm.path.name)
    helper.set_model_props(model, {fmt.META_FORMAT_VERSION: str(fmt.FORMAT_VERSION),
                                   fmt.META_LLM: json.dumps(meta)})
    return DecoderModel(model, weights)

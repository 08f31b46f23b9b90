"""The LLM decoder ops (RMSNorm, RotaryEmbedding, CausalAttention) in the
sparsedge runtime against onnxruntime running their ONNX function bodies,
op by op on small random shapes for every ISA, then the whole SmolLM2-135M
decoder: prompt + greedy decode steps through past/present, same tokens fed
to both runtimes. The whole-model test skips when the GGUF is not cached
(SPARSEDGE_OFFLINE=1) and builds the model once per session.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import sparsedge
from sparsedge_export import format as fmt
from sparsedge_export.llm.functions import llm_functions

ISAS = sparsedge.get_available_isas()
PROMPT = "The capital of France is"
DECODE_STEPS = 32
REL_TOL = 1e-3


def _op_model(op: str, inputs: list[tuple[str, int, list]], outputs: list[str], **attrs) -> bytes:
    node = helper.make_node(op, [n for n, _, _ in inputs], outputs, domain=fmt.DOMAIN, **attrs)
    graph = helper.make_graph(
        [node], "op",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs])
    model = helper.make_model(graph, functions=llm_functions(), ir_version=fmt.IR_VERSION,
                              opset_imports=[helper.make_opsetid("", fmt.ONNX_OPSET),
                                             helper.make_opsetid(fmt.DOMAIN, fmt.DOMAIN_VERSION)])
    return model.SerializeToString()


def _ort(model: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30))


def _check_op(model: bytes, feed: dict, tol: float = 1e-5, threads: tuple = (1,)):
    want = _ort(model).run(None, feed)
    for isa in ISAS:
        for t in threads:
            got = sparsedge.InferenceSession(model, threads=t, isa=isa).run(None, feed)
            assert len(got) == len(want)
            for g, w in zip(got, want):
                assert g.shape == w.shape, (isa, g.shape, w.shape)
                assert _rel_err(g, w) <= tol, (isa, t, _rel_err(g, w))


@pytest.mark.parametrize("shape", [(1, 4, 576), (2, 3, 7), (5, 64)])
def test_rms_norm_matches_function_body(shape):
    rng = np.random.default_rng(0)
    model = _op_model(fmt.RMS_NORM, [("x", TensorProto.FLOAT, list(shape)),
                                     ("weight", TensorProto.FLOAT, [shape[-1]])], ["y"], epsilon=1e-5)
    _check_op(model, {"x": rng.standard_normal(shape, dtype=np.float32),
                      "weight": rng.standard_normal(shape[-1], dtype=np.float32)})


@pytest.mark.parametrize("interleaved", [1, 0])
@pytest.mark.parametrize("shape,pos0", [((1, 4, 3, 64), 0), ((1, 1, 9, 64), 37), ((2, 3, 2, 8), 5)])
def test_rotary_embedding_matches_function_body(interleaved, shape, pos0):
    rng = np.random.default_rng(1)
    b, t = shape[:2]
    model = _op_model(fmt.ROTARY_EMBEDDING, [("x", TensorProto.FLOAT, list(shape)),
                                             ("position_ids", TensorProto.INT64, [b, t])], ["y"],
                      base=100000.0, interleaved=interleaved)
    pos = np.tile(np.arange(pos0, pos0 + t, dtype=np.int64), (b, 1))
    _check_op(model, {"x": rng.standard_normal(shape, dtype=np.float32), "position_ids": pos})


@pytest.mark.parametrize("hq,hkv", [(9, 3), (4, 4), (2, 1)])
@pytest.mark.parametrize("past", [0, 3])
@pytest.mark.parametrize("new", [1, 4])
def test_causal_attention_matches_function_body(hq, hkv, past, new):
    rng = np.random.default_rng(2)
    d = 64 if hq == 9 else 12
    io = [("q", [1, new, hq, d]), ("k", [1, new, hkv, d]), ("v", [1, new, hkv, d]),
          ("past_k", [1, past, hkv, d]), ("past_v", [1, past, hkv, d])]
    model = _op_model(fmt.CAUSAL_ATTENTION, [(n, TensorProto.FLOAT, s) for n, s in io],
                      ["out", "present_k", "present_v"], num_heads=hq, kv_heads=hkv, scale=1.0 / math.sqrt(d))
    feed = {n: rng.standard_normal(s, dtype=np.float32) * 2 for n, s in io}
    _check_op(model, feed, threads=(1, 3))


def test_causal_attention_rejects_mismatched_heads():
    model = _op_model(fmt.CAUSAL_ATTENTION,
                      [(n, TensorProto.FLOAT, None) for n in ("q", "k", "v", "past_k", "past_v")],
                      ["out", "present_k", "present_v"], num_heads=4, kv_heads=2, scale=0.5)
    x = np.zeros((1, 1, 4, 8), np.float32)
    kv = np.zeros((1, 1, 3, 8), np.float32)  # 3 KV heads, the attribute says 2
    with pytest.raises(sparsedge.SparsedgeError):
        sparsedge.InferenceSession(model).run(None, {"q": x, "k": kv, "v": kv, "past_k": kv[:, :0], "past_v": kv[:, :0]})


def test_smollm2_decoder_matches_onnxruntime(smollm2_dir):
    from tokenizers import Tokenizer

    model = smollm2_dir / "model.onnx"
    tokenizer = Tokenizer.from_file(str(smollm2_dir / "tokenizer.json"))
    ids = tokenizer.encode(PROMPT).ids
    ours = sparsedge.InferenceSession(model, threads=1)
    theirs = _ort_file(model)
    names = [o.name for o in theirs.get_outputs()]
    past_names = [i.name for i in theirs.get_inputs() if i.name.startswith("past_")]
    assert len(past_names) == len(names) - 1
    empty = np.zeros((1, 0, 3, 64), np.float32)
    our_past = their_past = [empty] * len(past_names)
    new, position, generated, worst = ids, 0, [], 0.0
    for _ in range(1 + DECODE_STEPS):
        base = {"input_ids": np.array([new], np.int64),
                "position_ids": np.arange(position, position + len(new), dtype=np.int64)[None]}
        got = ours.run(names, {**base, **dict(zip(past_names, our_past))})
        want = theirs.run(names, {**base, **dict(zip(past_names, their_past))})
        worst = max(worst, _rel_err(got[0], want[0]))
        for g, w in zip(got[1:], want[1:]):
            assert g.shape == w.shape == (1, position + len(new), 3, 64)
        position += len(new)
        new = [int(want[0][0, -1].argmax())]  # both runtimes get the same tokens
        generated += new
        our_past, their_past = got[1:], want[1:]
    assert worst <= REL_TOL, worst
    assert tokenizer.decode(generated).startswith(" Paris"), tokenizer.decode(generated)


def _ort_file(path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

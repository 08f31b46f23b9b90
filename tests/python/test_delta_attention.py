"""Temporal-delta attention (docs/DELTA_ATTENTION.md): the CausalAttention op's delta path in the sparsedge
runtime against onnxruntime's dense function body (threshold 0, window covering the context) and against the
numpy reference of the delta algorithm (llm/delta.py), across prefill chunks and decode steps; the op's MAC
counters; bad thresholds at export and at load; and ``export-llm --delta-attention`` + ``perplexity
--report-attention-sparsity`` end to end on a tiny synthetic llama.
"""

from __future__ import annotations

import math
import re

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import sparsedge
from sparsedge_export import format as fmt
from sparsedge_export.cli import main as cli_main
from sparsedge_export.llm.delta import (DeltaAttentionError, DeltaConfig, check_threshold,
                                        delta_attention_reference, set_attention_attributes)
from sparsedge_export.llm.functions import llm_functions

HQ, HKV, D = 4, 2, 16
SCALE = 0.25


def _model(T_dim="T", P_dim="P", **delta) -> bytes:
    attrs = {fmt.ATTR_NUM_HEADS: HQ, fmt.ATTR_KV_HEADS: HKV, fmt.ATTR_SCALE: SCALE, **delta}
    node = helper.make_node(fmt.CAUSAL_ATTENTION, ["q", "k", "v", "past_k", "past_v"],
                            ["out", "present_k", "present_v"], name="blk.0.attention", domain=fmt.DOMAIN, **attrs)
    graph = helper.make_graph(
        [node], "attn",
        [helper.make_tensor_value_info("q", TensorProto.FLOAT, [1, T_dim, HQ, D]),
         helper.make_tensor_value_info("k", TensorProto.FLOAT, [1, T_dim, HKV, D]),
         helper.make_tensor_value_info("v", TensorProto.FLOAT, [1, T_dim, HKV, D]),
         helper.make_tensor_value_info("past_k", TensorProto.FLOAT, [1, P_dim, HKV, D]),
         helper.make_tensor_value_info("past_v", TensorProto.FLOAT, [1, P_dim, HKV, D])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("out", "present_k", "present_v")])
    model = helper.make_model(graph, functions=llm_functions(), ir_version=fmt.IR_VERSION,
                              opset_imports=[helper.make_opsetid("", fmt.ONNX_OPSET),
                                             helper.make_opsetid(fmt.DOMAIN, fmt.DOMAIN_VERSION)])
    return model.SerializeToString()


def _delta_attrs(window, q_thr, p_thr):
    return {fmt.ATTR_DELTA_WINDOW: window, fmt.ATTR_DELTA_Q_THRESHOLDS: [float(x) for x in np.broadcast_to(q_thr, (HQ,))],
            fmt.ATTR_DELTA_P_THRESHOLD: float(p_thr)}


def _data(T, seed=0):
    """Slowly drifting queries (consecutive rows correlated, as in a real model) and random keys/values."""
    rng = np.random.default_rng(seed)
    q = np.cumsum(rng.standard_normal((T, HQ, D)) * 0.3, axis=0) + rng.standard_normal((1, HQ, D))
    k = rng.standard_normal((T, HKV, D))
    v = rng.standard_normal((T, HKV, D))
    return q.astype(np.float32), k.astype(np.float32), v.astype(np.float32)


def _run_chunks(session, q, k, v, chunks):
    """Runs the sequence through ``session`` in chunks (a prefill, then decode steps); returns out [T, HQ, D]."""
    past_k = np.zeros((1, 0, HKV, D), np.float32)
    past_v = np.zeros((1, 0, HKV, D), np.float32)
    outs, lo = [], 0
    for n in chunks:
        hi = lo + n
        out, past_k, past_v = session.run(None, {"q": q[None, lo:hi], "k": k[None, lo:hi], "v": v[None, lo:hi],
                                                 "past_k": past_k, "past_v": past_v})
        outs.append(out[0].reshape(n, HQ, D))
        lo = hi
    return np.concatenate(outs)


def _rel_err(got, ref):
    return float(np.abs(got - ref).max() / np.abs(ref).max())


T = 48
CHUNKS = [20, 1, 1, 5, 1, 1, 1, 1, 17]  # a prefill chunk, decode steps, a second chunk after a cache
assert sum(CHUNKS) == T


def _dense(q, k, v):
    session = ort.InferenceSession(_model(), providers=["CPUExecutionProvider"])
    return _run_chunks(session, q, k, v, [T])


def test_threshold_zero_matches_dense_attention():
    q, k, v = _data(T)
    ref = _dense(q, k, v)
    session = sparsedge.InferenceSession(_model(**_delta_attrs(4, 0.0, 0.0)))
    got = _run_chunks(session, q, k, v, CHUNKS)
    assert _rel_err(got, ref) <= 1e-5
    stats = session.get_stats()
    assert stats["attention.macs_done"] > stats["attention.macs_dense"] * 0.5  # the delta path really ran
    assert stats["attention.state_bytes"] > 0


@pytest.mark.parametrize("window", [T, T + 100])
def test_window_covering_the_context_is_exact(window):
    q, k, v = _data(T, seed=1)
    ref = _dense(q, k, v)
    session = sparsedge.InferenceSession(_model(**_delta_attrs(window, 5.0, 0.5)))  # huge thresholds: unused
    got = _run_chunks(session, q, k, v, CHUNKS)
    assert _rel_err(got, ref) <= 1e-5
    stats = session.get_stats()
    assert stats["attention.macs_done"] == stats["attention.macs_dense"]


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("window,a,p", [(4, 0.3, 0.01), (8, 0.6, 0.003), (1, 0.2, 0.05)])
def test_runtime_matches_numpy_delta_reference(window, a, p, threads):
    q, k, v = _data(T, seed=2)
    thr = a * np.sqrt((q.astype(np.float64) ** 2).mean(axis=(0, 2)))
    stats = {}
    ref = delta_attention_reference(q, k, v, SCALE, window, thr, p, stats)
    session = sparsedge.InferenceSession(_model(**_delta_attrs(window, thr, p)), threads=threads)
    got = _run_chunks(session, q, k, v, CHUNKS)
    assert _rel_err(got, ref) <= 1e-4
    dense = _dense(q, k, v)
    assert _rel_err(got, dense) > 1e-4  # the approximation is really in use
    ours = session.get_stats()
    assert ours["attention.macs_dense"] == stats["macs_dense"]
    assert abs(ours["attention.macs_done"] - stats["macs_done"]) <= 1e-3 * stats["macs_dense"]
    assert ours["attention.macs_done"] < 0.8 * ours["attention.macs_dense"]
    session.reset_stats()
    assert session.get_stats().get("attention.macs_dense", 0.0) == 0.0


def test_state_resets_at_empty_cache_and_reseeds_on_a_foreign_cache():
    q, k, v = _data(T, seed=3)
    attrs = _delta_attrs(4, 0.2 * np.abs(q).mean(), 0.01)
    session = sparsedge.InferenceSession(_model(**attrs))
    first = _run_chunks(session, q, k, v, CHUNKS)
    again = _run_chunks(session, q, k, v, CHUNKS)  # P = 0 again: a new sequence, same results
    np.testing.assert_array_equal(first, again)
    assert session.get_stats()["attention.delta_reseeds"] == 0
    # A decode step on a cache the op did not build: rebuilt from the cache, close to dense.
    rng = np.random.default_rng(9)
    pk, pv = rng.standard_normal((2, 1, 30, HKV, D)).astype(np.float32)
    feed = {"q": q[None, :1], "k": k[None, :1], "v": v[None, :1], "past_k": pk, "past_v": pv}
    got = session.run(None, feed)[0]
    want = ort.InferenceSession(_model(), providers=["CPUExecutionProvider"]).run(None, feed)[0]
    assert session.get_stats()["attention.delta_reseeds"] == 1
    assert np.isfinite(got).all() and _rel_err(got, want) < 0.1


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_bad_threshold_is_an_error_at_load(bad):
    with pytest.raises(sparsedge.InvalidModelError, match=r"blk\.0\.attention.*delta_q_thresholds"):
        sparsedge.InferenceSession(_model(**_delta_attrs(4, [0.1, bad, 0.1, 0.1], 0.01)))
    with pytest.raises(sparsedge.InvalidModelError, match=r"blk\.0\.attention.*delta_p_threshold"):
        sparsedge.InferenceSession(_model(**_delta_attrs(4, 0.1, bad)))


def test_bad_window_or_threshold_count_is_an_error_at_load():
    with pytest.raises(sparsedge.InvalidModelError, match="delta_window"):
        sparsedge.InferenceSession(_model(**_delta_attrs(-1, 0.1, 0.01)))
    attrs = _delta_attrs(4, 0.1, 0.01)
    attrs[fmt.ATTR_DELTA_Q_THRESHOLDS] = [0.1, 0.1]
    with pytest.raises(sparsedge.InvalidModelError, match="num_heads"):
        sparsedge.InferenceSession(_model(**attrs))


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), float("-inf")])
def test_bad_threshold_is_an_error_at_export(bad):
    with pytest.raises(DeltaAttentionError, match="finite and >= 0"):
        check_threshold("--delta-threshold", bad)
    cfg = DeltaConfig(window=4, q_thresholds=[[0.1, bad]], p_threshold=0.01)
    with pytest.raises(DeltaAttentionError):
        cfg.validate()
    model = helper.make_model(helper.make_graph(
        [helper.make_node(fmt.CAUSAL_ATTENTION, ["q", "k", "v", "pk", "pv"], ["o", "a", "b"], name="blk.0.attention",
                          domain=fmt.DOMAIN)], "g", [], []))
    with pytest.raises(DeltaAttentionError, match="blk.0.attention"):
        set_attention_attributes(model, DeltaConfig(window=4, q_thresholds=[[0.1, bad]], p_threshold=0.01))


def test_onnxruntime_runs_a_delta_node_as_dense():
    q, k, v = _data(T, seed=4)
    session = ort.InferenceSession(_model(**_delta_attrs(4, 0.5, 0.01)), providers=["CPUExecutionProvider"])
    assert _rel_err(_run_chunks(session, q, k, v, [T]), _dense(q, k, v)) <= 1e-6


# ---------------------------------------------------------------- CLI end to end on a tiny llama
def _tiny_export_inputs(tmp_path):
    """A tiny llama GGUF, a calibration text and the output directory for export-llm."""
    from test_llm_export import _tiny_llama_gguf

    text = tmp_path / "text.txt"
    text.write_text("the theory then the thesis " * 40, encoding="utf-8")
    return _tiny_llama_gguf(tmp_path / "tiny.gguf"), text, tmp_path / "m"


def test_export_and_perplexity_report(tmp_path, capsys):
    gguf, text, out = _tiny_export_inputs(tmp_path)
    assert cli_main(["export-llm", str(gguf), "-o", str(out), "--sparsity", "none", "--delta-attention",
                     "--delta-threshold", "0.3", "--local-window", "4", "--calibration", str(text)]) == 0
    capsys.readouterr()
    assert cli_main(["perplexity", str(out), "--text", str(text), "--context", "32", "--max-tokens", "96",
                     "--runtime", "sparsedge", "--report-attention-sparsity", "--prefill-chunk", "8"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"prefill attention sparsity: \d+\.\d\d%", lines[-3])
    m = re.fullmatch(r"attention sparsity: (\d+\.\d\d)%", lines[-2])
    assert m and 0 < float(m.group(1)) < 100
    assert re.fullmatch(r"perplexity: \d+\.\d+", lines[-1])
    # The file still runs in onnxruntime (dense body) and gives a finite perplexity close to the runtime's.
    assert cli_main(["perplexity", str(out), "--text", str(text), "--context", "32", "--max-tokens", "96"]) == 0
    assert math.isfinite(float(capsys.readouterr().out.strip().splitlines()[-1].split(": ")[1]))
    # Bad settings are one-line errors.
    for bad in (["--delta-threshold", "-1"], ["--delta-threshold", "nan"], ["--delta-prob-threshold", "inf"]):
        assert cli_main(["export-llm", str(gguf), "-o", str(tmp_path / "bad"), "--sparsity", "none",
                         "--delta-attention", "--calibration", str(text), *bad]) == 2
        assert "finite and >= 0" in capsys.readouterr().err
    assert cli_main(["perplexity", str(out), "--text", str(text), "--report-attention-sparsity"]) == 2
    assert "--runtime sparsedge" in capsys.readouterr().err


def test_delta_target_calibration_meets_its_estimate(tmp_path):
    """--delta-target bisects the relative level; the chosen level's estimated sparsity meets the target."""
    import json

    import onnx

    gguf, text, out = _tiny_export_inputs(tmp_path)
    assert cli_main(["export-llm", str(gguf), "-o", str(out), "--sparsity", "none", "--delta-attention",
                     "--delta-target", "0.3", "--local-window", "4", "--calibration", str(text)]) == 0
    model = onnx.load(str(out / "model.onnx"), load_external_data=False)
    meta = json.loads({p.key: p.value for p in model.metadata_props}[fmt.META_DELTA_ATTENTION])
    assert meta["window"] == 4 and meta["estimated_sparsity"] >= 0.3 and meta["level"] > 0
    nodes = [n for n in model.graph.node if n.op_type == fmt.CAUSAL_ATTENTION]
    for node in nodes:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        assert attrs[fmt.ATTR_DELTA_WINDOW] == 4 and len(attrs[fmt.ATTR_DELTA_Q_THRESHOLDS]) == 4
        assert all(t > 0 for t in attrs[fmt.ATTR_DELTA_Q_THRESHOLDS])
    with pytest.raises(DeltaAttentionError, match="not reachable"):
        from sparsedge_export.llm import load_gguf
        from sparsedge_export.llm.delta import calibrate

        calibrate(load_gguf(gguf, progress=False), text.read_text(), window=400, target=0.9, progress=False)

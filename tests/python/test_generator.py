"""sparsedge.Generator on the real SmolLM2-135M decoder: the preallocated KV
cache path (present outputs bound into one buffer per layer, plans reused
per token, chunked prefill) gives the same logits as plain session runs
with past/present copied through NumPy; greedy text; stop tokens; streaming
UTF-8; and every bad input as a clear error."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import sparsedge
from sparsedge.errors import InvalidArgumentError, InvalidModelError, ModelFileNotFoundError

PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def gen(smollm2_dir):
    return sparsedge.Generator(smollm2_dir, max_context=256, prefill_chunk=4)


def _session_logits(model, ids, steps):
    """Logits of every position via InferenceSession (past/present through NumPy)."""
    session = sparsedge.InferenceSession(str(model))
    names = [o.name for o in session.get_outputs()]
    layers = sum(n.startswith("present_key_") for n in names)
    past = {f"past_{k}_{i}": np.zeros((1, 0, 3, 64), np.float32) for i in range(layers) for k in ("key", "value")}
    out_rows, position = [], 0
    for chunk in [ids] + [[t] for t in steps]:
        feeds = {"input_ids": np.array([chunk], np.int64),
                 "position_ids": np.arange(position, position + len(chunk), dtype=np.int64)[None], **past}
        outs = dict(zip(names, session.run(None, feeds)))
        out_rows.append(outs["logits"][0, -1])
        past = {f"past_{k}_{i}": outs[f"present_{k}_{i}"] for i in range(layers) for k in ("key", "value")}
        position += len(chunk)
    return out_rows


def test_kv_cache_path_matches_session_runs(gen, smollm2_dir):
    ids = gen.encode(PROMPT)
    steps = [11, 253, 1000, 42, 7042, 30]
    ref = _session_logits(smollm2_dir / "model.onnx", ids, steps)
    core = gen._gen
    core.reset()
    core.feed(ids)  # 5 tokens in chunks of 4: two runs
    got = [core.logits()]
    for t in steps:
        core.feed([t])
        got.append(core.logits())
    for a, b in zip(got, ref):
        assert np.abs(a - b).max() <= 1e-4 * np.abs(b).max()
    assert core.position() == len(ids) + len(steps)
    # The session planned once (at construction) and reused that layout for every run.
    stats = core.stats()
    assert stats["session.plans_placed"] == 0
    assert stats["session.plans_reused"] >= 1 + len(steps)


def test_chunk_size_does_not_change_logits(gen, smollm2_dir):
    text = "It is a truth universally acknowledged, that a single man in possession of a good fortune"
    ids = gen.encode(text)
    core = gen._gen
    core.reset()
    core.feed(ids)
    chunked = core.logits()
    whole = sparsedge.Generator(smollm2_dir, max_context=64, prefill_chunk=64)
    whole._gen.feed(ids)
    ref = whole._gen.logits()
    assert np.abs(chunked - ref).max() <= 1e-4 * np.abs(ref).max()


def test_long_prefill_skips_the_lm_head_and_keeps_the_logits(smollm2_dir):
    # 150 tokens. Chunk 96: 96 rows compute the KV cache only, then 54 rows with
    # logits (at most 64 rows run whole). Chunk 256: 149 rows without logits, then
    # the last token alone. Both give the logits of one whole-prompt session run,
    # and every run reuses the reserved plan (fewer nodes fit its arena).
    ids = list(range(1000, 1150))
    ref = _session_logits(smollm2_dir / "model.onnx", ids, [])[0]
    for chunk in (96, 256):
        g = sparsedge.Generator(smollm2_dir, max_context=256, prefill_chunk=chunk)
        g._gen.feed(ids)
        got = g._gen.logits()
        assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max(), chunk
        assert g._gen.position() == len(ids)
        stats = g._gen.stats()
        assert stats["session.plans_placed"] == 0 and stats["session.plans_reused"] >= 2


def test_session_runs_only_what_the_requested_outputs_need(smollm2_dir):
    # The KV cache of layer 0 needs layer 0's attention only: 1/30 of the
    # attention work of a full run (counted by the CausalAttention ops).
    session = sparsedge.InferenceSession(str(smollm2_dir / "model.onnx"))
    feeds = {"input_ids": np.array([[1, 2, 3, 4]], np.int64), "position_ids": np.arange(4, dtype=np.int64)[None]}
    feeds.update({i.name: np.zeros((1, 0, 3, 64), np.float32) for i in session.get_inputs() if i.name.startswith("past")})
    names = [o.name for o in session.get_outputs()]
    full = dict(zip(names, session.run(None, feeds)))
    full_macs = session.get_stats()["attention.macs_dense"]
    session.reset_stats()
    (key0,) = session.run(["present_key_0"], feeds)
    np.testing.assert_array_equal(key0, full["present_key_0"])
    layers = sum(n.startswith("present_key_") for n in names)
    assert session.get_stats()["attention.macs_dense"] * layers == full_macs
    session.reset_stats()
    (logits,) = session.run(["logits"], feeds)
    np.testing.assert_array_equal(logits, full["logits"])
    assert session.get_stats()["attention.macs_dense"] == full_macs


def test_greedy_paris_and_streaming(gen):
    pieces = list(gen.generate(PROMPT, max_new_tokens=3))
    text = "".join(pieces)
    assert text.startswith(" Paris"), text
    ids = list(gen.generate_ids(PROMPT, max_new_tokens=3))
    assert text == sparsedge.Tokenizer(gen.model_dir / "tokenizer.json").decode(ids, skip_special_tokens=True)
    assert gen.last_stats.new_tokens == 3 and gen.last_stats.stopped_by == "max_new_tokens"


def test_stop_tokens_end_generation(gen):
    first = next(iter(gen.generate_ids(PROMPT, max_new_tokens=1)))
    out = list(gen.generate_ids(PROMPT, max_new_tokens=5, stop_ids=[first]))
    assert out == [] and gen.last_stats.stopped_by == "stop_token"


def test_chat_template_and_default_stop(gen):
    ids = gen.encode("Hi", chat=True)
    assert ids[0] == 1  # <|im_start|> (system turn from the template)
    text = sparsedge.Tokenizer(gen.model_dir / "tokenizer.json").decode(ids)
    assert text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert "You are a helpful AI assistant" in text
    out = list(gen.generate_ids("What is 2+2? Answer with one word.", max_new_tokens=40, chat=True))
    assert gen.last_stats.stopped_by in ("stop_token", "max_new_tokens")
    assert 2 not in out  # <|im_end|> ends generation and is not emitted


def test_sampling_is_seeded(gen):
    a = list(gen.generate_ids(PROMPT, 8, temperature=0.9, top_p=0.95, seed=3))
    b = list(gen.generate_ids(PROMPT, 8, temperature=0.9, top_p=0.95, seed=3))
    assert a == b


def test_context_fills_and_stops(smollm2_dir):
    small = sparsedge.Generator(smollm2_dir, max_context=8, prefill_chunk=4)
    ids = small.encode(PROMPT)  # 5 tokens
    out = list(small.generate_ids(ids, max_new_tokens=50, stop_ids=[]))
    assert len(out) == 8 - len(ids) + 1  # the last token is sampled from a full cache, not fed
    assert small.last_stats.stopped_by == "context_full"


@pytest.mark.parametrize("kwargs, match", [
    (dict(temperature=-1.0), "temperature"),
    (dict(temperature=float("nan")), "temperature"),
    (dict(top_p=0.0), "top_p"),
    (dict(top_p=1.5), "top_p"),
    (dict(top_k=-1), "top_k"),
])
def test_invalid_sampling_parameters(gen, kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        list(gen.generate_ids(PROMPT, 4, **kwargs))


def test_empty_and_too_long_prompts(gen):
    with pytest.raises(InvalidArgumentError, match="empty"):
        list(gen.generate(""))
    with pytest.raises(InvalidArgumentError, match="empty"):
        gen._gen.feed([])
    with pytest.raises(InvalidArgumentError, match="context holds 256"):
        list(gen.generate_ids([11] * 257))
    with pytest.raises(InvalidArgumentError, match="outside the vocabulary"):
        gen._gen.feed([10**6])
    with pytest.raises(InvalidArgumentError, match="max_new_tokens"):
        list(gen.generate_ids(PROMPT, -1))
    # A failed feed leaves the cache usable.
    gen._gen.reset()
    gen._gen.feed([11] * 250)
    with pytest.raises(InvalidArgumentError, match="do not fit the context"):
        gen._gen.feed([11] * 10)
    assert gen._gen.position() == 250


def test_bad_model_directories(tmp_path, smollm2_dir, mobilenet_v1_path):
    with pytest.raises(ModelFileNotFoundError):
        sparsedge.Generator(tmp_path / "missing")
    with pytest.raises(ModelFileNotFoundError, match="model.onnx"):
        sparsedge.Generator(tmp_path)
    cnn = tmp_path / "cnn"
    cnn.mkdir()
    shutil.copy(mobilenet_v1_path, cnn / "model.onnx")
    shutil.copy(smollm2_dir / "tokenizer.json", cnn / "tokenizer.json")
    with pytest.raises(InvalidModelError, match="not an LLM decoder"):
        sparsedge.Generator(cnn)
    with pytest.raises(InvalidArgumentError, match="context length"):
        sparsedge.Generator(smollm2_dir, max_context=10**6)
    with pytest.raises(InvalidArgumentError, match="prefill_chunk"):
        sparsedge.Generator(smollm2_dir, prefill_chunk=0)


def test_malformed_generation_config(tmp_path, smollm2_dir):
    d = tmp_path / "m"
    d.mkdir()
    for name in ("model.onnx", "model.onnx.data", "tokenizer.json"):
        (d / name).symlink_to(smollm2_dir / name)
    (d / "generation_config.json").write_text("{not json")
    with pytest.raises(InvalidModelError, match="generation_config.json"):
        sparsedge.Generator(d)
    (d / "generation_config.json").write_text(json.dumps({"stop_token_ids": "2"}))
    with pytest.raises(InvalidModelError, match="stop_token_ids"):
        sparsedge.Generator(d)

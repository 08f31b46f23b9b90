"""SmolLM2-135M from GGUF to an ONNX decoder with a KV cache (sparsedge_export.llm).

onnxruntime on the exported file is checked against the independent numpy
reference (prompt, chunked prefill and 8 decode steps through past/present),
greedy decoding is checked on "The capital of France is" -> " Paris", the
tokenizer against a pure-Python byte-level BPE, and bad GGUF files against
LlmExportError. The weights are the Q4_1/Q8_0 GGUF dequantized to float32.
The small op tests need no asset; the rest skip when the GGUF is not cached
(SPARSEDGE_OFFLINE=1) and build the model once per session.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from sparsedge_export import format as fmt
from sparsedge_export.llm import LlmExportError, ReferenceDecoder, build_decoder_dir, build_tokenizer, load_gguf
from sparsedge_export.llm.functions import llm_functions
from sparsedge_export.llm.reference import rms_norm, rope_adjacent_pairs, softmax

PROMPT = "The capital of France is"
DECODE_STEPS = 8
REL_TOL = 1e-3


def _session(model_or_path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    source = str(model_or_path) if isinstance(model_or_path, Path) else model_or_path.SerializeToString()
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def _rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(got - ref).max() / np.abs(ref).max())


# ---------------------------------------------------------------- the ops' function bodies, small shapes
def _op_model(op: str, inputs: list[tuple[str, int, list]], outputs: list[str], **attrs) -> onnx.ModelProto:
    node = helper.make_node(op, [n for n, _, _ in inputs], outputs, domain=fmt.DOMAIN, **attrs)
    graph = helper.make_graph([node], "op", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs])
    model = helper.make_model(graph, functions=llm_functions(),
                              opset_imports=[helper.make_opsetid("", fmt.ONNX_OPSET),
                                             helper.make_opsetid(fmt.DOMAIN, fmt.DOMAIN_VERSION)])
    model.ir_version = fmt.IR_VERSION
    return model


def test_rms_norm_body_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 5, 24)).astype(np.float32)
    w = rng.standard_normal(24).astype(np.float32)
    model = _op_model(fmt.RMS_NORM, [("x", TensorProto.FLOAT, [1, 5, 24]), ("w", TensorProto.FLOAT, [24])], ["y"],
                      epsilon=1e-5)
    (y,) = _session(model).run(None, {"x": x, "w": w})
    assert _rel_err(y, rms_norm(x, w, 1e-5)) < 1e-6


@pytest.mark.parametrize("interleaved", [1, 0])
def test_rotary_embedding_body_both_layouts(interleaved):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 4, 3, 16)).astype(np.float32)
    pos = np.array([[7, 8, 9, 10]], np.int64)
    model = _op_model(fmt.ROTARY_EMBEDDING, [("x", TensorProto.FLOAT, [1, 4, 3, 16]),
                                             ("pos", TensorProto.INT64, [1, 4])], ["y"],
                      base=10000.0, interleaved=interleaved)
    (y,) = _session(model).run(None, {"x": x, "pos": pos})
    if interleaved:
        expected = rope_adjacent_pairs(x[0], pos[0], 10000.0)
    else:  # rotate-half = adjacent pairs after moving element i+D/2 next to element i
        order = np.stack([np.arange(8), np.arange(8) + 8], axis=1).reshape(-1)
        expected = np.empty_like(x[0])
        expected[..., order] = rope_adjacent_pairs(x[0][..., order], pos[0], 10000.0)
    assert _rel_err(y[0], expected) < 1e-5


@pytest.mark.parametrize("past_len,new_len", [(0, 5), (3, 2), (6, 1)])
def test_causal_attention_body_gqa_with_past(past_len, new_len):
    rng = np.random.default_rng(2 + past_len)
    hq, hkv, d = 6, 2, 8
    q = rng.standard_normal((1, new_len, hq, d)).astype(np.float32)
    k, v = (rng.standard_normal((1, new_len, hkv, d)).astype(np.float32) for _ in range(2))
    pk, pv = (rng.standard_normal((1, past_len, hkv, d)).astype(np.float32) for _ in range(2))
    model = _op_model(fmt.CAUSAL_ATTENTION,
                      [("q", TensorProto.FLOAT, [1, new_len, hq, d]), ("k", TensorProto.FLOAT, [1, new_len, hkv, d]),
                       ("v", TensorProto.FLOAT, [1, new_len, hkv, d]),
                       ("pk", TensorProto.FLOAT, [1, past_len, hkv, d]),
                       ("pv", TensorProto.FLOAT, [1, past_len, hkv, d])],
                      ["out", "present_k", "present_v"], num_heads=hq, kv_heads=hkv, scale=0.3)
    out, present_k, present_v = _session(model).run(None, {"q": q, "k": k, "v": v, "pk": pk, "pv": pv})
    keys, values = np.concatenate([pk, k], 1)[0], np.concatenate([pv, v], 1)[0]
    np.testing.assert_array_equal(present_k[0], keys)
    np.testing.assert_array_equal(present_v[0], values)
    expected = np.zeros((new_len, hq, d))
    for h in range(hq):  # head by head, the obvious way
        kh, vh = keys[:, h // (hq // hkv)], values[:, h // (hq // hkv)]
        for t in range(new_len):
            seen = past_len + t + 1
            p = softmax(0.3 * (kh[:seen] @ q[0, t, h]))
            expected[t, h] = p @ vh[:seen]
    assert _rel_err(out[0], expected.reshape(new_len, hq * d)) < 1e-5


# ---------------------------------------------------------------- a tiny synthetic llama GGUF (no asset)
def _tiny_llama_gguf(path: Path, seed: int = 0) -> Path:
    """2 layers, hidden 16, 4 query / 2 KV heads, byte-level vocab (256 bytes + 2 merges + 2 specials)."""
    import gguf

    rng = np.random.default_rng(seed)
    layers, hidden, heads, kv_heads, ffn = 2, 16, 4, 2, 32
    byte_chars = list(_bytes_to_unicode().values())
    tokens = byte_chars + ["Ġt", "he", "<|im_start|>", "<|im_end|>"]
    types = [1] * (len(tokens) - 2) + [3, 3]
    vocab, kv = len(tokens), hidden // heads * kv_heads
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(layers)
    writer.add_context_length(64)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(["Ġ t", "h e"])
    writer.add_bos_token_id(vocab - 2)
    writer.add_eos_token_id(vocab - 1)

    def w(*shape, scale=0.3):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    writer.add_tensor("token_embd.weight", w(vocab, hidden, scale=1.0))
    writer.add_tensor("output_norm.weight", 1 + w(hidden, scale=0.1))
    for i in range(layers):
        for name, shape in (("attn_norm", (hidden,)), ("ffn_norm", (hidden,))):
            writer.add_tensor(f"blk.{i}.{name}.weight", 1 + w(*shape, scale=0.1))
        for name, shape in (("attn_q", (hidden, hidden)), ("attn_k", (kv, hidden)), ("attn_v", (kv, hidden)),
                            ("attn_output", (hidden, hidden)), ("ffn_gate", (ffn, hidden)),
                            ("ffn_up", (ffn, hidden)), ("ffn_down", (hidden, ffn))):
            writer.add_tensor(f"blk.{i}.{name}.weight", w(*shape))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _run_steps(session, config, prompt: list[int], steps: int):
    empty = np.zeros((1, 0, config.kv_heads, config.head_dim), np.float32)
    past = {f"past_{kind}_{i}": empty for i in range(config.layers) for kind in ("key", "value")}
    names = [o.name for o in session.get_outputs()]
    new, position, logits = prompt, 0, []
    for _ in range(steps + 1):
        out = dict(zip(names, session.run(None, {"input_ids": np.array([new], np.int64),
                                                 "position_ids": np.arange(position, position + len(new))[None],
                                                 **past})))
        logits.append(out["logits"][0])
        position += len(new)
        past = {f"past_{k}_{i}": out[f"present_{k}_{i}"] for i in range(config.layers) for k in ("key", "value")}
        new = [int(np.argmax(out["logits"][0, -1]))]
    return logits


def test_tiny_llama_builds_and_matches_reference(tmp_path):
    gm = load_gguf(_tiny_llama_gguf(tmp_path / "tiny.gguf"), progress=False)
    files = build_decoder_dir(gm, tmp_path / "out")
    logits = _run_steps(_session(files["model.onnx"]), gm.config, [5, 100, 256, 7, 42], steps=4)
    ref = ReferenceDecoder(gm)
    cache = ref.new_cache()
    expected = [ref.forward([5, 100, 256, 7, 42], cache)]
    for step in logits[:-1]:
        expected.append(ref.forward([int(np.argmax(step[-1]))], cache))
    assert max(_rel_err(a, b) for a, b in zip(logits, expected)) <= REL_TOL
    tok = build_tokenizer(gm.metadata)
    assert tok.encode("<|im_start|>the 42").tokens == ["<|im_start|>", "t", "he", "Ġ", "4", "2"]


def test_interrupted_build_leaves_previous_files(tmp_path, monkeypatch):
    from sparsedge_export.llm import build

    gm = load_gguf(_tiny_llama_gguf(tmp_path / "tiny.gguf"), progress=False)
    out = tmp_path / "out"
    files = build_decoder_dir(gm, out)
    before = {name: path.read_bytes() for name, path in files.items()}
    real_writer = build.write_model_with_external_data

    def fail_after_writing(*args, **kwargs):
        real_writer(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "write_model_with_external_data", fail_after_writing)
    with pytest.raises(KeyboardInterrupt):
        build_decoder_dir(load_gguf(_tiny_llama_gguf(tmp_path / "tiny2.gguf", seed=1), progress=False), out)
    assert sorted(p.name for p in out.iterdir()) == sorted(before)  # no temporary files
    assert all(files[name].read_bytes() == data for name, data in before.items())


# ---------------------------------------------------------------- the real model
@pytest.fixture(scope="session")
def smollm2(tmp_path_factory):
    from conftest import fetch_or_skip

    from sparsedge_export import assets

    gm = load_gguf(fetch_or_skip(assets.smollm2_gguf), progress=False)
    out = tmp_path_factory.mktemp("smollm2")
    files = build_decoder_dir(gm, out)
    yield gm, files
    for path in files.values():  # 540 MB: do not leave it in pytest's kept temp dirs
        path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def decoded(smollm2):
    """onnxruntime and the reference over the prompt and DECODE_STEPS greedy steps (ids fed back)."""
    gm, files = smollm2
    c = gm.config
    tok = build_tokenizer(gm.metadata)
    ids = tok.encode(PROMPT).ids
    session = _session(files["model.onnx"])
    ref = ReferenceDecoder(gm)
    cache = ref.new_cache()
    empty = np.zeros((1, 0, c.kv_heads, c.head_dim), np.float32)
    past = {f"past_{kind}_{i}": empty for i in range(c.layers) for kind in ("key", "value")}
    steps, new, position, generated = [], ids, 0, []
    for _ in range(DECODE_STEPS + 1):
        feeds = {"input_ids": np.array([new], np.int64),
                 "position_ids": np.arange(position, position + len(new), dtype=np.int64)[None], **past}
        outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
        ref_logits = ref.forward(new, cache)
        steps.append((outputs["logits"][0], ref_logits, outputs, [cache.keys[0].copy(), cache.values[-1].copy()]))
        position += len(new)
        past = {f"past_{kind}_{i}": outputs[f"present_{kind}_{i}"] for i in range(c.layers) for kind in ("key", "value")}
        new = [int(np.argmax(outputs["logits"][0, -1]))]
        generated += new
    return {"gm": gm, "tok": tok, "ids": ids, "steps": steps, "generated": generated, "session": session}


def test_onnx_matches_reference_prompt_and_decode_steps(decoded):
    c = decoded["gm"].config
    errors = [_rel_err(ours, ref) for ours, ref, _, _ in decoded["steps"]]
    print("max|diff|/max|ref| per step:", " ".join(f"{e:.1e}" for e in errors))
    assert max(errors) <= REL_TOL, errors
    for n, (ours, _, outputs, (ref_k0, ref_v_last)) in enumerate(decoded["steps"]):
        total = len(decoded["ids"]) + n
        assert outputs["present_key_0"].shape == (1, total, c.kv_heads, c.head_dim)
        assert _rel_err(outputs["present_key_0"][0], ref_k0) <= REL_TOL
        assert _rel_err(outputs[f"present_value_{c.layers - 1}"][0], ref_v_last) <= REL_TOL
        assert ours.shape == (len(decoded["ids"]) if n == 0 else 1, c.vocab)


def test_chunked_prefill_matches_reference(decoded):
    """Prompt in two chunks (T = 3, then T = 2 with P = 3): causality over absolute positions."""
    gm, session = decoded["gm"], decoded["session"]
    c, ids = gm.config, decoded["ids"]
    empty = np.zeros((1, 0, c.kv_heads, c.head_dim), np.float32)
    feeds = {"input_ids": np.array([ids[:3]]), "position_ids": np.arange(3)[None],
             **{f"past_{kind}_{i}": empty for i in range(c.layers) for kind in ("key", "value")}}
    first = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    feeds = {"input_ids": np.array([ids[3:]]), "position_ids": np.arange(3, len(ids))[None],
             **{f"past_{kind}_{i}": first[f"present_{kind}_{i}"] for i in range(c.layers) for kind in ("key", "value")}}
    (logits, *_) = session.run(None, feeds)
    ref = decoded["steps"][0][1]
    assert _rel_err(logits[0], ref[3:]) <= REL_TOL


def test_greedy_capital_of_france_is_paris(decoded):
    tok = decoded["tok"]
    text = tok.decode(decoded["generated"])
    print(f"onnxruntime greedy: {PROMPT!r} -> {text!r}")
    assert text.startswith(" Paris"), text
    assert int(np.argmax(decoded["steps"][0][1][-1])) == decoded["generated"][0]  # the reference agrees


def test_output_files(smollm2):
    gm, files = smollm2
    c = gm.config
    out = files["model.onnx"].parent
    assert sorted(p.name for p in out.iterdir()) == ["generation_config.json", "model.onnx", "model.onnx.data",
                                                     "tokenizer.json"]  # no temporary files left
    model = onnx.load(str(files["model.onnx"]), load_external_data=False)
    assert model.ir_version == fmt.IR_VERSION
    assert {o.domain: o.version for o in model.opset_import} == {"": fmt.ONNX_OPSET, fmt.DOMAIN: fmt.DOMAIN_VERSION}
    assert {f.name for f in model.functions} == {fmt.RMS_NORM, fmt.ROTARY_EMBEDDING, fmt.CAUSAL_ATTENTION}
    meta = {p.key: p.value for p in model.metadata_props}
    config = json.loads(meta[fmt.META_LLM])
    assert (config["layers"], config["hidden"], config["heads"], config["kv_heads"], config["vocab"]) == (30, 576, 9, 3, 49152)
    assert [i.name for i in model.graph.input][:4] == ["input_ids", "position_ids", "past_key_0", "past_value_0"]
    assert [o.name for o in model.graph.output][:3] == ["logits", "present_key_0", "present_value_0"]
    # The tied LM head reads the embedding table itself: stored once, 64-byte aligned.
    external = [t for t in model.graph.initializer if t.data_location == TensorProto.EXTERNAL]
    assert sum(t.name == "token_embd.weight" for t in external) == 1
    offsets = [int(dict((e.key, e.value) for e in t.external_data)["offset"]) for t in external]
    assert all(o % 64 == 0 for o in offsets)
    params = sum(int(np.prod(t.dims)) for t in external)
    assert params == 134_515_008
    data_size = files["model.onnx.data"].stat().st_size
    assert params * 4 <= data_size < params * 4 + 64 * len(external)
    gen = json.loads(files["generation_config.json"].read_text())
    assert (gen["bos_token_id"], gen["eos_token_id"], gen["context_length"]) == (1, 2, 8192)
    assert "<|im_start|>" in gen["chat_template"]


# ---------------------------------------------------------------- tokenizer
def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


class PurePythonBpe:
    """An independent byte-level BPE: specials, digit split, GPT-2 regex, merges by rank."""

    def __init__(self, tokens: list[str], merges: list[str], specials: list[str]):
        import regex

        self.vocab = {t: i for i, t in enumerate(tokens)}
        self.ranks = {tuple(m.split(" ")): r for r, m in enumerate(merges)}
        self.byte_map = _bytes_to_unicode()
        alternatives = "|".join(regex.escape(s) for s in sorted(specials, key=len, reverse=True))
        self.special_re = regex.compile(f"({alternatives})")
        self.word_re = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
        self.digit_re = regex.compile(r"(\p{N})")
        self.specials = set(specials)

    def _bpe(self, word: str) -> list[str]:
        parts = list(word)
        while len(parts) > 1:
            rank, pair = min((self.ranks.get(pair, 1 << 60), pair) for pair in zip(parts, parts[1:]))
            if rank == 1 << 60:
                break
            merged, i = [], 0
            while i < len(parts):
                if i < len(parts) - 1 and (parts[i], parts[i + 1]) == pair:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return parts

    def encode(self, text: str) -> list[int]:
        ids = []
        for chunk in self.special_re.split(text):
            if chunk in self.specials:
                ids.append(self.vocab[chunk])
                continue
            for piece in self.digit_re.split(chunk):
                for word in self.word_re.findall(piece):
                    mapped = "".join(self.byte_map[b] for b in word.encode("utf-8"))
                    ids += [self.vocab[p] for p in self._bpe(mapped)]
        return ids


def _varied_strings(specials: list[str], count: int = 300) -> list[str]:
    rng = np.random.default_rng(42)
    pools = ["abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", " ", "  \t\n\r\n   ",
             ".,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`", "éèàçñüößøåæœ", "日本語中文한국어", "😀🙂🚀👍🏽❤️", "Привет мир",
             "مرحبا", "e\u0301a\u0308", "\u200b\u00a0\ufeff"]
    words = ["the", "The", " capital", "France", "don't", "we'll", "I'm", "they're", "3.14159", "2024", "1,000,000",
             "  ", "\n\n", "\t", "<|im", "|>", "HTTP/1.1", "x=y+1;", "naïve", "café"]
    out = ["", " ", "   ", "\n", "0", "007", "a", PROMPT, "Hello, world!", "  leading and trailing  "]
    while len(out) < count:
        parts = []
        for _ in range(rng.integers(1, 12)):
            kind = rng.random()
            if kind < 0.45:
                pool = pools[rng.integers(len(pools))]
                parts.append("".join(rng.choice(list(pool), size=rng.integers(1, 8))))
            elif kind < 0.85:
                parts.append(words[rng.integers(len(words))])
            else:
                parts.append(specials[rng.integers(len(specials))])
        out.append("".join(parts))
    return out


def test_tokenizer_matches_pure_python_bpe_and_round_trips(smollm2):
    from tokenizers import Tokenizer

    gm, files = smollm2
    saved = Tokenizer.from_file(str(files["tokenizer.json"]))
    assert saved.token_to_id("<|im_start|>") == 1
    assert saved.encode(PROMPT).ids == build_tokenizer(gm.metadata).encode(PROMPT).ids
    tokens, types = gm.metadata["tokenizer.ggml.tokens"], gm.metadata["tokenizer.ggml.token_type"]
    specials = [t for t, kind in zip(tokens, types) if kind == 3]
    assert len(specials) == 17
    reference = PurePythonBpe(tokens, gm.metadata["tokenizer.ggml.merges"], specials)
    strings = _varied_strings(specials)
    mismatches = []
    for text in strings:
        ids = saved.encode(text).ids
        if ids != reference.encode(text):
            mismatches.append(text)
        assert saved.decode(ids, skip_special_tokens=False) == text
    assert not mismatches, f"{len(mismatches)} of {len(strings)} differ, e.g. {mismatches[:3]!r}"


# ---------------------------------------------------------------- bad inputs
def _write_gguf(path: Path, arch: str, tensors: dict[str, np.ndarray], **meta) -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(meta.get("layers", 1))
    writer.add_embedding_length(meta.get("hidden", 8))
    writer.add_feed_forward_length(16)
    writer.add_head_count(2)
    writer.add_head_count_kv(1)
    for name, array in tensors.items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_bad_files_raise_llm_export_error(tmp_path):
    with pytest.raises(LlmExportError, match="not found"):
        load_gguf(tmp_path / "absent.gguf")
    (tmp_path / "random.gguf").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(LlmExportError, match="not a GGUF file"):
        load_gguf(tmp_path / "random.gguf")
    (tmp_path / "magic_then_noise.gguf").write_bytes(b"GGUF" + np.random.default_rng(1).bytes(4096))
    with pytest.raises(LlmExportError, match="truncated or corrupt"):
        load_gguf(tmp_path / "magic_then_noise.gguf")
    embd = np.zeros((32, 8), np.float32)
    _write_gguf(tmp_path / "gpt2.gguf", "gpt2", {"token_embd.weight": embd})
    with pytest.raises(LlmExportError, match="unsupported architecture 'gpt2'"):
        load_gguf(tmp_path / "gpt2.gguf")
    _write_gguf(tmp_path / "partial.gguf", "llama", {"token_embd.weight": embd, "output_norm.weight": np.ones(8, np.float32)})
    with pytest.raises(LlmExportError, match=r"missing tensors: blk\.0\.attn_norm\.weight"):
        load_gguf(tmp_path / "partial.gguf")


def test_truncated_gguf_raises(tmp_path):
    """Cut in the metadata and in the last tensor (tiny file), then in the real file's vocabulary."""
    from conftest import fetch_or_skip

    from sparsedge_export import assets

    tiny = _tiny_llama_gguf(tmp_path / "tiny.gguf").read_bytes()

    def real() -> bytes:  # last, so that a cold cache skips after the tiny cases ran
        with fetch_or_skip(assets.smollm2_gguf).open("rb") as handle:
            return handle.read(400_000)

    for n, source in enumerate([lambda: tiny[:2_000], lambda: tiny[:-100], real]):
        path = tmp_path / f"cut_{n}.gguf"
        path.write_bytes(source())
        with pytest.raises(LlmExportError, match="truncated"):
            load_gguf(path, progress=False)


def test_cli_builds_nothing_on_error(tmp_path):
    from sparsedge_export.cli import main

    (tmp_path / "bad.gguf").write_bytes(b"not a gguf")
    assert main(["models", "build", "smollm2", "--gguf", str(tmp_path / "bad.gguf"), "-o", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())

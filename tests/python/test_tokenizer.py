"""The native tokenizer matches PyPI tokenizers on SmolLM2's tokenizer.json;
the native sampler is greedy where it must be, reproducible and unbiased."""

from __future__ import annotations

import json
import random
import time
import unicodedata

import numpy as np
import pytest

import sparsedge
from sparsedge_export import assets
from conftest import fetch_or_skip

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Blocks of letters, marks, digits, symbols and spaces from many scripts.
BLOCKS = [
    (0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x5FF),
    (0x600, 0x6FF), (0x900, 0x97F), (0x0E00, 0x0E7F), (0x1100, 0x11FF), (0x2000, 0x206F),
    (0x2070, 0x218F), (0x2460, 0x24FF), (0x3000, 0x30FF), (0x4E00, 0x4FFF), (0xAC00, 0xAD00),
    (0xFF00, 0xFFEF), (0x1D400, 0x1D4FF), (0x1F300, 0x1F64F), (0x1F900, 0x1F9FF),
]
WHITESPACE = [" ", "  ", "\t", "\n", "\n\n", "\r\n", " \t ", "\u00a0", "\u3000", "\u2009", "\u0085"]
FRAGMENTS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "n't", "!!", "...", "--", "?!", "\"", "(", ")",
             "12345", "3.14", "1,000", "٣٤", "½", "Ⅻ", "e\u0301", "👍🏽", "👨‍👩‍👧", "🇫🇷", "ﬁ", "ǅ"]


def _random_char(rng: random.Random) -> str:
    while True:
        lo, hi = rng.choice(BLOCKS)
        c = chr(rng.randint(lo, hi))
        if unicodedata.category(c) not in ("Cn", "Cs", "Co"):
            return c


def _random_string(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 12)):
        r = rng.random()
        if r < 0.35:
            parts.append("".join(_random_char(rng) for _ in range(rng.randint(1, 8))))
        elif r < 0.55:
            parts.append(rng.choice(WHITESPACE))
        elif r < 0.75:
            parts.append(rng.choice(FRAGMENTS))
        elif r < 0.85:
            parts.append(rng.choice(["the", "The", " cat", "Hello", " world", "ing", " don", "I"]))
        elif r < 0.92:
            parts.append(rng.choice(SPECIALS) if rng.random() < 0.8 else "<|im_sta")
        else:
            parts.append("".join(rng.choice("0123456789") for _ in range(rng.randint(1, 15))))
    return "".join(parts)


@pytest.fixture(scope="session")
def tokenizer_json(tmp_path_factory):
    from sparsedge_export.llm.tokenizer import save_tokenizer_json, tokenizer_from_gguf

    gguf = fetch_or_skip(assets.smollm2_gguf)
    path = tmp_path_factory.mktemp("smollm2_tokenizer") / "tokenizer.json"
    save_tokenizer_json(tokenizer_from_gguf(gguf), path)
    return path


@pytest.fixture(scope="session")
def tokenizers_pair(tokenizer_json):
    hf = pytest.importorskip("tokenizers", reason="PyPI tokenizers is the reference").Tokenizer
    return sparsedge.Tokenizer(tokenizer_json), hf.from_file(str(tokenizer_json))


@pytest.fixture(scope="session")
def test_strings():
    rng = random.Random(1234)
    strings = [_random_string(rng) for _ in range(4000)]
    strings += ["", " ", "   ", "\n", "a  ", "trailing space ", "tabs\t\t", "x\n\n\ny", "  leading", "<|im_start|>",
                "<|im_start|><|im_end|>", "<<|im_end|>>", "<|endoftext|>0<|endoftext|>", "don't I'LL we'd"]
    austen = fetch_or_skip(assets.janeausten_texts)
    lines = [line for text in austen.values() for line in text.split("\n") if line.strip()]
    strings += random.Random(5).sample(lines, 2000)
    strings.append("\n".join(lines[:300]))  # one long multi-line text
    return strings


def test_vocab(tokenizers_pair):
    ours, ref = tokenizers_pair
    assert ours.vocab_size == ref.get_vocab_size() == 49152
    assert ours.encode("<|im_start|>") == [1]
    assert ours.is_special(1) and not ours.is_special(504)
    assert ours.token_to_id("Ġthe") == ref.token_to_id("Ġthe")
    assert ours.token_to_id("not a token at all") is None


def test_encode_matches_tokenizers(tokenizers_pair, test_strings):
    ours, ref = tokenizers_pair
    mismatches = [s for s in test_strings if ours.encode(s) != ref.encode(s).ids]
    assert not mismatches, f"{len(mismatches)}/{len(test_strings)} differ, e.g. {mismatches[:3]!r}"


def test_decode_round_trips_and_matches(tokenizers_pair, test_strings):
    ours, ref = tokenizers_pair
    for s in test_strings:
        ids = ours.encode(s)
        assert ours.decode(ids) == s
        assert ours.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True)


def test_decode_of_arbitrary_ids_matches(tokenizers_pair):
    # Random ids often cut UTF-8 characters: both sides must substitute U+FFFD alike.
    ours, ref = tokenizers_pair
    rng = random.Random(7)
    for _ in range(2000):
        ids = [rng.randrange(ours.vocab_size) for _ in range(rng.randint(1, 6))]
        assert ours.decode(ids) == ref.decode(ids, skip_special_tokens=False)
    ids = ours.encode("日本語 🎉")
    assert b"".join(ours.decode_bytes([i]) for i in ids) == "日本語 🎉".encode()


def test_decode_rejects_unknown_ids(tokenizers_pair):
    ours, _ = tokenizers_pair
    with pytest.raises(sparsedge.InvalidArgumentError):
        ours.decode([ours.vocab_size])
    with pytest.raises(sparsedge.InvalidArgumentError):
        ours.decode([-1])


def test_speed_against_tokenizers(tokenizers_pair, test_strings):
    ours, ref = tokenizers_pair
    text = "\n".join(test_strings)
    n = len(ref.encode(text).ids)
    timings = {}
    for name, fn in (("sparsedge", ours.encode), ("tokenizers", lambda t: ref.encode(t).ids)):
        start = time.perf_counter()
        for _ in range(3):
            fn(text)
        timings[name] = 3 * n / (time.perf_counter() - start)
    print(f"\nencode speed on {n} tokens: sparsedge {timings['sparsedge']:.0f} tok/s, "
          f"tokenizers {timings['tokenizers']:.0f} tok/s")
    assert timings["sparsedge"] > 0.1 * timings["tokenizers"]


@pytest.mark.parametrize("content, error", [
    ("{not json", sparsedge.InvalidModelError),
    ("[]", sparsedge.InvalidModelError),
    ('{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a", "b"]]},'
     ' "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false}}', sparsedge.InvalidModelError),
    ('{"model": {"type": "BPE", "vocab": {"a": "x"}, "merges": []},'
     ' "pre_tokenizer": {"type": "ByteLevel"}}', sparsedge.InvalidModelError),
    ('{"model": {"type": "WordPiece", "vocab": {"a": 0}}}', sparsedge.UnsupportedError),
])
def test_malformed_tokenizer_files(tmp_path, content, error):
    path = tmp_path / "tokenizer.json"
    path.write_text(content)
    with pytest.raises(error):
        sparsedge.Tokenizer(path)


def test_missing_tokenizer_file(tmp_path):
    with pytest.raises(sparsedge.ModelFileNotFoundError):
        sparsedge.Tokenizer(tmp_path / "nope.json")


def test_invalid_utf8_bytes_round_trip(tokenizers_pair):
    ours, ref = tokenizers_pair
    rng = random.Random(9)
    samples = [b"\xff", b"a\xc3", b"\xe6\x97 x", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf<|im_end|>\x80"]
    samples += [bytes(rng.randrange(256) for _ in range(rng.randint(1, 40))) for _ in range(2000)]
    # SmolLM2's vocabulary lacks some bytes (0xC0, 0xF5-0xFF, a few C0 controls);
    # like tokenizers (BPE without unk), the tokenizer drops them.
    missing = {b for b in range(256) if not ours.encode(bytes([b]))}
    assert 0xFF in missing and ord("a") not in missing
    assert ours.encode("\x04a\x06") == ref.encode("\x04a\x06").ids == ours.encode("a")
    for data in samples:
        ids = ours.encode(data)
        kept = bytes(b for b in data if b not in missing)
        assert ours.decode_bytes(ids) == kept
        assert ours.decode(ids) == kept.decode("utf-8", errors="replace")
    with pytest.raises(UnicodeEncodeError):  # a lone surrogate has no UTF-8 form
        ours.encode("a\udc80b")


# ---- sampling ----

def _logits(n=50, seed=0):
    return np.random.default_rng(seed).normal(size=n).astype(np.float32) * 2


def test_greedy_is_argmax():
    for seed in range(20):
        x = _logits(seed=seed)
        assert sparsedge.sample(x, temperature=0.0) == int(np.argmax(x))
        assert sparsedge.sample(x, temperature=1.5, top_k=1, seed=seed) == int(np.argmax(x))
        assert sparsedge.sample(x, temperature=1.5, top_p=1e-6, seed=seed) == int(np.argmax(x))
    assert sparsedge.sample(np.array([1, 3, 3], np.float32), temperature=0) == 1  # lowest id on ties


def test_seeded_draws_reproduce():
    x = _logits(1000)
    a = sparsedge.Sampler(temperature=0.8, top_k=40, top_p=0.9, seed=42)
    b = sparsedge.Sampler(temperature=0.8, top_k=40, top_p=0.9, seed=42)
    c = sparsedge.Sampler(temperature=0.8, top_k=40, top_p=0.9, seed=43)
    da, db, dc = ([s.sample(x) for _ in range(200)] for s in (a, b, c))
    assert da == db and da != dc


def _empirical(sampler, x, draws):
    counts = np.bincount([sampler.sample(x) for _ in range(draws)], minlength=len(x))
    return counts / draws


def test_temperature_matches_softmax():
    x = _logits(8, seed=3)
    draws = 40000
    for t in (0.5, 1.0, 2.0):
        p = np.exp((x - x.max()) / t)
        p /= p.sum()
        freq = _empirical(sparsedge.Sampler(temperature=t, seed=11), x, draws)
        tol = 5 * np.sqrt(p * (1 - p) / draws) + 1e-3
        assert np.all(np.abs(freq - p) < tol), (t, freq, p)


def test_top_k_and_top_p_restrict_support():
    x = _logits(8, seed=4)
    p = np.exp(x - x.max())
    p /= p.sum()
    order = np.argsort(-p, kind="stable")
    freq = _empirical(sparsedge.Sampler(top_k=3, seed=1), x, 20000)
    assert set(np.nonzero(freq)[0]) <= set(order[:3].tolist())
    q = p[order[:3]] / p[order[:3]].sum()
    assert np.all(np.abs(freq[order[:3]] - q) < 0.02)
    keep = int(np.searchsorted(np.cumsum(p[order]), 0.7) + 1)
    freq = _empirical(sparsedge.Sampler(top_p=0.7, seed=2), x, 20000)
    assert set(np.nonzero(freq)[0]) == set(order[:keep].tolist())


def test_masked_logits_are_never_drawn():
    x = _logits(10)
    x[[0, 3, 7]] = -np.inf
    freq = _empirical(sparsedge.Sampler(temperature=5.0, seed=3), x, 5000)
    assert freq[[0, 3, 7]].sum() == 0


@pytest.mark.parametrize("kwargs", [
    {"temperature": -0.1}, {"temperature": float("nan")}, {"temperature": float("inf")},
    {"top_p": 0.0}, {"top_p": 1.5}, {"top_p": float("nan")}, {"top_k": -1},
])
def test_bad_sampling_parameters(kwargs):
    with pytest.raises(sparsedge.InvalidArgumentError):
        sparsedge.Sampler(**kwargs)


def test_bad_logits():
    s = sparsedge.Sampler(seed=0)
    for bad in (np.array([], np.float32), np.array([0.0, np.nan], np.float32),
                np.full(4, -np.inf, np.float32), np.zeros((2, 2), np.float32)):
        with pytest.raises(sparsedge.InvalidArgumentError):
            s.sample(bad)

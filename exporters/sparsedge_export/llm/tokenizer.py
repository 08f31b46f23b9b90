"""The byte-level BPE tokenizer of a GGUF file (``tokenizer.ggml.model == "gpt2"``), built with PyPI ``tokenizers``.

Pipeline (SmolLM2's, ``tokenizer.ggml.pre == "smollm"``): no normaliser; the
pre-tokenizer splits every digit on its own, then applies GPT-2's ByteLevel
split and byte-to-unicode mapping without a prefix space; BPE merges come from
``tokenizer.ggml.merges`` in rank order; tokens marked CONTROL in
``tokenizer.ggml.token_type`` become special tokens, matched whole in the raw
text before pre-tokenization (``<|im_start|>`` is id 1 in SmolLM2). Decoding
is ByteLevel, so ``decode(encode(text)) == text`` for any text.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import LlmExportError

__all__ = ["build_tokenizer", "tokenizer_from_gguf", "save_tokenizer_json", "CONTROL_TOKEN_TYPE"]

CONTROL_TOKEN_TYPE = 3  # llama.cpp's LLAMA_TOKEN_TYPE_CONTROL
SUPPORTED_PRE = ("smollm", "default", "gpt2")


def build_tokenizer(metadata: dict):
    """A ``tokenizers.Tokenizer`` from GGUF metadata (as returned in ``GgufModel.metadata``)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    kind = metadata.get("tokenizer.ggml.model")
    if kind != "gpt2":
        raise LlmExportError(f"unsupported tokenizer model {kind!r}; only byte-level BPE ('gpt2') is supported")
    pre = metadata.get("tokenizer.ggml.pre", "default")
    if pre not in SUPPORTED_PRE:
        raise LlmExportError(f"unsupported pre-tokenizer {pre!r}; supported: {', '.join(SUPPORTED_PRE)}")
    tokens = metadata.get("tokenizer.ggml.tokens")
    merges = metadata.get("tokenizer.ggml.merges")
    if not tokens or merges is None:
        raise LlmExportError("GGUF metadata lacks tokenizer.ggml.tokens or tokenizer.ggml.merges")
    types = metadata.get("tokenizer.ggml.token_type") or [1] * len(tokens)
    vocab = {token: i for i, token in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise LlmExportError("tokenizer.ggml.tokens holds duplicate tokens")
    pairs = []
    for merge in merges:
        left, sep, right = merge.partition(" ")
        if not sep:
            raise LlmExportError(f"malformed BPE merge {merge!r} (expected 'left right')")
        pairs.append((left, right))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=pairs, fuse_unk=False, byte_fallback=False))
    split_digits = [pre_tokenizers.Digits(individual_digits=True)] if pre == "smollm" else []
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        split_digits + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    specials = [tokens[i] for i, t in enumerate(types) if int(t) == CONTROL_TOKEN_TYPE]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    for s in specials:  # add_special_tokens must not have renumbered anything
        if tok.token_to_id(s) != vocab[s]:
            raise LlmExportError(f"special token {s!r} got id {tok.token_to_id(s)}, GGUF says {vocab[s]}")
    return tok


def tokenizer_from_gguf(path: Path | str):
    from .gguf_model import _metadata, read_gguf

    return build_tokenizer(_metadata(read_gguf(path)))


def save_tokenizer_json(tokenizer, path: Path | str) -> None:
    """Write ``tokenizer.json`` (the Hugging Face format) atomically."""
    from ..assets import atomic_writer

    text = tokenizer.to_str(pretty=False)
    json.loads(text)  # fail here, not in a reader, if the library ever wrote something odd
    with atomic_writer(path) as handle:
        handle.write(text.encode("utf-8"))

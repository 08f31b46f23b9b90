"""Read a llama-architecture GGUF file into float32 numpy weights and a config.

Weights keep GGUF's tensor names and come out in PyTorch orientation
(``[out_features, in_features]``: GGUF lists dimensions innermost first, numpy
outermost first). ``attn_q``/``attn_k`` rows stay in GGUF's order, which is
permuted for llama.cpp's RoPE: rotary pairs are ADJACENT elements (0,1),(2,3)…
of each head (see reference.py and docs/FORMAT.md, "SmolLM2 decoder graph").
Quantized tensors (Q4_1, Q8_0, …) are dequantized with ``gguf.quants``; the
result is the dense baseline, already rounded to the file's quantization.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

from .errors import LlmExportError

__all__ = ["LlamaConfig", "GgufModel", "load_gguf", "read_gguf", "layer_tensor_names"]

GGUF_MAGIC = b"GGUF"
SUPPORTED_ARCHITECTURES = ("llama",)
LAYER_TENSORS = ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                 "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")


@dataclasses.dataclass(frozen=True)
class LlamaConfig:
    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    rope_base: float
    rms_eps: float
    vocab: int
    context: int
    bos_token_id: int | None
    eos_token_id: int | None
    pad_token_id: int | None
    unk_token_id: int | None
    add_bos_token: bool
    tied_lm_head: bool
    chat_template: str | None

    def to_json_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class GgufModel:
    """Config, float32 weights by GGUF name, and the raw metadata (tokenizer arrays included)."""
    config: LlamaConfig
    weights: dict[str, np.ndarray]
    metadata: dict[str, object]
    path: Path

    def layer(self, i: int, name: str) -> np.ndarray:
        return self.weights[f"blk.{i}.{name}.weight"]

    @property
    def embedding(self) -> np.ndarray:
        return self.weights["token_embd.weight"]

    @property
    def lm_head(self) -> np.ndarray:
        """[vocab, hidden]: ``output.weight`` if the file has one, else the tied embedding."""
        return self.weights.get("output.weight", self.weights["token_embd.weight"])


def layer_tensor_names(layers: int) -> list[str]:
    names = ["token_embd.weight", "output_norm.weight"]
    for i in range(layers):
        names += [f"blk.{i}.{t}.weight" for t in LAYER_TENSORS]
    return names


def _log(message: str, end: str = "\n") -> None:
    print(f"[sparsedge llm] {message}", file=sys.stderr, end=end, flush=True)


def read_gguf(path: Path | str):
    """Open ``path`` with ``gguf.GGUFReader``; any failure becomes an LlmExportError."""
    import gguf

    path = Path(path)
    if not path.is_file():
        raise LlmExportError(f"GGUF file not found: {path}")
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise LlmExportError(f"{path} is not a GGUF file (starts with {magic!r}, expected {GGUF_MAGIC!r})")
    try:
        return gguf.GGUFReader(path, "r")
    except Exception as exc:  # the reader raises ValueError/IndexError/struct errors on damaged headers
        raise LlmExportError(f"{path} is a truncated or corrupt GGUF file: {type(exc).__name__}: {exc}") from exc


def _metadata(reader) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        try:
            out[key] = field.contents()
        except Exception as exc:
            raise LlmExportError(f"GGUF metadata field {key!r} cannot be decoded: {exc}") from exc
    return out


def _required(meta: dict, key: str, path: Path):
    if key not in meta:
        raise LlmExportError(f"{path}: GGUF metadata lacks {key!r}")
    return meta[key]


def _config(meta: dict, tensor_names: set[str], path: Path) -> LlamaConfig:
    arch = meta.get("general.architecture")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise LlmExportError(f"{path}: unsupported architecture {arch!r}; only "
                             f"{', '.join(SUPPORTED_ARCHITECTURES)} decoders are supported")
    p = f"{arch}."
    hidden = int(_required(meta, p + "embedding_length", path))
    heads = int(_required(meta, p + "attention.head_count", path))
    kv_heads = int(meta.get(p + "attention.head_count_kv", heads))
    if heads <= 0 or kv_heads <= 0 or hidden % heads or heads % kv_heads:
        raise LlmExportError(f"{path}: inconsistent attention shape (hidden {hidden}, heads {heads}, "
                             f"kv heads {kv_heads})")
    head_dim = hidden // heads
    rope_dims = int(meta.get(p + "rope.dimension_count", head_dim))
    if rope_dims != head_dim:
        raise LlmExportError(f"{path}: partial RoPE ({rope_dims} of {head_dim} dims) is not supported")
    tokens = meta.get("tokenizer.ggml.tokens")
    vocab = int(meta.get(p + "vocab_size", len(tokens) if tokens is not None else 0))

    def token_id(key: str) -> int | None:
        value = meta.get(f"tokenizer.ggml.{key}")
        return None if value is None else int(value)

    return LlamaConfig(
        name=str(meta.get("general.name", path.stem)),
        layers=int(_required(meta, p + "block_count", path)),
        hidden=hidden, heads=heads, kv_heads=kv_heads, head_dim=head_dim,
        ffn=int(_required(meta, p + "feed_forward_length", path)),
        rope_base=float(meta.get(p + "rope.freq_base", 10000.0)),
        rms_eps=float(meta.get(p + "attention.layer_norm_rms_epsilon", 1e-5)),
        vocab=vocab,
        context=int(meta.get(p + "context_length", 2048)),
        bos_token_id=token_id("bos_token_id"), eos_token_id=token_id("eos_token_id"),
        pad_token_id=token_id("padding_token_id"), unk_token_id=token_id("unknown_token_id"),
        add_bos_token=bool(meta.get("tokenizer.ggml.add_bos_token", False)),
        tied_lm_head="output.weight" not in tensor_names,
        chat_template=meta.get("tokenizer.chat_template"),
    )


def _expected_shapes(c: LlamaConfig) -> dict[str, tuple[int, ...]]:
    kv = c.kv_heads * c.head_dim
    per_layer = {"attn_norm": (c.hidden,), "attn_q": (c.hidden, c.hidden), "attn_k": (kv, c.hidden),
                 "attn_v": (kv, c.hidden), "attn_output": (c.hidden, c.hidden), "ffn_norm": (c.hidden,),
                 "ffn_gate": (c.ffn, c.hidden), "ffn_up": (c.ffn, c.hidden), "ffn_down": (c.hidden, c.ffn)}
    shapes = {"token_embd.weight": (c.vocab, c.hidden), "output_norm.weight": (c.hidden,),
              "output.weight": (c.vocab, c.hidden)}
    for i in range(c.layers):
        shapes.update({f"blk.{i}.{k}.weight": v for k, v in per_layer.items()})
    return shapes


def load_gguf(path: Path | str, progress: bool = True) -> GgufModel:
    """Read a llama GGUF file: config, metadata and every tensor dequantized to float32."""
    from gguf.quants import dequantize

    path = Path(path)
    reader = read_gguf(path)
    tensors = {t.name: t for t in reader.tensors}
    for t in tensors.values():  # before any slow work: the memmap stops at the end of a truncated file
        if t.data.nbytes != int(t.n_bytes):
            raise LlmExportError(f"{path} is truncated: tensor {t.name!r} has {t.data.nbytes} of "
                                 f"{int(t.n_bytes)} bytes")
    meta = _metadata(reader)
    config = _config(meta, set(tensors), path)
    missing = [n for n in layer_tensor_names(config.layers) if n not in tensors]
    if missing:
        shown = ", ".join(missing[:6]) + (f" … ({len(missing)} in all)" if len(missing) > 6 else "")
        raise LlmExportError(f"{path}: missing tensors: {shown}")
    shapes = _expected_shapes(config)
    wanted = [n for n in tensors if n in shapes]
    weights: dict[str, np.ndarray] = {}
    for done, name in enumerate(wanted, 1):
        t = tensors[name]
        try:
            array = dequantize(t.data, t.tensor_type)
        except Exception as exc:
            raise LlmExportError(f"{path}: cannot dequantize {name!r} ({t.tensor_type.name}): {exc}") from exc
        array = np.ascontiguousarray(array, dtype=np.float32).reshape(tuple(int(d) for d in reversed(t.shape)))
        if array.shape != shapes[name]:
            raise LlmExportError(f"{path}: tensor {name!r} has shape {array.shape}, expected {shapes[name]}")
        if not np.isfinite(array).all():
            raise LlmExportError(f"{path}: tensor {name!r} holds NaN or infinite values")
        weights[name] = array
        if progress and (done % 25 == 0 or done == len(wanted)):
            _log(f"dequantizing {done}/{len(wanted)} tensors", end="\r" if done < len(wanted) else "\n")
    return GgufModel(config=config, weights=weights, metadata=meta, path=path)

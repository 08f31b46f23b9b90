"""An independent numpy implementation of the llama decoder, with a KV cache.

It shares nothing with the ONNX graph builder but the weights, so the two check
each other. Everything runs in float32 except the normalisation and softmax
statistics (float64), which keeps it a little more accurate than the graph.

RoPE layout: the GGUF ``attn_q``/``attn_k`` weights are used as stored, so the
rotary pairs are ADJACENT elements (0,1),(2,3)… of each head, frequency index
``i`` for pair ``(2i, 2i+1)``: ``theta = pos * base ** (-2i / head_dim)``. This
equals Hugging Face's rotate-half formulation applied to the un-permuted weights.

KV heads are shared by ``heads // kv_heads`` consecutive query heads (query
head ``h`` reads KV head ``h // group``), as in llama.cpp and Hugging Face.
"""

from __future__ import annotations

import numpy as np

from .gguf_model import GgufModel

__all__ = ["ReferenceDecoder", "KVCache"]


class KVCache:
    """Per layer, keys and values of every position so far: [S, kv_heads, head_dim] (sequence-major)."""

    def __init__(self, layers: int, kv_heads: int, head_dim: int):
        empty = np.zeros((0, kv_heads, head_dim), np.float32)
        self.keys = [empty] * layers
        self.values = [empty] * layers

    @property
    def length(self) -> int:
        return int(self.keys[0].shape[0])


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    x64 = x.astype(np.float64)
    inv = 1.0 / np.sqrt(np.mean(x64 * x64, axis=-1, keepdims=True) + eps)
    return (x64 * inv).astype(np.float32) * weight


def rope_adjacent_pairs(x: np.ndarray, positions: np.ndarray, base: float) -> np.ndarray:
    """Rotate pairs (2i, 2i+1) of the last axis; x is [T, heads, head_dim], positions [T]."""
    head_dim = x.shape[-1]
    inv_freq = base ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angles = positions.astype(np.float64)[:, None] * inv_freq[None, :]  # [T, head_dim/2]
    cos = np.cos(angles)[:, None, :]
    sin = np.sin(angles)[:, None, :]
    even = x[..., 0::2].astype(np.float64)
    odd = x[..., 1::2].astype(np.float64)
    out = np.empty(x.shape, np.float64)
    out[..., 0::2] = even * cos - odd * sin
    out[..., 1::2] = even * sin + odd * cos
    return out.astype(np.float32)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


class ReferenceDecoder:
    def __init__(self, model: GgufModel):
        self.model = model
        self.config = model.config

    def new_cache(self) -> KVCache:
        c = self.config
        return KVCache(c.layers, c.kv_heads, c.head_dim)

    def _attention(self, i: int, x: np.ndarray, positions: np.ndarray, cache: KVCache) -> np.ndarray:
        c, m = self.config, self.model
        T = x.shape[0]
        q = (x @ m.layer(i, "attn_q").T).reshape(T, c.heads, c.head_dim)
        k = (x @ m.layer(i, "attn_k").T).reshape(T, c.kv_heads, c.head_dim)
        v = (x @ m.layer(i, "attn_v").T).reshape(T, c.kv_heads, c.head_dim)
        q = rope_adjacent_pairs(q, positions, c.rope_base)
        k = rope_adjacent_pairs(k, positions, c.rope_base)
        keys = np.concatenate([cache.keys[i], k], axis=0)
        values = np.concatenate([cache.values[i], v], axis=0)
        cache.keys[i], cache.values[i] = keys, values
        group = c.heads // c.kv_heads
        keys_h = np.repeat(keys, group, axis=1)      # [S, heads, hd]
        values_h = np.repeat(values, group, axis=1)
        S = keys.shape[0]
        past = S - T
        scores = np.einsum("thd,shd->hts", q, keys_h) / np.sqrt(c.head_dim)
        # Query t sits at absolute position past + t and sees keys 0 .. past + t.
        visible = np.arange(S)[None, :] <= (past + np.arange(T))[:, None]
        scores = np.where(visible[None], scores, -np.inf)
        probs = softmax(scores).astype(np.float32)
        out = np.einsum("hts,shd->thd", probs, values_h).reshape(T, c.heads * c.head_dim)
        return out @ m.layer(i, "attn_output").T

    def forward(self, token_ids, cache: KVCache | None = None) -> np.ndarray:
        """Logits [T, vocab] of the new tokens; ``cache`` (if given) is extended in place."""
        c, m = self.config, self.model
        cache = cache if cache is not None else self.new_cache()
        ids = np.asarray(token_ids, dtype=np.int64).reshape(-1)
        positions = cache.length + np.arange(ids.shape[0])
        x = m.embedding[ids]
        for i in range(c.layers):
            x = x + self._attention(i, rms_norm(x, m.layer(i, "attn_norm"), c.rms_eps), positions, cache)
            h = rms_norm(x, m.layer(i, "ffn_norm"), c.rms_eps)
            gate = h @ m.layer(i, "ffn_gate").T
            up = h @ m.layer(i, "ffn_up").T
            x = x + (silu(gate) * up) @ m.layer(i, "ffn_down").T
        x = rms_norm(x, m.weights["output_norm.weight"], c.rms_eps)
        return x @ m.lm_head.T

    def generate_greedy(self, token_ids, max_new_tokens: int, stop_ids=()) -> list[int]:
        """Greedy continuation: the new token ids (stops after a token in ``stop_ids``)."""
        cache = self.new_cache()
        logits = self.forward(token_ids, cache)
        out: list[int] = []
        for _ in range(max_new_tokens):
            nxt = int(np.argmax(logits[-1]))
            out.append(nxt)
            if nxt in stop_ids:
                break
            logits = self.forward([nxt], cache)
        return out

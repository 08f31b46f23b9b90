"""Temporal-delta attention (DeltaLLM-style, docs/DELTA_ATTENTION.md): thresholds and the numpy reference.

``sparsedge export-llm ... --delta-attention`` stores, on every ``CausalAttention`` node,

- ``delta_window`` (int W): the last W positions of each query row are attended exactly;
- ``delta_q_thresholds`` (floats [num_heads]): a query element is re-sent (delta-coded) only when it
  moved by more than this since it was last sent; far keys' scores are updated from the sent deltas;
- ``delta_p_threshold`` (float): a far key's exponential is folded into the running output only when it
  moved by more than this fraction of the row's softmax denominator.

Per-head query thresholds are ``a * rms(q of that head)`` on calibration text, one relative level ``a``
for the whole model: given (``--delta-threshold a``) or found by bisection to meet a MAC-sparsity target
(``--delta-target``) at the calibration context. ``delta_attention_reference`` is the numpy mirror of the
runtime kernel (ops/attention.cc), in float32 with the same order of operations where it matters.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from .. import format as fmt
from .errors import LlmExportError

__all__ = ["DeltaConfig", "DeltaAttentionError", "delta_attention_reference", "dense_attention_reference",
           "calibrate", "apply_delta_attention", "check_threshold", "DEFAULT_WINDOW", "DEFAULT_P_THRESHOLD",
           "CALIBRATION_CONTEXT"]

DEFAULT_WINDOW = 32
DEFAULT_P_THRESHOLD = 0.001
CALIBRATION_CONTEXT = 512
REBASE_GAP = 30.0


class DeltaAttentionError(LlmExportError):
    """Delta-attention settings that cannot be exported (bad threshold, window or target)."""


def _log(message: str) -> None:
    print(f"[sparsedge delta-attention] {message}", file=sys.stderr, flush=True)


def check_threshold(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise DeltaAttentionError(f"{name} must be finite and >= 0, got {value}")
    return value


@dataclasses.dataclass
class DeltaConfig:
    window: int
    q_thresholds: list[list[float]]   # [layers][num_heads], absolute, on q as the op receives it
    p_threshold: float
    level: float = 0.0                # the relative level a (q threshold = a * rms per head)
    estimated_sparsity: float | None = None

    def validate(self) -> None:
        if int(self.window) != self.window or self.window < 1:
            raise DeltaAttentionError(f"--local-window must be a positive integer, got {self.window}")
        check_threshold("delta_p_threshold", self.p_threshold)
        for layer in self.q_thresholds:
            for t in layer:
                check_threshold("delta_q_thresholds", t)


# ---------------------------------------------------------------- numpy reference
def dense_attention_reference(q, k, v, scale):
    """q [T, Hq, D], k/v [T, Hkv, D] (one sequence from position 0) -> [T, Hq, D], float64 softmax."""
    T, Hq, D = q.shape
    G = Hq // k.shape[1]
    kh = np.repeat(k, G, axis=1).astype(np.float64)
    vh = np.repeat(v, G, axis=1).astype(np.float64)
    s = np.einsum("thd,shd->hts", q.astype(np.float64), kh) * scale
    s = np.where(np.tril(np.ones((T, T), bool))[None], s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return np.einsum("hts,shd->thd", p, vh).astype(np.float32)


def delta_attention_reference(q, k, v, scale, window, q_thresholds, p_threshold, stats=None):
    """The runtime's delta attention on one sequence from position 0 (float32 state, like the kernel).

    q [T, Hq, D], k/v [T, Hkv, D]; returns out [T, Hq, D]. ``stats`` (dict) gains ``macs_dense``,
    ``macs_done`` (accounting of docs/DELTA_ATTENTION.md), ``macs_qk``/``macs_pv`` and per-row arrays.
    """
    q = np.asarray(q, np.float32)
    k = np.asarray(k, np.float32)
    v = np.asarray(v, np.float32)
    T, Hq, D = q.shape
    G = Hq // k.shape[1]
    f32 = np.float32
    scale = f32(scale)
    thq = np.broadcast_to(np.asarray(q_thresholds, np.float32), (Hq,))
    out = np.empty((T, Hq, D), np.float32)
    dense = done = 0.0
    far_kept = far_total = 0
    for h in range(Hq):
        kk, vv = k[:, h // G], v[:, h // G]
        qhat = np.zeros(D, f32)
        u = np.zeros(D, f32)
        sfar = np.zeros(T, f32)
        ehat = np.zeros(T, f32)
        z, mref = f32(0), -np.inf
        nf_old = 0
        for t in range(T):
            dense += 2.0 * (t + 1) * D
            nf = t + 1 - window if t + 1 > window else 0
            d = q[t, h] - qhat
            sent = np.abs(d) > thq[h]
            qhat = np.where(sent, q[t, h], qhat)
            dq = (d * scale) * sent
            nnz = int(sent.sum())
            m = -np.inf
            if nf_old:
                sfar[:nf_old] += (kk[:nf_old] @ dq).astype(f32)
                m = float(sfar[:nf_old].max())
                done += nnz * nf_old
            if nf > nf_old:
                sfar[nf_old:nf] = (kk[nf_old:nf] @ qhat) * scale
                m = max(m, float(sfar[nf_old:nf].max()))
                done += (nf - nf_old) * D
            sw = (kk[nf:t + 1] @ q[t, h]) * scale
            m = max(m, float(sw.max()))
            nw = t + 1 - nf
            done += nw * D
            if nf == 0:
                mref = m
            elif m > mref or m < mref - REBASE_GAP:
                fct = f32(np.exp(mref - m)) if np.isfinite(mref) else f32(0)
                ehat[:nf_old] *= fct
                u *= fct
                z = f32(z * fct)
                mref = m
                done += nf_old + D
            ew = np.exp((sw - f32(mref)).astype(f32)).astype(f32)
            zw = f32(ew.sum(dtype=np.float32))
            if nf_old:
                e = np.exp(sfar[:nf_old] - f32(mref)).astype(f32)
                ch = e - ehat[:nf_old]
                sel = np.abs(ch) > f32(p_threshold) * f32(z + zw)
                ehat[:nf_old] = np.where(sel, e, ehat[:nf_old])
                z = f32(z + ch[sel].sum(dtype=np.float32))
                u += (ch[sel] @ vv[:nf_old][sel]).astype(f32)
                done += int(sel.sum()) * D
                far_kept += int(sel.sum())
                far_total += nf_old
            if nf > nf_old:
                e = np.exp(sfar[nf_old:nf] - f32(mref)).astype(f32)
                ehat[nf_old:nf] = e
                z = f32(z + e.sum(dtype=np.float32))
                u += (e @ vv[nf_old:nf]).astype(f32)
                done += (nf - nf_old) * D
            o = u + (ew @ vv[nf:t + 1]).astype(f32)
            done += nw * D
            out[t, h] = o * (f32(1) / f32(z + zw))
            nf_old = nf
    if stats is not None:
        stats["macs_dense"] = stats.get("macs_dense", 0.0) + dense
        stats["macs_done"] = stats.get("macs_done", 0.0) + done
        stats["pv_far_kept"] = stats.get("pv_far_kept", 0) + far_kept
        stats["pv_far_total"] = stats.get("pv_far_total", 0) + far_total
    return out


# ---------------------------------------------------------------- calibration
def _layer_queries(gm, ids: np.ndarray) -> list[np.ndarray]:
    """Dense forward over ``ids``; returns each layer's rotated q [T, heads, head_dim] (the op's input)."""
    from .reference import rms_norm, rope_adjacent_pairs, silu

    c, m = gm.config, gm
    T = len(ids)
    pos = np.arange(T)
    x = m.embedding[ids]
    G = c.heads // c.kv_heads
    qs = []
    for i in range(c.layers):
        h = rms_norm(x, m.layer(i, "attn_norm"), c.rms_eps)
        q = rope_adjacent_pairs((h @ m.layer(i, "attn_q").T).reshape(T, c.heads, c.head_dim), pos, c.rope_base)
        k = rope_adjacent_pairs((h @ m.layer(i, "attn_k").T).reshape(T, c.kv_heads, c.head_dim), pos, c.rope_base)
        v = (h @ m.layer(i, "attn_v").T).reshape(T, c.kv_heads, c.head_dim)
        qs.append(q)
        a = dense_attention_reference(q, k, v, 1.0 / math.sqrt(c.head_dim))
        x = x + a.reshape(T, -1) @ m.layer(i, "attn_output").T
        h = rms_norm(x, m.layer(i, "ffn_norm"), c.rms_eps)
        x = x + (silu(h @ m.layer(i, "ffn_gate").T) * (h @ m.layer(i, "ffn_up").T)) @ m.layer(i, "ffn_down").T
    return qs


def _sent_fraction(q: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per row t (rows >= 1) and head, the fraction of q elements re-sent; q [T, H, D], thresholds [H]."""
    T, H, D = q.shape
    qhat = np.zeros((H, D), np.float32)
    frac = np.empty((T, H))
    for t in range(T):
        sent = np.abs(q[t] - qhat) > thresholds[:, None]
        qhat = np.where(sent, q[t], qhat)
        frac[t] = sent.mean(1)
    return frac


def _estimate_sparsity(qs, rms, level, window, pv_keep, D) -> float:
    """MAC sparsity model: QK far keys cost the sent fraction, PV far keys ``pv_keep`` of dense."""
    T = qs[0].shape[0]
    t = np.arange(T)
    far = np.maximum(0, t + 1 - window).astype(np.float64)
    near = (t + 1 - far)
    dense = done = 0.0
    for q, r in zip(qs, rms):
        frac = _sent_fraction(q, level * r)             # [T, H]
        far_prev = np.r_[0, far[:-1]]
        new_far = far - far_prev
        qk = frac * far_prev[:, None] * D + (new_far * D + near * D)[:, None]
        pv = (pv_keep * far_prev * D + new_far * D + near * D)[:, None]
        done += float((qk + pv).sum())
        dense += float((2 * (t + 1) * D).sum()) * q.shape[1]
    return 1.0 - done / dense


def calibrate(gm, text: str, window: int = DEFAULT_WINDOW, target: float | None = None,
              threshold: float | None = None, p_threshold: float = DEFAULT_P_THRESHOLD,
              context: int = CALIBRATION_CONTEXT, progress: bool = True) -> DeltaConfig:
    """Per-layer, per-head query thresholds from ``text`` (the first ``context`` tokens)."""
    from .tokenizer import build_tokenizer

    if (target is None) == (threshold is None):
        raise DeltaAttentionError("give exactly one of --delta-target and --delta-threshold")
    if threshold is not None:
        check_threshold("--delta-threshold", threshold)
    if target is not None and not (math.isfinite(target) and 0.0 < target < 1.0):
        raise DeltaAttentionError(f"--delta-target must be in (0, 1), got {target}")
    check_threshold("--delta-prob-threshold", p_threshold)
    if int(window) != window or window < 1:
        raise DeltaAttentionError(f"--local-window must be a positive integer, got {window}")
    if not text or not text.strip():
        raise DeltaAttentionError("delta attention needs calibration text (--calibration)")
    ids = np.asarray(build_tokenizer(gm.metadata).encode(text).ids[:context], np.int64)
    if ids.size < 2:
        raise DeltaAttentionError("the calibration text has fewer than 2 tokens")
    c = gm.config
    qs = _layer_queries(gm, ids)
    rms = [np.sqrt((q.astype(np.float64) ** 2).mean(axis=(0, 2))).astype(np.float32) for q in qs]
    if threshold is not None:
        level = float(threshold)
    else:
        # PV keep rate: measured once on a few layers at a middle level, then the level is bisected on the
        # QK model (the sent fraction is cheap to simulate exactly).
        scale = 1.0 / math.sqrt(c.head_dim)
        pv_keep = _pv_keep_rate(gm, ids, qs, rms, window, p_threshold, scale)
        lo, hi = 0.0, 4.0
        if _estimate_sparsity(qs, rms, hi, window, pv_keep, c.head_dim) < target:
            raise DeltaAttentionError(f"--delta-target {target} is not reachable with --local-window {window} "
                                      f"at {len(ids)} calibration tokens (try a smaller window)")
        for _ in range(14):
            mid = 0.5 * (lo + hi)
            if _estimate_sparsity(qs, rms, mid, window, pv_keep, c.head_dim) >= target:
                hi = mid
            else:
                lo = mid
        level = hi
        if progress:
            _log(f"level a = {level:.4f} for target {target:.0%} (PV keep rate {pv_keep:.3f})")
    thresholds = [[float(level * x) for x in r] for r in rms]
    est = None
    if target is not None:
        est = _estimate_sparsity(qs, rms, level, window, pv_keep, c.head_dim)
    cfg = DeltaConfig(window=int(window), q_thresholds=thresholds, p_threshold=float(p_threshold), level=level,
                      estimated_sparsity=est)
    cfg.validate()
    return cfg


def _pv_keep_rate(gm, ids, qs, rms, window, p_threshold, scale) -> float:
    """Fraction of (row, far key) pairs folded into u, on layers 0, mid and last at level 0.3."""
    from .reference import rms_norm, rope_adjacent_pairs

    c, m = gm.config, gm
    T = len(ids)
    kept = total = 0.0
    # Recompute k/v for the sampled layers from a dense forward (cheap: three layers' projections).
    x = m.embedding[ids]
    pos = np.arange(T)
    sample = {0, c.layers // 2, c.layers - 1}
    from .reference import silu
    for i in range(c.layers):
        h = rms_norm(x, m.layer(i, "attn_norm"), c.rms_eps)
        k = rope_adjacent_pairs((h @ m.layer(i, "attn_k").T).reshape(T, c.kv_heads, c.head_dim), pos, c.rope_base)
        v = (h @ m.layer(i, "attn_v").T).reshape(T, c.kv_heads, c.head_dim)
        if i in sample:
            st: dict = {}
            delta_attention_reference(qs[i], k, v, scale, window, 0.3 * rms[i], p_threshold, st)
            kept += st["pv_far_kept"] if "pv_far_kept" in st else 0.0
            total += st["pv_far_total"] if "pv_far_total" in st else 0.0
        a = dense_attention_reference(qs[i], k, v, scale)
        x = x + a.reshape(T, -1) @ m.layer(i, "attn_output").T
        h = rms_norm(x, m.layer(i, "ffn_norm"), c.rms_eps)
        x = x + (silu(h @ m.layer(i, "ffn_gate").T) * (h @ m.layer(i, "ffn_up").T)) @ m.layer(i, "ffn_down").T
    return kept / total if total else 0.2


# ---------------------------------------------------------------- writing
def set_attention_attributes(model, cfg: DeltaConfig) -> int:
    """Set the delta attributes on every CausalAttention node of ``model`` (in layer order); returns the count."""
    from onnx import helper

    nodes = [n for n in model.graph.node if n.op_type == fmt.CAUSAL_ATTENTION and n.domain == fmt.DOMAIN]
    if len(nodes) != len(cfg.q_thresholds):
        raise DeltaAttentionError(f"{len(nodes)} CausalAttention nodes but thresholds for {len(cfg.q_thresholds)} layers")
    names = {fmt.ATTR_DELTA_WINDOW, fmt.ATTR_DELTA_Q_THRESHOLDS, fmt.ATTR_DELTA_P_THRESHOLD}
    for node, thr in zip(nodes, cfg.q_thresholds):
        for t in thr:
            check_threshold(f"{node.name}: delta_q_thresholds", t)
        keep = [a for a in node.attribute if a.name not in names]
        del node.attribute[:]
        node.attribute.extend(keep + [
            helper.make_attribute(fmt.ATTR_DELTA_WINDOW, int(cfg.window)),
            helper.make_attribute(fmt.ATTR_DELTA_Q_THRESHOLDS, [float(t) for t in thr]),
            helper.make_attribute(fmt.ATTR_DELTA_P_THRESHOLD, float(cfg.p_threshold)),
        ])
    return len(nodes)


def apply_delta_attention(model_path: Path | str, cfg: DeltaConfig, info: dict | None = None) -> Path:
    """Rewrite ``model_path`` (a decoder's model.onnx; external data untouched) with delta attention."""
    import onnx
    from onnx import helper

    cfg.validate()
    model_path = Path(model_path)
    model = onnx.load(str(model_path), load_external_data=False)
    count = set_attention_attributes(model, cfg)
    meta = {p.key: p.value for p in model.metadata_props}
    meta[fmt.META_DELTA_ATTENTION] = json.dumps({
        "window": cfg.window, "p_threshold": cfg.p_threshold, "level": cfg.level,
        "estimated_sparsity": cfg.estimated_sparsity, "layers": count, **(info or {})}, separators=(",", ":"))
    del model.metadata_props[:]
    helper.set_model_props(model, meta)
    fd, tmp = tempfile.mkstemp(dir=model_path.parent, prefix=".model.onnx.", suffix=".part")
    os.close(fd)
    try:
        with open(tmp, "wb") as handle:
            handle.write(model.SerializeToString())
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, model_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return model_path

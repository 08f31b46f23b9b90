"""Prune a llama decoder's linear layers to 2:4 or Bx1 group sparsity and export it (``sparsedge export-llm``).

Methods, per linear layer ``W`` [O, I] with calibration inputs ``X`` [tokens, I]:

- ``magnitude``: keep the largest ``|W|``; needs no calibration.
- ``wanda``: keep the largest ``|W_oj| * ||X_j||`` (Sun et al. 2023).
- ``reconstruct``: SparseGPT (Frantar & Alistarh 2023): ``H = X^T X`` (+1% mean-diagonal
  damping), columns processed left to right in chunks of 128; the mask is chosen by the
  OBS saliency ``w^2 / [H^-1]_jj^2`` (per 2:4 group; for Bx1 blocks one threshold over the whole
  128-column chunk, ``selection="global"``, so block rows keep different counts, or the same count
  per block row, ``"row"``) and each pruned column's error is spread over the columns not yet processed.

Options (measured on SmolLM2-135M in docs/ACCURACY.md): ``dense_targets`` refits each layer to the
dense model's outputs before pruning (off by default: it was worse there); ``allocation="owl"``
spreads the group sparsity over blocks by their activation outliers (OWL), same overall fraction.

Calibration runs the numpy decoder block by block: each block's linear inputs are taken
from the model pruned so far (q/k/v share one Hessian, gate/up another), as SparseGPT does.
The embedding / tied LM head is never pruned.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper

from .. import format as fmt
from ..sparsify.functions import function_for
from ..sparsify.writer import encode_bsr
from .errors import LlmPruneError
from .gguf_model import GgufModel, load_gguf
from .onnx_decoder import DecoderModel
from .reference import rms_norm, rope_adjacent_pairs, silu
from .semistructured import encode_2_4, make_semi_structured_node, semi_structured_function

__all__ = ["PruneTarget", "parse_target", "prune_decoder", "export_llm", "calibration_tokens",
           "mask_2_4", "mask_blocks", "prune_weight", "owl_fractions", "allocate_fractions", "METHODS", "LAYER_SETS",
           "SELECTIONS", "ALLOCATIONS"]

METHODS = ("magnitude", "wanda", "reconstruct")
ATTN = ("attn_q", "attn_k", "attn_v", "attn_output")
MLP = ("ffn_gate", "ffn_up", "ffn_down")
LAYER_SETS = {"all": ATTN + MLP, "mlp": MLP}
PATTERNS = {"1x1": 1, "2x1": 2, "4x1": 4, "8x1": 8}
SELECTIONS = ("global", "row")
ALLOCATIONS = ("uniform", "owl")
OWL_LAMBDA = 0.08
OWL_M = 5.0
CALIBRATION_TOKENS = {"magnitude": 0, "wanda": 2048, "reconstruct": 8192}  # defaults of --calibration-tokens
DENSE_TARGETS_DEFAULT = False  # measured worse on SmolLM2 2:4 (docs/ACCURACY.md); opt in with dense_targets=True
DAMPING = 0.01
CHUNK = 128


def _log(message: str) -> None:
    print(f"[sparsedge export-llm] {message}", file=sys.stderr, flush=True)


@dataclasses.dataclass(frozen=True)
class PruneTarget:
    """Either 2:4 semi-structured, or a fraction of Bx1 blocks (B output rows x 1 input) per block row."""
    semi_structured: bool
    fraction: float = 0.5
    block_size: int = 1
    selection: str = "global"  # blocks: one threshold per 128-column chunk ("global") or per block row ("row")

    def describe(self) -> str:
        return "2:4" if self.semi_structured else f"{self.fraction:g} of {self.block_size}x1 blocks"


def parse_target(sparsity: str | float, pattern: str | None = None) -> PruneTarget:
    """'2:4' -> semi-structured; a fraction in (0, 1) with ``pattern`` ('4x1', default) -> group sparsity."""
    text = str(sparsity).strip()
    if re.fullmatch(r"\d+:\d+", text):
        if text != "2:4":
            raise LlmPruneError(f"only the 2:4 N:M pattern is supported, not {text!r}")
        if pattern is not None:
            raise LlmPruneError("--pattern applies to fractional sparsity only, not 2:4")
        return PruneTarget(semi_structured=True)
    try:
        fraction = float(text)
    except ValueError:
        raise LlmPruneError(f"bad sparsity {text!r}: use '2:4' or a fraction such as 0.5") from None
    if not 0.0 < fraction < 1.0:
        raise LlmPruneError(f"sparsity {fraction} must be in (0, 1)")
    pattern = pattern or "4x1"
    if pattern not in PATTERNS:
        raise LlmPruneError(f"bad pattern {pattern!r}: use one of {', '.join(PATTERNS)}")
    return PruneTarget(semi_structured=False, fraction=fraction, block_size=PATTERNS[pattern])


# ---------------------------------------------------------------- masks
def mask_2_4(score: np.ndarray) -> np.ndarray:
    """Keep the 2 highest scores of every 4 consecutive inputs: bool [O, I]."""
    out_channels, in_channels = score.shape
    groups = score.reshape(out_channels, in_channels // 4, 4)
    drop = np.argsort(groups, axis=-1, kind="stable")[..., :2]
    mask = np.ones_like(groups, dtype=bool)
    np.put_along_axis(mask, drop, False, axis=-1)
    return mask.reshape(out_channels, in_channels)


def _block_scores(score: np.ndarray, block_size: int) -> np.ndarray:
    out_channels, in_channels = score.shape
    rows = -(-out_channels // block_size)
    padded = np.zeros((rows * block_size, in_channels), score.dtype)
    padded[:out_channels] = score
    return padded.reshape(rows, block_size, in_channels).sum(axis=1)  # [rows, I]


def mask_blocks(score: np.ndarray, fraction: float, block_size: int, selection: str = "global") -> np.ndarray:
    """Block mask [ceil(O/B), I] dropping ``fraction`` of the blocks with the lowest summed score.

    ``selection="global"``: one threshold over every block of ``score`` (block rows keep different
    counts; BSR stores that); ``"row"``: the same ``round(fraction * I)`` dropped in every block row.
    """
    blocks = _block_scores(score, block_size)
    mask = np.ones(blocks.shape, bool)
    if selection == "row":
        drop = int(round(fraction * blocks.shape[1]))
        if drop:
            np.put_along_axis(mask, np.argsort(blocks, axis=1, kind="stable")[:, :drop], False, axis=1)
        return mask
    if selection != "global":
        raise LlmPruneError(f"unknown block selection {selection!r}: use one of {', '.join(SELECTIONS)}")
    drop = int(round(fraction * blocks.size))
    if drop:
        mask.reshape(-1)[np.argsort(blocks.reshape(-1), kind="stable")[:drop]] = False
    return mask


def _expand_blocks(block_mask: np.ndarray, block_size: int, out_channels: int) -> np.ndarray:
    return np.repeat(block_mask, block_size, axis=0)[:out_channels]


def _mask(score: np.ndarray, target: PruneTarget) -> np.ndarray:
    if target.semi_structured:
        return mask_2_4(score)
    return _expand_blocks(mask_blocks(score, target.fraction, target.block_size, target.selection),
                          target.block_size, score.shape[0])


# ---------------------------------------------------------------- one layer
def _sparsegpt(weight: np.ndarray, hessian: np.ndarray, target: PruneTarget) -> tuple[np.ndarray, np.ndarray]:
    W = weight.astype(np.float64).copy()
    H = hessian.astype(np.float64).copy()
    out_channels, in_channels = W.shape
    dead = np.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H[np.diag_indices(in_channels)] += DAMPING * float(np.mean(np.diag(H)))
    # Upper Cholesky factor of H^-1 (row j holds the OBS update for column j given columns < j fixed).
    Hinv = np.linalg.cholesky(np.linalg.inv(H)).T
    mask = np.zeros(W.shape, bool)
    for start in range(0, in_channels, CHUNK):
        end = min(start + CHUNK, in_channels)
        W1 = W[:, start:end].copy()
        Hinv1 = Hinv[start:end, start:end]
        d = np.diag(Hinv1)
        Q1 = np.zeros_like(W1)
        Err1 = np.zeros_like(W1)
        if not target.semi_structured:
            mask[:, start:end] = _mask(W1 ** 2 / d[None, :] ** 2, target)
        for j in range(end - start):
            if target.semi_structured and j % 4 == 0:
                mask[:, start + j:start + j + 4] = mask_2_4(W1[:, j:j + 4] ** 2 / d[None, j:j + 4] ** 2)
            w = W1[:, j]
            q = np.where(mask[:, start + j], w, 0.0)
            Q1[:, j] = q
            err = (w - q) / d[j]
            W1[:, j:] -= np.outer(err, Hinv1[j, j:])
            Err1[:, j] = err
        W[:, start:end] = Q1
        W[:, end:] -= Err1 @ Hinv[start:end, end:]
    return (W * mask).astype(np.float32), mask


def prune_weight(weight: np.ndarray, target: PruneTarget, method: str,
                 hessian: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Prune ``weight`` [O, I]; returns (pruned weight, bool mask [O, I]). ``hessian`` = X^T X for wanda/reconstruct."""
    if method == "magnitude":
        mask = _mask(np.abs(weight), target)
        return np.where(mask, weight, 0.0).astype(np.float32), mask
    if hessian is None:
        raise LlmPruneError(f"method {method!r} needs calibration activations")
    if method == "wanda":
        norms = np.sqrt(np.maximum(np.diag(hessian), 0.0))
        mask = _mask(np.abs(weight) * norms[None, :], target)
        return np.where(mask, weight, 0.0).astype(np.float32), mask
    if method == "reconstruct":
        return _sparsegpt(weight, hessian, target)
    raise LlmPruneError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")


# ---------------------------------------------------------------- the decoder, block by block
def calibration_tokens(gm: GgufModel, text: str, max_tokens: int, seq_len: int) -> list[np.ndarray]:
    """Tokenise ``text`` and cut its first ``max_tokens`` tokens into sequences of ``seq_len``."""
    from .tokenizer import build_tokenizer

    if not text or not text.strip():
        raise LlmPruneError("the calibration text is empty")
    ids = np.asarray(build_tokenizer(gm.metadata).encode(text).ids[:max_tokens], np.int64)
    if ids.size < 2:
        raise LlmPruneError("the calibration text has fewer than 2 tokens")
    return [ids[i:i + seq_len] for i in range(0, ids.size, seq_len)]


def _hessian(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    return (x.T @ x).astype(np.float64)


def _attention(gm: GgufModel, i: int, h: np.ndarray, lengths: list[int]) -> np.ndarray:
    """Causal self-attention of every calibration sequence (no cache): [tokens, heads * head_dim]."""
    c = gm.config
    out, start = [], 0
    group = c.heads // c.kv_heads
    for length in lengths:
        x = h[start:start + length]
        start += length
        pos = np.arange(length)
        q = rope_adjacent_pairs((x @ gm.layer(i, "attn_q").T).reshape(length, c.heads, c.head_dim), pos, c.rope_base)
        k = rope_adjacent_pairs((x @ gm.layer(i, "attn_k").T).reshape(length, c.kv_heads, c.head_dim), pos, c.rope_base)
        v = (x @ gm.layer(i, "attn_v").T).reshape(length, c.kv_heads, c.head_dim)
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
        scores = np.einsum("thd,shd->hts", q, k) / np.float32(np.sqrt(c.head_dim))
        scores = np.where(np.tril(np.ones((length, length), bool))[None], scores, -np.inf)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = (scores / scores.sum(axis=-1, keepdims=True)).astype(np.float32)
        out.append(np.einsum("hts,shd->thd", probs, v).reshape(length, c.heads * c.head_dim))
    return np.concatenate(out, axis=0)


def _dense_target_weight(weight: np.ndarray, hessian: np.ndarray, cross: np.ndarray) -> np.ndarray:
    """The dense ``W'`` minimising ``||X_d W^T - X_p W'^T||``: ``W + W (G - H) (H + damping)^-1``.

    ``H = X_p^T X_p`` (inputs of the model pruned so far), ``G = X_d^T X_p`` (``X_d``: the same layer's
    inputs in the dense model). SparseGPT then prunes ``W'`` under ``H``, so each layer reproduces the
    dense model's outputs rather than the drifted ones and errors stop accumulating block after block.
    """
    H = hessian.astype(np.float64).copy()
    dead = np.diag(H) == 0
    H[dead, dead] = 1.0
    H[np.diag_indices(H.shape[0])] += DAMPING * float(np.mean(np.diag(H)))
    delta = (cross - hessian).astype(np.float64)
    correction = np.linalg.solve(H, delta.T @ weight.astype(np.float64).T).T
    return (weight + correction).astype(np.float32)


def _wanda_outlier_ratio(weights: list[np.ndarray], x_norms: list[np.ndarray], m: float) -> float:
    scores = np.concatenate([(np.abs(w) * n[None, :]).ravel() for w, n in zip(weights, x_norms)])
    return float(np.mean(scores > m * scores.mean()))


def owl_fractions(gm: GgufModel, calibration: list[np.ndarray], fraction: float, layers: str = "all",
                  lam: float = OWL_LAMBDA, m: float = OWL_M) -> list[float]:
    """Per-block sparsity by outlier-weighted layerwise sparsity (OWL, Yin et al. 2024), averaging ``fraction``.

    A dense forward pass on the calibration tokens measures, per block, the share of Wanda scores
    ``|W_oj| ||X_j||`` above ``m`` x their mean (over the block's selected layers); blocks with more
    outliers get less sparsity, linearly over ``[fraction - lam, fraction + lam]``, recentred on
    ``fraction`` (every block has the same size, so the pruned layers' overall fraction is ``fraction``).
    """
    c = gm.config
    selected = LAYER_SETS[layers]
    lengths = [len(s) for s in calibration]
    x = gm.embedding[np.concatenate(calibration)]
    ratios = []
    for i in range(c.layers):
        inputs = {}
        h = rms_norm(x, gm.layer(i, "attn_norm"), c.rms_eps)
        inputs.update(dict.fromkeys(("attn_q", "attn_k", "attn_v"), h))
        a = _attention(gm, i, h, lengths)
        inputs["attn_output"] = a
        x = x + a @ gm.layer(i, "attn_output").T
        h = rms_norm(x, gm.layer(i, "ffn_norm"), c.rms_eps)
        inputs.update(dict.fromkeys(("ffn_gate", "ffn_up"), h))
        s = silu(h @ gm.layer(i, "ffn_gate").T) * (h @ gm.layer(i, "ffn_up").T)
        inputs["ffn_down"] = s
        x = x + s @ gm.layer(i, "ffn_down").T
        ratios.append(_wanda_outlier_ratio([gm.layer(i, n) for n in selected],
                                           [np.sqrt(np.mean(inputs[n].astype(np.float64) ** 2, axis=0)) for n in selected], m))
    return allocate_fractions(np.asarray(ratios), fraction, lam)


def allocate_fractions(outlier_ratios: np.ndarray, fraction: float, lam: float) -> list[float]:
    """OWL's mapping: density spread linearly over 2*lam by outlier ratio, then recentred so the mean sparsity is ``fraction``."""
    r = np.asarray(outlier_ratios, np.float64)
    spread = r.max() - r.min()
    density = (r - r.min()) / spread * 2 * lam if spread > 0 else np.zeros_like(r)
    sparsity = fraction - (density - density.mean())
    if sparsity.min() <= 0 or sparsity.max() >= 1:
        raise LlmPruneError(f"OWL allocation leaves (0, 1): fraction {fraction} +- {lam}")
    return [float(v) for v in sparsity]


def prune_decoder(gm: GgufModel, target: PruneTarget, method: str = "magnitude", layers: str = "all",
                  calibration: list[np.ndarray] | None = None, progress: bool = True,
                  selection: str | None = None, dense_targets: bool = False, allocation: str = "uniform",
                  owl_lambda: float = OWL_LAMBDA, owl_m: float = OWL_M,
                  ) -> tuple[GgufModel, list[dict], dict[str, np.ndarray]]:
    """A copy of ``gm`` with the selected linear layers pruned, a per-layer report, and each layer's mask.

    ``selection`` overrides ``target.selection`` (group sparsity). ``dense_targets`` (reconstruct only):
    each layer reproduces the dense model's outputs (see ``_dense_target_weight``). ``allocation="owl"``
    (group sparsity): per-block fractions from ``owl_fractions``, averaging ``target.fraction``.
    The masks are kept apart from the weights because reconstruction can leave a kept weight at exactly 0.
    """
    if method not in METHODS:
        raise LlmPruneError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    if layers not in LAYER_SETS:
        raise LlmPruneError(f"unknown layer set {layers!r}: use one of {', '.join(LAYER_SETS)}")
    if allocation not in ALLOCATIONS:
        raise LlmPruneError(f"unknown allocation {allocation!r}: use one of {', '.join(ALLOCATIONS)}")
    needs_data = method != "magnitude"
    if needs_data and not calibration:
        raise LlmPruneError(f"method {method!r} needs calibration text (--calibration)")
    if allocation != "uniform" and (target.semi_structured or not needs_data):
        raise LlmPruneError("--allocation owl needs fractional sparsity and calibration (wanda, reconstruct)")
    if selection is not None:
        if selection not in SELECTIONS:
            raise LlmPruneError(f"unknown block selection {selection!r}: use one of {', '.join(SELECTIONS)}")
        target = dataclasses.replace(target, selection=selection)
    dense_targets = dense_targets and method == "reconstruct"
    c = gm.config
    if target.semi_structured:
        for name in LAYER_SETS[layers]:
            if gm.layer(0, name).shape[1] % 4:
                raise LlmPruneError(f"{name} has {gm.layer(0, name).shape[1]} inputs, not a multiple of 4 (2:4)")
    block_targets = [target] * c.layers
    if allocation == "owl":
        fractions = owl_fractions(gm, calibration, target.fraction, layers, owl_lambda, owl_m)
        block_targets = [dataclasses.replace(target, fraction=f) for f in fractions]
        if progress:
            _log("OWL block sparsity: " + " ".join(f"{f:.3f}" for f in fractions))
    pruned = GgufModel(gm.config, dict(gm.weights), gm.metadata, gm.path)
    selected = set(LAYER_SETS[layers])
    report: list[dict] = []
    masks: dict[str, np.ndarray] = {}
    began = time.perf_counter()

    def prune(i: int, names: tuple[str, ...], x: np.ndarray | None, xd: np.ndarray | None = None) -> None:
        names = tuple(n for n in names if n in selected)
        if not names:
            return
        hessian = _hessian(x) if needs_data and x is not None else None
        cross = (xd.T @ x).astype(np.float64) if dense_targets and xd is not None else None
        for name in names:
            key = f"blk.{i}.{name}.weight"
            dense = gm.weights[key]
            source = _dense_target_weight(dense, hessian, cross) if cross is not None else dense
            w, mask = prune_weight(source, block_targets[i], method, hessian)
            pruned.weights[key] = w
            masks[key] = mask
            entry = {"name": key, "shape": list(dense.shape), "sparsity": round(1.0 - float(mask.mean()), 4)}
            if x is not None:  # relative output error against the dense layer's outputs
                ref = (xd if xd is not None else x) @ dense.T
                entry["output_rel_error"] = round(float(np.linalg.norm(x @ w.T - ref) / max(np.linalg.norm(ref), 1e-30)), 5)
            report.append(entry)

    x = xd = None
    lengths = [len(s) for s in calibration] if needs_data else []
    if needs_data:
        x = pruned.embedding[np.concatenate(calibration)]
        xd = x.copy() if dense_targets else None
    for i in range(c.layers):
        if not needs_data:
            for group in (("attn_q", "attn_k", "attn_v"), ("attn_output",), ("ffn_gate", "ffn_up"), ("ffn_down",)):
                prune(i, group, None)
        else:
            hd = ad = sd = None
            h = rms_norm(x, pruned.layer(i, "attn_norm"), c.rms_eps)
            if dense_targets:
                hd = rms_norm(xd, gm.layer(i, "attn_norm"), c.rms_eps)
            prune(i, ("attn_q", "attn_k", "attn_v"), h, hd)
            a = _attention(pruned, i, h, lengths)
            if dense_targets:
                ad = _attention(gm, i, hd, lengths)
            prune(i, ("attn_output",), a, ad)
            x = x + a @ pruned.layer(i, "attn_output").T
            h = rms_norm(x, pruned.layer(i, "ffn_norm"), c.rms_eps)
            if dense_targets:
                xd = xd + ad @ gm.layer(i, "attn_output").T
                hd = rms_norm(xd, gm.layer(i, "ffn_norm"), c.rms_eps)
            prune(i, ("ffn_gate", "ffn_up"), h, hd)
            s = silu(h @ pruned.layer(i, "ffn_gate").T) * (h @ pruned.layer(i, "ffn_up").T)
            if dense_targets:
                sd = silu(hd @ gm.layer(i, "ffn_gate").T) * (hd @ gm.layer(i, "ffn_up").T)
            prune(i, ("ffn_down",), s, sd)
            x = x + s @ pruned.layer(i, "ffn_down").T
            if dense_targets:
                xd = xd + sd @ gm.layer(i, "ffn_down").T
        if progress:
            _log(f"layer {i + 1}/{c.layers} pruned ({method}, {block_targets[i].describe()}) "
                 f"[{time.perf_counter() - began:.0f} s]")
    return pruned, report, masks


# ---------------------------------------------------------------- graph rewrite
def _placeholder(name: str, array: np.ndarray) -> TensorProto:
    tensor = TensorProto()
    tensor.name = name
    tensor.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
    tensor.dims.extend(array.shape)
    return tensor


def sparsify_graph(decoder: DecoderModel, pruned: GgufModel, target: PruneTarget, masks: dict[str, np.ndarray],
                   export_info: dict) -> DecoderModel:
    """Replace the MatMul of every weight in ``masks`` (GGUF names -> bool [O, I]) by its sparse op."""
    names = list(masks)
    graph = decoder.model.graph
    by_weight = {n.input[1]: n for n in graph.node if n.op_type == "MatMul" and n.input[1] in names}
    new_inits: dict[str, np.ndarray] = {}
    for name in names:
        old = by_weight[name]
        weight = pruned.weights[name]  # [O, I]
        op_name = name.removesuffix(".weight")
        if target.semi_structured:
            node, tensors = make_semi_structured_node(op_name, old.input[0], old.output[0],
                                                      encode_2_4(weight, masks[name]))
        else:
            block_mask = _block_scores(masks[name].astype(np.float32), target.block_size) > 0
            node, tensors = _group_node(op_name, old, weight, block_mask, target.block_size)
        idx = list(graph.node).index(old)
        graph.node.remove(old)
        graph.node.insert(idx, node)
        del decoder.weights[name]
        new_inits.update(tensors)
    kept = [t for t in graph.initializer if t.name not in names]
    del graph.initializer[:]
    graph.initializer.extend(kept + [_placeholder(n, a) for n, a in new_inits.items()])
    decoder.weights.update(new_inits)
    op = fmt.SEMI_STRUCTURED_MATMUL if target.semi_structured else fmt.GROUP_SPARSE_MATMUL
    decoder.model.functions.append(semi_structured_function() if target.semi_structured else function_for(op))
    helper.set_model_props(decoder.model, {**{p.key: p.value for p in decoder.model.metadata_props},
                                           fmt.META_LLM_PRUNE: json.dumps(export_info, separators=(",", ":"))})
    return decoder


def _group_node(op_name, old, weight, block_mask, block_size):
    from ..sparsify.writer import make_sparse_node

    bsr = encode_bsr(weight[:, :, None], block_mask, block_size)
    return make_sparse_node(fmt.GROUP_SPARSE_MATMUL, op_name, old.input[0], old.output[0], bsr,
                            np.zeros(weight.shape[0], np.float32), block_size, weight.shape[0],
                            (-fmt.NO_CLAMP, fmt.NO_CLAMP))


# ---------------------------------------------------------------- export
def export_llm(gguf_path: Path | str, out_dir: Path | str, sparsity: str = "2:4", pattern: str | None = None,
               method: str = "magnitude", calibration_text: str | None = None, layers: str = "all",
               calibration_max_tokens: int | None = None, calibration_seq_len: int = 256,
               progress: bool = True, selection: str = "global", dense_targets: bool | None = None,
               allocation: str = "uniform", owl_lambda: float = OWL_LAMBDA, recover_steps: int = 0,
               recover_lr: float | None = None, recover_batch: int | None = None) -> Path:
    """Prune ``gguf_path``'s decoder and write the model directory; returns ``out_dir/model.onnx``.

    ``calibration_max_tokens`` None: ``CALIBRATION_TOKENS[method]``; ``dense_targets`` None: off (measured
    worse). ``recover_steps`` > 0: distil the dense model into the pruned one on the whole calibration
    text afterwards (``recover.recover``; needs PyTorch), masks unchanged.
    """
    from .build import MODEL_FILE, build_decoder_dir

    target = parse_target(sparsity, pattern)
    if method not in METHODS:
        raise LlmPruneError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    if layers not in LAYER_SETS:
        raise LlmPruneError(f"unknown layer set {layers!r}: use one of {', '.join(LAYER_SETS)}")
    if calibration_text is not None and not calibration_text.strip():
        raise LlmPruneError("the calibration text is empty")
    if method != "magnitude" and calibration_text is None:
        raise LlmPruneError(f"method {method!r} needs calibration text (--calibration)")
    if selection not in SELECTIONS:
        raise LlmPruneError(f"unknown block selection {selection!r}: use one of {', '.join(SELECTIONS)}")
    if allocation not in ALLOCATIONS:
        raise LlmPruneError(f"unknown allocation {allocation!r}: use one of {', '.join(ALLOCATIONS)}")
    if allocation != "uniform" and (target.semi_structured or method == "magnitude"):
        raise LlmPruneError("--allocation owl needs fractional sparsity and calibration (wanda, reconstruct)")
    if calibration_max_tokens is None:
        calibration_max_tokens = CALIBRATION_TOKENS[method]
    if method != "magnitude" and calibration_max_tokens < 2:
        raise LlmPruneError(f"--calibration-tokens must be at least 2, got {calibration_max_tokens}")
    if dense_targets is None:
        dense_targets = method == "reconstruct" and DENSE_TARGETS_DEFAULT
    if recover_steps < 0:
        raise LlmPruneError(f"--recover-steps must be 0 (off) or more, got {recover_steps}")
    if recover_steps and calibration_text is None:
        raise LlmPruneError("--recover-steps needs calibration text (--calibration): recovery distils the dense "
                            "model on it")
    if recover_steps:
        from .recover import check_recover_settings

        check_recover_settings(recover_lr, recover_batch)
    if not Path(gguf_path).is_file():
        raise LlmPruneError(f"GGUF file not found: {gguf_path}")
    gm = load_gguf(gguf_path, progress=progress)
    calibration = None
    if method != "magnitude":
        calibration = calibration_tokens(gm, calibration_text, calibration_max_tokens, calibration_seq_len)
        _log(f"calibration: {sum(len(s) for s in calibration)} tokens in {len(calibration)} sequences")
    pruned, report, masks = prune_decoder(gm, target, method, layers, calibration, progress, selection=selection,
                                          dense_targets=dense_targets, allocation=allocation, owl_lambda=owl_lambda)
    info = {"source": Path(gguf_path).name, "sparsity": str(sparsity), "pattern": "2:4" if target.semi_structured
            else f"{target.block_size}x1", "method": method, "layers": layers,
            "calibration_tokens": sum(len(s) for s in calibration) if calibration else 0,
            "selection": selection, "dense_targets": bool(dense_targets and method == "reconstruct"),
            "allocation": allocation, "report": report}
    if recover_steps:
        from .recover import recover, recovery_tokens

        pruned, info["recover"] = recover(gm, pruned, masks, recovery_tokens(gm, calibration_text), recover_steps,
                                          lr=recover_lr, batch=recover_batch, progress=progress)
    finals = build_decoder_dir(pruned, out_dir,
                               transform=lambda d: sparsify_graph(d, pruned, target, masks, info))
    if progress:
        total = sum(int(np.prod(r["shape"])) for r in report)
        zeros = sum(int(np.prod(r["shape"])) * r["sparsity"] for r in report)
        _log(f"{len(report)} layers pruned, {zeros / max(total, 1):.1%} of their weights removed")
    return finals[MODEL_FILE]

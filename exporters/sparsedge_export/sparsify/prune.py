"""Block scores, per-layer sparsity allocation and block masks.

A block is (block row of B output channels, one input channel) x all K taps
(docs/FORMAT.md). Scores are the block's L2 norm, optionally activation-aware
(Wanda: each input channel's weights times that channel's activation norm).
Global allocation compares layers through LAMP-normalised scores; a plain
per-layer RMS normalisation pruned the small early layers of EfficientNet-Lite0
hardest (75%), which are the most sensitive ones.
"""

from __future__ import annotations

import numpy as np

from .graph import Layer

__all__ = ["ALLOCATIONS", "PATTERNS", "allocate", "block_counts", "block_scores", "mask_from_scores",
           "parse_pattern", "prune_weight"]

PATTERNS = {"1x1": 1, "2x1": 2, "4x1": 4, "8x1": 8}
ALLOCATIONS = ("global", "uniform", "sensitivity")
MAX_LAYER_SPARSITY = 0.95  # never empty a layer completely under global/sensitivity allocation
_SENSITIVITY_GRID = np.round(np.append(np.arange(0.0, 0.9 + 1e-9, 0.1), MAX_LAYER_SPARSITY), 2)


def parse_pattern(pattern: str) -> int:
    from .errors import InvalidPatternError

    if pattern not in PATTERNS:
        raise InvalidPatternError(f"unknown pattern {pattern!r}: use one of {', '.join(PATTERNS)} "
                                  f"(B output channels x 1 input channel)")
    return PATTERNS[pattern]


def block_counts(layer: Layer, block: int) -> np.ndarray:
    """Real (unpadded) weights in each block, [rows, I]."""
    rows = -(-layer.out_channels // block)
    per_row = np.full(rows, block)
    per_row[-1] = layer.out_channels - block * (rows - 1)
    return np.repeat((per_row * layer.taps)[:, None], layer.in_channels, axis=1)


def block_scores(weight: np.ndarray, block: int, act_norm: np.ndarray | None = None) -> np.ndarray:
    """[rows, I] block L2 norms of ``weight`` [O, I, K] (times input activation norms if given)."""
    out_c, in_c, taps = weight.shape
    rows = -(-out_c // block)
    energy = np.zeros((rows * block, in_c))
    energy[:out_c] = (weight.astype(np.float64) ** 2).sum(axis=2)
    scores = np.sqrt(energy.reshape(rows, block, in_c).sum(axis=1))
    if act_norm is not None:
        scores = scores * act_norm[None, :]
    rms = np.sqrt(np.mean(scores ** 2))
    return scores / max(rms, 1e-30)


def mask_from_scores(scores: np.ndarray, prune_blocks: int) -> np.ndarray:
    """Keep all but the ``prune_blocks`` lowest-scoring blocks (ties broken by position)."""
    flat = scores.ravel()
    mask = np.ones(flat.size, bool)
    if prune_blocks > 0:
        mask[np.argsort(flat, kind="stable")[:prune_blocks]] = False
    return mask.reshape(scores.shape)


def prune_weight(weight: np.ndarray, mask: np.ndarray, block: int) -> np.ndarray:
    out_c = weight.shape[0]
    row_mask = np.repeat(mask, block, axis=0)[:out_c]  # [O, I]
    return weight * row_mask[:, :, None]


def allocate(method: str, scores: list[np.ndarray], counts: list[np.ndarray], target: float,
             grams: list[np.ndarray | None] | None = None, weights: list[np.ndarray] | None = None,
             block: int = 1) -> list[int]:
    """Blocks to prune per layer so that the pruned weights are ``target`` of all weights."""
    total = sum(int(c.sum()) for c in counts)
    goal = target * total
    if method == "uniform":
        return [int(round(target * s.size)) for s in scores]
    if method == "global":
        return _allocate_global(scores, counts, goal)
    if method == "sensitivity":
        return _allocate_sensitivity(scores, counts, goal, grams, weights, block)
    raise ValueError(f"unknown allocation {method!r}: use one of {', '.join(ALLOCATIONS)}")


def lamp_scores(scores: np.ndarray) -> np.ndarray:
    """LAMP normalisation (Lee et al. 2021) of one layer's block scores, in ascending score order:
    score_i^2 / sum of score_j^2 over the blocks at least as important. A global threshold on it
    prunes big redundant layers harder than small ones without a per-layer budget."""
    energy = np.sort(scores.ravel()) ** 2
    tail = np.cumsum(energy[::-1])[::-1]
    return energy / np.maximum(tail, 1e-300)


def _allocate_global(scores, counts, goal) -> list[int]:
    """One threshold on LAMP-normalised block scores over all layers (<= MAX_LAYER_SPARSITY each)."""
    items = []
    for layer_idx, (s, c) in enumerate(zip(scores, counts)):
        order = np.argsort(s.ravel(), kind="stable")
        items.append((lamp_scores(s), c.ravel()[order], np.full(s.size, layer_idx)))
    all_scores = np.concatenate([i[0] for i in items])
    all_counts = np.concatenate([i[1] for i in items])
    all_layers = np.concatenate([i[2] for i in items])
    caps = [int(np.floor(MAX_LAYER_SPARSITY * s.size)) for s in scores]
    pruned = [0] * len(scores)
    removed = 0.0
    for idx in np.argsort(all_scores, kind="stable"):
        if removed + all_counts[idx] / 2 > goal:
            break
        layer = all_layers[idx]
        if pruned[layer] >= caps[layer]:
            continue
        pruned[layer] += 1
        removed += all_counts[idx]
    return pruned


def _layer_error_curve(weight: np.ndarray, scores: np.ndarray, gram: np.ndarray | None, block: int) -> np.ndarray:
    """Relative output error of the layer (||dW X||^2 / ||W X||^2) at each grid sparsity."""
    out_c, in_c, taps = weight.shape
    w2 = weight.reshape(out_c, in_c * taps).astype(np.float64)
    denom = float(((w2 @ gram) * w2).sum()) if gram is not None else float((w2 ** 2).sum())
    errors = []
    for s in _SENSITIVITY_GRID:
        mask = mask_from_scores(scores, int(round(s * scores.size)))
        delta = (weight - prune_weight(weight, mask, block)).reshape(out_c, -1)
        if gram is not None:
            err = float(((delta @ gram) * delta).sum())
        else:
            err = float((delta ** 2).sum())
        errors.append(err / max(denom, 1e-30))
    return np.maximum.accumulate(np.asarray(errors))


def _allocate_sensitivity(scores, counts, goal, grams, weights, block) -> list[int]:
    """Greedy: raise the sparsity of the layer whose relative error grows least per weight removed."""
    curves = [_layer_error_curve(w, s, g, block) for w, s, g in zip(weights, scores, grams or [None] * len(scores))]
    sizes = [float(c.sum()) for c in counts]
    level = [0] * len(scores)
    removed = 0.0
    fraction = [0.0] * len(scores)
    grid = _SENSITIVITY_GRID
    while removed < goal:
        costs = []
        for i, curve in enumerate(curves):
            if level[i] + 1 >= len(curve):
                costs.append(np.inf)
                continue
            step = grid[level[i] + 1] - grid[level[i]]
            costs.append((curve[level[i] + 1] - curve[level[i]]) / (step * sizes[i]))
        best = int(np.argmin(costs))
        if not np.isfinite(costs[best]):
            break
        gain = (grid[level[best] + 1] - grid[level[best]]) * sizes[best]
        if removed + gain > goal:  # last step: only the part that reaches the goal
            fraction[best] = (goal - removed) / sizes[best]
            removed = goal
            break
        level[best] += 1
        removed += gain
    return [int(round((_SENSITIVITY_GRID[lv] + fr) * s.size)) for lv, fr, s in zip(level, fraction, scores)]

"""Whole-network channel rearrangement (SparseByteNN-style).

For each channel space, output channels whose important inputs coincide are
placed in the same block of B, so block pruning removes less weight. The
permutation leaves the dense network's function unchanged (spaces.py applies
it to producers, per-channel layers and consumers alike).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .graph import Layer, Net
from .spaces import ChannelSpace, apply_permutation, find_spaces

__all__ = ["RearrangeResult", "choose_permutation", "rearrange", "retained_energy"]


@dataclass
class RearrangeResult:
    spaces: int          # permutable spaces found
    permuted: int        # spaces whose permutation is not the identity
    gain: float          # mean relative gain in retained weight energy over permuted spaces


def _row_profiles(net: Net, sp: ChannelSpace, layers_by_node: dict[int, Layer]) -> np.ndarray | None:
    """[C, sum of input channels] squared weight per (output channel, input channel), per producer
    normalised to unit mean so that producers of different scale count alike."""
    parts = []
    for node in sp.producers:
        layer = layers_by_node.get(id(node))
        if layer is None:  # protected or not pruned: its block structure does not matter
            continue
        energy = (layer.get_weight(net).astype(np.float64) ** 2).sum(axis=2)  # [O, I]
        parts.append(energy / max(energy.mean(), 1e-30))
    return np.concatenate(parts, axis=1) if parts else None


def retained_energy(profile: np.ndarray, perm: np.ndarray, block: int, sparsity: float) -> float:
    """Weight energy kept when the permuted rows are block-pruned to ``sparsity`` (one score pool)."""
    rows = profile[perm]
    pad = (-len(rows)) % block
    if pad:
        rows = np.vstack([rows, np.zeros((pad, rows.shape[1]))])
    scores = rows.reshape(-1, block, rows.shape[1]).sum(axis=1).ravel()
    keep = len(scores) - int(round(sparsity * len(scores)))
    return float(np.sort(scores)[::-1][:keep].sum())


def choose_permutation(profile: np.ndarray, block: int) -> np.ndarray:
    """Balanced greedy clustering: seed = heaviest free row, fill the block with the free rows
    most similar (cosine of importance profiles) to the block's running sum."""
    count = len(profile)
    norms = np.linalg.norm(profile, axis=1) + 1e-30
    unit = profile / norms[:, None]
    free = np.ones(count, bool)
    order = []
    for seed in np.argsort(-norms):
        if not free[seed]:
            continue
        free[seed] = False
        members = [seed]
        acc = unit[seed].copy()
        while len(members) < block and free.any():
            candidates = np.flatnonzero(free)
            sims = unit[candidates] @ acc
            best = candidates[int(np.argmax(sims))]
            free[best] = False
            members.append(best)
            acc += unit[best]
        order.extend(members)
    return np.asarray(order, dtype=np.int64)


def rearrange(net: Net, layers: list[Layer], block: int, sparsity: float, log=None) -> RearrangeResult:
    """Permute every permutable channel space of ``net`` in place; ``layers`` are the pruned ones."""
    spaces = find_spaces(net)
    layers_by_node = {id(layer.node): layer for layer in layers}
    permuted, gains = 0, []
    if block == 1:
        return RearrangeResult(len(spaces), 0, 0.0)
    for sp in spaces:
        profile = _row_profiles(net, sp, layers_by_node)
        if profile is None or sp.channels <= block:
            continue
        identity = np.arange(sp.channels)
        target = sparsity if sparsity > 0 else 0.5  # score at the target (any level for the dense case)
        base = retained_energy(profile, identity, block, target)
        perm = choose_permutation(profile, block)
        gain = retained_energy(profile, perm, block, target) / max(base, 1e-30) - 1.0
        if gain <= 0:
            continue
        apply_permutation(net, sp, perm)
        permuted += 1
        gains.append(gain)
        if log:
            log(f"rearrange: {sp.channels} channels, {len(sp.producers)} producer(s), "
                f"retained energy +{100 * gain:.1f}%")
    return RearrangeResult(len(spaces), permuted, float(np.mean(gains)) if gains else 0.0)

"""Training-free recovery: least-squares re-fit of the kept weights.

For each pruned layer, in network order, the kept weights of every block row
(its support: kept input channels x taps, plus the bias) are re-fit so that the
layer, fed the inputs it sees in the already-sparsified network, reproduces the
dense layer's pre-activation output on the dense network's inputs:

    min_w ||X_sparse[:, S] w - X_dense W_dense^T||^2 + damping ||w - w_pruned||^2

solved through regularised normal equations. The penalty pulls toward the plainly
pruned weights rather than toward zero: with a few dozen calibration images the
Gram matrix of a wide layer (1152 inputs at 7x7) is ill-conditioned, and a
SparseGPT-style 1% ridge toward zero over-fitted (worse on other photos). Correcting for upstream error is what makes the
sequential order worth its cost: one onnxruntime pass per group of layers (at most
MAX_CAPTURE_PASSES).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .calibration import layer_rows, run_capture
from .graph import Layer, Net
from .prune import prune_weight

__all__ = ["DenseStats", "capture_dense", "recover_layers", "refit_layer"]

DAMPING = 0.1  # times the mean Gram diagonal; chosen on held-out photos (0.01 over-fitted)
MAX_CAPTURE_PASSES = 12


@dataclass
class DenseStats:
    rows: dict[int, np.ndarray]       # layer index -> dense input rows [M, I*K] (float32)
    act_norm: dict[int, np.ndarray]   # layer index -> per input channel L2 norm [I]
    gram: dict[int, np.ndarray]       # layer index -> rows^T rows [I*K, I*K]


def capture_dense(net: Net, layers: list[Layer], data: np.ndarray) -> DenseStats:
    collected: dict[int, list[np.ndarray]] = {layer.index: [] for layer in layers}

    def on_sample(sample, values):
        for layer in layers:
            collected[layer.index].append(layer_rows(layer, values[layer.x], sample).astype(np.float32))

    run_capture(net, data, [layer.x for layer in layers], on_sample)
    stats = DenseStats({}, {}, {})
    for layer in layers:
        rows = np.concatenate(collected[layer.index])
        gram = rows.T.astype(np.float64) @ rows
        stats.rows[layer.index] = rows
        stats.gram[layer.index] = gram
        diag = np.diag(gram).reshape(layer.in_channels, layer.taps).sum(axis=1)
        stats.act_norm[layer.index] = np.sqrt(np.maximum(diag, 0.0) / max(len(rows), 1))
    return stats


def refit_layer(weight: np.ndarray, bias: np.ndarray, mask: np.ndarray, block: int,
                sparse_rows: np.ndarray, dense_rows: np.ndarray,
                fit_bias: bool = True, damping: float | None = None) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Re-fit kept weights (and the bias); returns (weight [O,I,K], bias, rel. error before, after)."""
    out_c, in_c, taps = weight.shape
    width = in_c * taps
    ones = np.ones((len(sparse_rows), 1))
    xs = np.hstack([sparse_rows, ones])
    xd = np.hstack([dense_rows.astype(np.float64), ones])
    w_aug = np.hstack([weight.reshape(out_c, -1), bias[:, None]]).astype(np.float64)  # [O, D+1]
    target = xd @ w_aug.T                                                              # [M, O]
    pruned = prune_weight(weight, mask, block)
    w_pruned = np.hstack([pruned.reshape(out_c, -1), bias[:, None]]).astype(np.float64)
    gram = xs.T @ xs
    new = w_pruned.copy()
    residual_target = target if fit_bias else target - bias[None, :]
    cross = xs.T @ residual_target                                                     # [D+1, O]
    for row in range(mask.shape[0]):
        channels = np.flatnonzero(mask[row])
        cols = (channels[:, None] * taps + np.arange(taps)).ravel()
        if fit_bias:
            cols = np.concatenate([cols, [width]])
        if len(cols) == 0:
            continue
        lo, hi = row * block, min((row + 1) * block, out_c)
        g = gram[np.ix_(cols, cols)]
        strength = (DAMPING if damping is None else damping) * float(np.mean(np.diag(g))) + 1e-12
        g = g + strength * np.eye(len(cols))
        rhs = cross[cols, lo:hi] + strength * w_pruned[lo:hi, cols].T  # shrink toward plain pruning
        try:
            solution = np.linalg.solve(g, rhs)
        except np.linalg.LinAlgError:
            solution = np.linalg.lstsq(g, rhs, rcond=None)[0]
        new[lo:hi, cols] = solution.T
    scale = float((target ** 2).sum()) + 1e-30
    err_before = float(((xs @ w_pruned.T - target) ** 2).sum()) / scale
    err_after = float(((xs @ new.T - target) ** 2).sum()) / scale
    if not err_after < err_before:  # never leave a layer worse than plain pruning
        return pruned, bias, err_before, err_before
    new_weight = prune_weight(new[:, :width].reshape(out_c, in_c, taps), mask, block)
    return new_weight.astype(np.float32), new[:, width].astype(np.float32), err_before, err_after


def recover_layers(net: Net, layers: list[Layer], masks: dict[int, np.ndarray], block: int,
                   data: np.ndarray, dense: DenseStats, log=None,
                   max_passes: int = MAX_CAPTURE_PASSES) -> dict[int, tuple[float, float]]:
    """Prune and re-fit ``layers`` in order, in place in ``net``; returns {index: (err before, after)}.

    Layers are taken in consecutive groups, one onnxruntime pass per group (at most ``max_passes``):
    a group sees the inputs of the network with every earlier group already pruned and re-fit.
    """
    errors = {}
    group = -(-len(layers) // max(1, max_passes))
    for start in range(0, len(layers), group):
        chunk = layers[start:start + group]
        collected: dict[int, list[np.ndarray]] = {layer.index: [] for layer in chunk}

        def on_sample(sample, values, chunk=chunk, collected=collected):
            for layer in chunk:
                collected[layer.index].append(layer_rows(layer, values[layer.x], sample))

        run_capture(net, data, [layer.x for layer in chunk], on_sample)
        for layer in chunk:
            weight, bias, before, after = refit_layer(
                layer.get_weight(net), layer.get_bias(net), masks[layer.index], block,
                np.concatenate(collected[layer.index]), dense.rows[layer.index],
                fit_bias=layer.kind != "matmul")
            layer.set_weight(net, weight)
            _set_bias(net, layer, bias)
            errors[layer.index] = (before, after)
            if log:
                log(f"recover {layer.name}: layer output error {before:.4f} -> {after:.4f}")
    return errors


def _set_bias(net: Net, layer: Layer, bias: np.ndarray) -> None:
    if layer.kind == "matmul":  # MatMul has no bias input; its bias is not re-fit
        return
    if layer.bias is None:
        layer.bias = net.fresh_name(f"{layer.weight}.bias")
        if len(layer.node.input) > 2:
            layer.node.input[2] = layer.bias
        else:
            layer.node.input.append(layer.bias)
    net.inits[layer.bias] = bias.astype(np.float32)

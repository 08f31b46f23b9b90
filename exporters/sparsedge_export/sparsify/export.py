"""export_sparse: dense ONNX CNN -> sparsedge model (ai.sparsedge group-sparse layers).

Pipeline: load and prepare (opset check, BN fold) -> choose layers (first/last
protected) -> rearrange channels -> score blocks and allocate sparsity ->
prune (and re-fit on calibration data) -> write BSR nodes with fused
activations, function bodies and the report -> save atomically.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import numpy as np
import onnx

from .. import format as fmt
from .blas import single_threaded_blas
from .calibration import load_calibration
from .errors import CalibrationError, ExportError, InvalidSparsityError, NothingToPruneError
from .graph import Layer, Net, find_layers, load_net, prepare
from .prune import (ALLOCATIONS, allocate, block_counts, block_scores, mask_from_scores, parse_pattern,
                    prune_weight)
from .rearrange import rearrange as rearrange_channels
from .recover import capture_dense, recover_layers
from .report import ExportReport, LayerReport
from .writer import encode_bsr, finalize_model, make_sparse_node, save_model

__all__ = ["export_sparse", "sparsify_net"]


def _logger(progress: bool):
    start = time.monotonic()

    def log(message: str) -> None:
        if progress:
            print(f"[sparsedge export {time.monotonic() - start:6.1f}s] {message}", file=sys.stderr, flush=True)
    return log


def _check_sparsity(sparsity) -> float:
    try:
        value = float(sparsity)
    except (TypeError, ValueError):
        raise InvalidSparsityError(f"sparsity must be a number in [0, 1), not {sparsity!r}") from None
    if not 0.0 <= value < 1.0 or np.isnan(value):
        raise InvalidSparsityError(f"sparsity {sparsity} is outside [0, 1): give the fraction of prunable "
                                   f"weights to remove, e.g. 0.8")
    return value


def _fusable_activation(net: Net, layer: Layer) -> tuple[onnx.NodeProto | None, tuple[float, float]]:
    """A Relu / Clip(const) that alone consumes the layer's output, and its clamp bounds."""
    none = (None, (-fmt.NO_CLAMP, fmt.NO_CLAMP))
    users = net.consumers().get(layer.y, [])
    if len(users) != 1 or layer.y in net.graph_outputs:
        return none
    node = users[0][0]
    if node.op_type == "Relu":
        return node, (0.0, fmt.NO_CLAMP)
    if node.op_type == "Clip":
        bounds = []
        for idx, default in ((1, -fmt.NO_CLAMP), (2, fmt.NO_CLAMP)):
            name = node.input[idx] if len(node.input) > idx else ""
            if not name:
                bounds.append(default)
            elif name in net.inits and net.inits[name].size == 1:
                bounds.append(float(net.inits[name].reshape(())))
            else:
                return none
        return node, (bounds[0], bounds[1])
    return none


def _layer_shape(layer: Layer) -> list[int]:
    if layer.kind == "conv":
        return [layer.out_channels, layer.in_channels, *layer.kernel]
    return [layer.out_channels, layer.in_channels]


def _write_sparse_layers(net: Net, layers: list[Layer], masks: dict[int, np.ndarray], block: int,
                         report_layers: dict[int, LayerReport]) -> None:
    replace: dict[int, onnx.NodeProto] = {}
    drop: set[int] = set()
    for layer in layers:
        act_node, bounds = _fusable_activation(net, layer)
        output = act_node.output[0] if act_node is not None else layer.y
        bsr = encode_bsr(layer.get_weight(net), masks[layer.index], block)
        op = fmt.GROUP_SPARSE_CONV if layer.kind == "conv" else fmt.GROUP_SPARSE_MATMUL
        node, arrays = make_sparse_node(op, layer.name, layer.x, output, bsr, layer.get_bias(net), block,
                                        layer.out_channels, bounds,
                                        layer.conv_attrs() if layer.kind == "conv" else None)
        net.inits.update(arrays)
        replace[id(layer.node)] = node
        if act_node is not None:
            drop.add(id(act_node))
            report_layers[layer.index].activation = act_node.op_type
        report_layers[layer.index].op = op
    net.nodes = [replace.get(id(n), n) for n in net.nodes if id(n) not in drop]


def sparsify_net(net: Net, sparsity: float, block: int, data: np.ndarray | None, rearrange: bool,
                 recover: bool, allocation: str, protect_first_last: bool, log) -> tuple[list[LayerReport], dict, list[Layer], dict]:
    """The in-memory part of the export; returns (layer reports, rearrangement info, pruned layers, masks)."""
    layers = find_layers(net)
    if not layers:
        raise NothingToPruneError("the model has no prunable layer (Conv with group=1 or Gemm/MatMul with a "
                                  "constant weight); depthwise convolutions stay dense")
    protected = {layers[0].index, layers[-1].index} if protect_first_last else set()
    pruned = [layer for layer in layers if layer.index not in protected]
    if not pruned:
        raise NothingToPruneError(f"all {len(layers)} prunable layer(s) are protected as first/last; "
                                  f"pass protect_first_last=False (CLI: --no-protect) to prune them")
    log(f"{len(layers)} prunable layers, {len(pruned)} to prune "
        f"({len(protected)} protected: {', '.join(layers[i].name for i in sorted(protected))})")

    info = {"enabled": bool(rearrange)}
    if rearrange:
        result = rearrange_channels(net, pruned, block, sparsity, log)
        info.update(spaces=result.spaces, permuted=result.permuted, mean_energy_gain=round(result.gain, 4))
        log(f"rearranged {result.permuted} of {result.spaces} channel spaces")

    dense = None
    if data is not None:
        log(f"capturing layer inputs on {len(data)} calibration samples")
        dense = capture_dense(net, pruned, data)
    weights = [layer.get_weight(net) for layer in pruned]
    scores = [block_scores(w, block, dense.act_norm[layer.index] if dense else None)
              for w, layer in zip(weights, pruned)]
    counts = [block_counts(layer, block) for layer in pruned]
    grams = [dense.gram[layer.index] for layer in pruned] if dense else None
    to_prune = allocate(allocation, scores, counts, sparsity, grams=grams, weights=weights, block=block)
    masks = {layer.index: mask_from_scores(s, n) for layer, s, n in zip(pruned, scores, to_prune)}

    errors = {}
    if recover:
        errors = recover_layers(net, pruned, masks, block, data, dense, log)
    else:
        for layer, weight in zip(pruned, weights):
            layer.set_weight(net, prune_weight(weight, masks[layer.index], block))

    reports = []
    for layer in layers:
        total_weights = layer.out_channels * layer.in_channels * layer.taps
        rows = -(-layer.out_channels // block)
        if layer.index in masks:
            mask = masks[layer.index]
            removed = int((block_counts(layer, block) * ~mask).sum())
            status, nnz, blocks, size = "sparse", int(mask.sum()), mask.size, block
        else:
            removed, status, nnz, blocks, size = 0, "protected", rows * layer.in_channels, rows * layer.in_channels, block
        err = errors.get(layer.index)
        reports.append(LayerReport(layer.name, layer.node.op_type, _layer_shape(layer), layer.macs,
                                   total_weights, removed, size, blocks, nnz, status,
                                   recovery_error=[round(e, 6) for e in err] if err else None))
        if layer.index in masks:
            log(f"{layer.name}: {'x'.join(map(str, _layer_shape(layer)))} sparsity "
                f"{100 * removed / total_weights:.1f}% ({nnz}/{blocks} blocks kept)")
    return reports, info, pruned, masks


def export_sparse(input_path, output_path, sparsity: float, pattern: str = "4x1", calibration=None,
                  rearrange: bool = True, recover: bool | None = None, allocation: str = "global",
                  protect_first_last: bool = True, progress: bool = True) -> ExportReport:
    """Prune a dense ONNX CNN to group sparsity and write a sparsedge model (docs/FORMAT.md).

    ``sparsity``: fraction of the weights of the pruned layers to remove (first and last prunable
    layers are protected unless ``protect_first_last=False``). ``pattern``: "Bx1" blocks.
    ``calibration``: array / .npy [N, *input] or a folder of images; enables activation-aware
    scoring and (default) least-squares recovery. ``allocation``: global | uniform | sensitivity.
    The input file is never modified; the output is written atomically.
    """
    log = _logger(progress)
    sparsity = _check_sparsity(sparsity)
    block = parse_pattern(pattern)
    if allocation not in ALLOCATIONS:
        raise ExportError(f"unknown allocation {allocation!r}: use one of {', '.join(ALLOCATIONS)}")
    input_path, output_path = Path(input_path), Path(output_path)
    if output_path.exists() and input_path.exists() and output_path.resolve() == input_path.resolve():
        raise ExportError(f"output {output_path} is the input model; choose another output path "
                          f"(the input is never overwritten)")
    net = prepare(load_net(input_path))
    log(f"loaded {input_path.name}: {len(net.nodes)} nodes after BN folding, opset -> {fmt.ONNX_OPSET}")
    data = load_calibration(calibration, net) if calibration is not None else None
    if recover is None:
        recover = data is not None
    if recover and data is None:
        raise CalibrationError("recovery needs calibration data: pass calibration=... (CLI: --calibration) "
                               "or recover=False (CLI: --no-recover)")

    with single_threaded_blas():  # many small solves: BLAS threads only add hand-off cost
        layer_reports, rearrangement, pruned, masks = sparsify_net(
            net, sparsity, block, data, rearrange, recover, allocation, protect_first_last, log)
    by_index = dict(enumerate(layer_reports))  # layer.index is the position in find_layers order
    _write_sparse_layers(net, pruned, masks, block, by_index)

    pruned_weights = sum(r.weights for r in layer_reports if r.status == "sparse")
    removed = sum(r.pruned_weights for r in layer_reports)
    report = ExportReport(
        source=input_path.name, output=output_path.name, target_sparsity=sparsity,
        achieved_sparsity=removed / max(pruned_weights, 1),
        overall_sparsity=removed / max(sum(r.weights for r in layer_reports), 1),
        pattern=pattern, allocation=allocation, rearrangement=rearrangement, recovery=bool(recover),
        calibration_samples=0 if data is None else int(len(data)), layers=layer_reports, notes=list(net.notes))
    source_hash = hashlib.sha256(input_path.read_bytes()).hexdigest()
    info = {**report.to_json(), "source_sha256": source_hash}
    model = finalize_model(net.to_model(), info)
    onnx.checker.check_model(model)
    save_model(model, output_path)
    log(f"wrote {output_path} ({output_path.stat().st_size / 1e6:.2f} MB)")
    if progress:
        print(report.table(), file=sys.stderr)
    return report

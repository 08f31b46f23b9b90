"""The export report: per-layer shape, MACs, sparsity and blocks; table and plot."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import onnx

from .. import format as fmt

__all__ = ["ExportReport", "LayerReport", "format_table", "plot_report", "report_from_model"]


@dataclass
class LayerReport:
    name: str
    op: str                    # GroupSparseConv / GroupSparseMatMul, or the dense op if kept dense
    shape: list[int]           # [O, I, kh, kw] or [O, I]
    macs: int | None           # dense MACs per sample
    weights: int
    pruned_weights: int
    block_size: int
    blocks: int                # total blocks (incl. pruned)
    nnz_blocks: int
    status: str                # "sparse" | "protected" | "dense"
    activation: str = ""
    recovery_error: list[float] | None = None  # layer output error [before, after] re-fit

    @property
    def sparsity(self) -> float:
        return self.pruned_weights / self.weights if self.weights else 0.0


@dataclass
class ExportReport:
    source: str
    output: str
    target_sparsity: float
    achieved_sparsity: float   # over the weights of pruned (non-protected) layers
    overall_sparsity: float    # over the weights of all prunable layers, protected included
    pattern: str
    allocation: str
    rearrangement: dict
    recovery: bool
    calibration_samples: int
    layers: list[LayerReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, payload: dict) -> "ExportReport":
        payload = dict(payload)
        payload["layers"] = [LayerReport(**layer) for layer in payload.get("layers", [])]
        return cls(**payload)

    def table(self) -> str:
        return format_table(self)


def _macs(value: int | None) -> str:
    return "?" if value is None else f"{value / 1e6:.2f}M"


def format_table(report: ExportReport) -> str:
    lines = [f"{'layer':<28} {'op':<18} {'shape':<18} {'MACs':>9} {'sparsity':>8} {'B':>2} "
             f"{'nnz blocks':>14}  status"]
    dense_macs = sparse_macs = 0
    known = True
    for layer in report.layers:
        shape = "x".join(str(d) for d in layer.shape)
        lines.append(f"{layer.name[:28]:<28} {layer.op:<18} {shape:<18} {_macs(layer.macs):>9} "
                     f"{100 * layer.sparsity:7.1f}% {layer.block_size:>2} "
                     f"{f'{layer.nnz_blocks}/{layer.blocks}':>14}  {layer.status}")
        if layer.macs is None:
            known = False
        else:
            dense_macs += layer.macs
            sparse_macs += layer.macs * (1 - layer.sparsity)
    weights = sum(layer.weights for layer in report.layers)
    pruned = sum(layer.pruned_weights for layer in report.layers)
    lines.append(f"total: {len(report.layers)} prunable layers, {weights} weights, {pruned} pruned "
                 f"({100 * pruned / max(weights, 1):.2f}% of prunable weights; "
                 f"{100 * report.achieved_sparsity:.2f}% of the pruned layers' weights, target "
                 f"{100 * report.target_sparsity:.2f}%)")
    if known:
        lines.append(f"MACs in prunable layers: dense {dense_macs / 1e6:.2f}M -> sparse {sparse_macs / 1e6:.2f}M "
                     f"({dense_macs / max(sparse_macs, 1):.2f}x fewer)")
    lines.append(f"pattern {report.pattern}, allocation {report.allocation}, rearrangement "
                 f"{report.rearrangement}, recovery {'on' if report.recovery else 'off'} "
                 f"({report.calibration_samples} calibration samples)")
    lines.extend(f"note: {note}" for note in report.notes)
    return "\n".join(lines)


def report_from_model(model: onnx.ModelProto) -> ExportReport | None:
    """The report stored by the exporter in the model metadata, or None for a plain model."""
    props = {p.key: p.value for p in model.metadata_props}
    if fmt.META_EXPORT not in props:
        return None
    payload = json.loads(props[fmt.META_EXPORT])
    names = set(ExportReport.__dataclass_fields__)
    return ExportReport.from_json({k: v for k, v in payload.items() if k in names})


def plot_report(report: ExportReport, path: str) -> None:
    """Per-layer sparsity (bars) and dense vs remaining MACs, to a PNG (matplotlib, Agg)."""
    try:
        import matplotlib
    except ImportError as exc:
        raise RuntimeError("plotting needs matplotlib: pip install matplotlib") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [layer.name for layer in report.layers]
    xs = range(len(names))
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(max(8, 0.28 * len(names)), 7), sharex=True)
    colors = ["tab:blue" if layer.status == "sparse" else "tab:gray" for layer in report.layers]
    ax1.bar(xs, [100 * layer.sparsity for layer in report.layers], color=colors)
    ax1.axhline(100 * report.target_sparsity, color="tab:red", linestyle="--", label="target")
    ax1.set_ylabel("sparsity (%)")
    ax1.set_title(f"{report.pattern}, {report.allocation} allocation (gray: kept dense)")
    ax1.legend()
    dense = [(layer.macs or 0) / 1e6 for layer in report.layers]
    sparse = [d * (1 - layer.sparsity) for d, layer in zip(dense, report.layers)]
    ax2.bar(xs, dense, color="lightgray", label="dense")
    ax2.bar(xs, sparse, color="tab:green", label="after pruning")
    ax2.set_ylabel("MACs (M)")
    ax2.legend()
    ax2.set_xticks(list(xs))
    ax2.set_xticklabels(names, rotation=90, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

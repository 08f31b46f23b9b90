"""Writes pruned layers as ai.sparsedge nodes (BSR initializers) and saves the model.

Layout and attributes: docs/FORMAT.md. Every layer gets a bias input (zeros when
the source layer had none) so the function bodies need no optional-input logic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from .. import format as fmt
from ..models import save_model_atomic
from .functions import function_for

__all__ = ["BsrWeights", "densify_bsr", "encode_bsr", "make_sparse_node", "finalize_model", "save_model"]


@dataclass
class BsrWeights:
    values: np.ndarray       # [nnz, B, K] float32
    col_indices: np.ndarray  # [nnz] int32
    row_ptr: np.ndarray      # [ceil(O/B) + 1] int32


def encode_bsr(weight: np.ndarray, mask: np.ndarray, block_size: int) -> BsrWeights:
    """``weight`` [O, I, K] and ``mask`` [ceil(O/B), I] (True = kept) -> BSR arrays."""
    out_channels, in_channels, taps = weight.shape
    block_rows = -(-out_channels // block_size)
    if mask.shape != (block_rows, in_channels):
        raise ValueError(f"mask shape {mask.shape} != {(block_rows, in_channels)}")
    padded = np.zeros((block_rows * block_size, in_channels, taps), np.float32)
    padded[:out_channels] = weight
    grid = padded.reshape(block_rows, block_size, in_channels, taps).transpose(0, 2, 1, 3)
    rows, cols = np.nonzero(mask)  # row-major: by block row, then increasing input channel
    row_ptr = np.zeros(block_rows + 1, np.int32)
    np.cumsum(np.bincount(rows, minlength=block_rows), out=row_ptr[1:])
    values = np.ascontiguousarray(grid[rows, cols], dtype=np.float32).reshape(-1, block_size, taps)
    return BsrWeights(values, cols.astype(np.int32), row_ptr)


def densify_bsr(bsr: BsrWeights, out_channels: int, in_channels: int) -> np.ndarray:
    """Inverse of encode_bsr (pruned blocks are zero): [O, I, K]."""
    nnz, block_size, taps = bsr.values.shape
    block_rows = len(bsr.row_ptr) - 1
    grid = np.zeros((block_rows, in_channels, block_size, taps), np.float32)
    rows = np.repeat(np.arange(block_rows), np.diff(bsr.row_ptr))
    grid[rows, bsr.col_indices] = bsr.values
    return grid.transpose(0, 2, 1, 3).reshape(-1, in_channels, taps)[:out_channels]


def make_sparse_node(op_type: str, name: str, x: str, y: str, bsr: BsrWeights, bias: np.ndarray,
                     block_size: int, out_channels: int, activation: tuple[float, float],
                     conv_attrs: dict | None = None) -> tuple[onnx.NodeProto, dict[str, np.ndarray]]:
    """One GroupSparseConv/GroupSparseMatMul node and its four initializers (name -> array)."""
    names = [f"{name}.values", f"{name}.col_indices", f"{name}.row_ptr", f"{name}.bias"]
    tensors = dict(zip(names, [bsr.values.astype(np.float32), bsr.col_indices.astype(np.int32),
                               bsr.row_ptr.astype(np.int32),
                               np.asarray(bias, np.float32).reshape(out_channels)]))
    attrs = {fmt.ATTR_BLOCK_SIZE: int(block_size), fmt.ATTR_OUT_CHANNELS: int(out_channels)}
    if op_type == fmt.GROUP_SPARSE_CONV:
        for key in (fmt.ATTR_KERNEL_SHAPE, fmt.ATTR_STRIDES, fmt.ATTR_PADS, fmt.ATTR_DILATIONS):
            attrs[key] = [int(v) for v in conv_attrs[key]]
    attrs[fmt.ATTR_ACTIVATION_MIN] = float(activation[0])
    attrs[fmt.ATTR_ACTIVATION_MAX] = float(activation[1])
    node = helper.make_node(op_type, [x] + names, [y], name=name, domain=fmt.DOMAIN, **attrs)
    return node, tensors


def finalize_model(model: onnx.ModelProto, export_info: dict) -> onnx.ModelProto:
    """Pin IR/opsets, attach one function per custom op used, and the export metadata."""
    used = sorted({n.op_type for n in model.graph.node if n.domain == fmt.DOMAIN})
    del model.functions[:]
    model.functions.extend(function_for(op) for op in used)
    del model.opset_import[:]
    model.opset_import.extend([helper.make_opsetid("", fmt.ONNX_OPSET),
                               helper.make_opsetid(fmt.DOMAIN, fmt.DOMAIN_VERSION)])
    model.ir_version = fmt.IR_VERSION
    kept = [p for p in model.metadata_props if p.key not in (fmt.META_FORMAT_VERSION, fmt.META_EXPORT)]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    helper.set_model_props(model, {**{p.key: p.value for p in kept},
                                   fmt.META_FORMAT_VERSION: str(fmt.FORMAT_VERSION),
                                   fmt.META_EXPORT: json.dumps(export_info, separators=(",", ":"))})
    return model


def save_model(model: onnx.ModelProto, path: Path | str) -> Path:
    """Atomic write: a temporary file beside ``path`` renamed into place (nothing partial on failure)."""
    return save_model_atomic(model, path)

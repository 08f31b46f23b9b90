"""Channel spaces: sets of tensors whose channel axis must be permuted together.

A producer (Conv group=1, Gemm/MatMul with a constant weight) opens a space at
its output. The space flows through per-channel ops (depthwise Conv, BN,
elementwise activations, GlobalAveragePool, Flatten after it) and an Add/Sub/Mul
of two activations ties the spaces of its inputs. Consumers (the same layer
kinds) read it on their input channels. A space that reaches a graph output or
an op not understood here is fixed (identity permutation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper

from .graph import Net

__all__ = ["ChannelSpace", "apply_permutation", "find_spaces"]

_UNARY = {"Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Identity", "Dropout"}
_BINARY = {"Add", "Sub", "Mul"}


@dataclass
class ChannelSpace:
    channels: int
    tensors: list[str] = field(default_factory=list)
    producers: list[onnx.NodeProto] = field(default_factory=list)
    passthrough: list[onnx.NodeProto] = field(default_factory=list)
    consumers: list[onnx.NodeProto] = field(default_factory=list)


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def _attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _role(net: Net, node: onnx.NodeProto, producers: dict) -> str:
    """'layer' (producer+consumer), 'pass' (per-channel), 'tie' (binary of two activations), or 'fixed'."""
    attrs = _attrs(node)
    op = node.op_type
    w = net.inits.get(node.input[1]) if len(node.input) > 1 else None
    if op == "Conv" and w is not None and w.ndim == 4:
        group = attrs.get("group", 1)
        if group == 1:
            return "layer"
        if group == w.shape[0] and w.shape[1] == 1:
            return "pass"
        return "fixed"
    if op == "Gemm" and w is not None and not attrs.get("transA", 0) and attrs.get("transB", 0) == 1:
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if bias is None or (bias in net.inits and net.inits[bias].shape == (w.shape[0],)):
            return "layer"
        return "fixed"
    if op == "MatMul" and w is not None and w.ndim == 2 and node.input[0] not in net.inits:
        return "layer"
    if op == "BatchNormalization" and all(n in net.inits for n in node.input[1:5]):
        return "pass"
    if op in _UNARY or op == "GlobalAveragePool":
        return "pass"
    if op == "Clip" and all(n in net.inits and net.inits[n].size == 1 for n in node.input[1:] if n):
        return "pass"
    if op == "Flatten" and attrs.get("axis", 1) == 1:
        src = producers.get(node.input[0])
        return "pass" if src is not None and src.op_type == "GlobalAveragePool" else "fixed"
    if op in _BINARY:
        consts = [n for n in node.input if n in net.inits]
        if not consts:
            return "tie"
        if all(net.inits[n].size == 1 for n in consts):
            return "pass"
    return "fixed"


def find_spaces(net: Net) -> list[ChannelSpace]:
    """Permutable channel spaces (not fixed, with at least one producer)."""
    producers = net.producers()
    uf = _UnionFind()
    fixed: set[str] = set()
    roles = {}
    for node in net.nodes:
        role = roles[id(node)] = _role(net, node, producers)
        acts = [n for n in node.input if n and n not in net.inits]
        if role == "layer":
            uf.find(node.input[0])
            uf.find(node.output[0])
        elif role in ("pass", "tie"):
            if any(o for o in node.output[1:]):
                fixed.update(acts + list(node.output))
            for name in acts:
                uf.union(node.output[0], name)
        else:
            fixed.update(acts + [o for o in node.output if o])
    fixed.update(net.graph_outputs)
    fixed.update(net.graph_inputs)
    fixed_roots = {uf.find(n) for n in fixed}

    spaces: dict[str, ChannelSpace] = {}

    def space(tensor: str, channels: int) -> ChannelSpace | None:
        root = uf.find(tensor)
        if root in fixed_roots:
            return None
        sp = spaces.setdefault(root, ChannelSpace(channels))
        if sp.channels != channels:  # inconsistent channel counts: give up on this space
            fixed_roots.add(root)
            spaces.pop(root, None)
            return None
        return sp

    for node in net.nodes:
        role = roles[id(node)]
        if role == "layer":
            w = net.inits[node.input[1]]
            out_c, in_c = (w.shape[1], w.shape[0]) if node.op_type == "MatMul" else (w.shape[0], w.shape[1])
            sp = space(node.output[0], out_c)
            if sp is not None:
                sp.producers.append(node)
            sp = space(node.input[0], in_c)
            if sp is not None:
                sp.consumers.append(node)
        elif role == "pass" and node.op_type in ("Conv", "BatchNormalization"):
            channels = net.inits[node.input[1]].shape[0]
            sp = space(node.output[0], channels)
            if sp is not None:
                sp.passthrough.append(node)
    for tensor in list(uf.parent):
        root = uf.find(tensor)
        if root in spaces:
            spaces[root].tensors.append(tensor)
    return [sp for root, sp in spaces.items() if root not in fixed_roots and sp.producers]


def apply_permutation(net: Net, sp: ChannelSpace, perm: np.ndarray) -> None:
    """New channel j is old channel perm[j], for every array indexed by this space."""
    for node in sp.producers:
        w = net.inits[node.input[1]]
        net.inits[node.input[1]] = np.ascontiguousarray(w[:, perm] if node.op_type == "MatMul" else w[perm])
        if node.op_type in ("Conv", "Gemm") and len(node.input) > 2 and node.input[2]:
            net.inits[node.input[2]] = np.ascontiguousarray(net.inits[node.input[2]][perm])
    for node in sp.passthrough:
        count = 3 if node.op_type == "Conv" else 5
        for name in node.input[1:count]:
            if name:
                net.inits[name] = np.ascontiguousarray(net.inits[name][perm])
    for node in sp.consumers:
        w = net.inits[node.input[1]]
        net.inits[node.input[1]] = np.ascontiguousarray(w[perm] if node.op_type == "MatMul" else w[:, perm])

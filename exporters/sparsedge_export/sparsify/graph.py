"""Graph analysis and preparation: opset check, BatchNorm folding, prunable layers.

``Net`` is a mutable view of an ONNX graph: a node list plus initializers as
numpy arrays, so the passes (folding, permutation, pruning) edit arrays and the
writer rebuilds the ModelProto once.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from .. import format as fmt
from .errors import ModelNotFoundError, UnsupportedModelError

__all__ = ["Layer", "Net", "find_layers", "load_net", "prepare"]

# Ops whose semantics (for float inference) are identical at every opset from the
# listed first version through 21: moving them to opset 17 changes nothing. The
# versions between were type-list extensions (bfloat16 etc.), or additions that
# only matter when used (BN training_mode, Reshape allowzero=1, Pad axes input),
# which _check_node_semantics rejects.
OPSET_STABLE_SINCE: dict[str, int] = {
    "Conv": 11, "Gemm": 11, "MatMul": 1, "BatchNormalization": 9, "Relu": 6, "Clip": 11,
    "LeakyRelu": 6, "Sigmoid": 6, "HardSigmoid": 6, "HardSwish": 14, "Tanh": 6,
    "Add": 7, "Sub": 7, "Mul": 7, "Div": 7, "GlobalAveragePool": 1, "AveragePool": 11,
    "MaxPool": 12, "Flatten": 11, "Reshape": 5, "Concat": 11, "Softmax": 13, "Identity": 1,
    "Transpose": 1, "Squeeze": 13, "Unsqueeze": 13, "Pad": 11, "Constant": 12, "Shape": 1,
    "Gather": 11, "Dropout": 12,
}


def _check_node_semantics(node: onnx.NodeProto, opset: int) -> str | None:
    """Reasons an allowed op would still change meaning when re-labelled opset 17."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if node.op_type == "BatchNormalization" and attrs.get("training_mode", 0):
        return "BatchNormalization in training mode"
    if node.op_type == "Reshape" and attrs.get("allowzero", 0):
        return "Reshape with allowzero=1 (opset 14+ only)"
    if node.op_type == "Pad" and len(node.input) > 3 and node.input[3]:
        return "Pad with an axes input (opset 18+ only)"
    if node.op_type == "Pad" and attrs.get("mode", b"constant") == b"wrap":
        return "Pad mode 'wrap' (opset 19+ only)"
    if node.op_type == "Shape" and opset < 15 and ("start" in attrs or "end" in attrs):
        return "Shape with start/end before opset 15"
    if node.op_type in ("MaxPool", "AveragePool") and opset >= 19 and attrs.get("dilations") and node.op_type == "AveragePool":
        return "AveragePool with dilations (opset 19+ only)"
    if node.op_type == "Constant" and any(a in attrs for a in ("sparse_value",)):
        return "sparse Constant"
    return None


@dataclass
class Layer:
    """A prunable layer: Conv(group=1) or Gemm/MatMul with a constant weight.

    Gemm nodes are normalised by ``prepare`` to alpha=beta=1, transB=1, so the
    stored weight is [O, I]; MatMul keeps its [I, O] weight.
    """

    node: onnx.NodeProto
    kind: str                 # "conv" | "gemm" | "matmul"
    weight: str               # initializer name
    bias: str | None
    x: str
    y: str
    out_channels: int
    in_channels: int
    kernel: tuple[int, int] = (1, 1)
    macs: int | None = None   # dense multiply-accumulates per sample
    index: int = 0            # position among the prunable layers (topological)

    @property
    def name(self) -> str:
        return self.node.name or self.y

    @property
    def taps(self) -> int:
        return self.kernel[0] * self.kernel[1]

    def get_weight(self, net: "Net") -> np.ndarray:
        """Weight as [O, I, K]."""
        w = net.inits[self.weight]
        if self.kind == "matmul":
            w = w.T
        return w.reshape(self.out_channels, self.in_channels, self.taps)

    def set_weight(self, net: "Net", w_oik: np.ndarray) -> None:
        shape = net.inits[self.weight].shape
        w = w_oik.reshape(self.out_channels, self.in_channels * self.taps)
        if self.kind == "matmul":
            w = w.T
        net.inits[self.weight] = np.ascontiguousarray(w.reshape(shape), dtype=np.float32)

    def get_bias(self, net: "Net") -> np.ndarray:
        if self.bias is None:
            return np.zeros(self.out_channels, np.float32)
        return np.broadcast_to(net.inits[self.bias], (self.out_channels,)).astype(np.float32)

    def conv_attrs(self) -> dict:
        attrs = {a.name: helper.get_attribute_value(a) for a in self.node.attribute}
        spatial = len(self.kernel)
        return {fmt.ATTR_KERNEL_SHAPE: list(self.kernel),
                fmt.ATTR_STRIDES: list(attrs.get("strides", [1] * spatial)),
                fmt.ATTR_PADS: list(attrs.get("pads", [0] * 2 * spatial)),
                fmt.ATTR_DILATIONS: list(attrs.get("dilations", [1] * spatial))}


@dataclass
class Net:
    model: onnx.ModelProto            # graph without initializers (kept in ``inits``)
    nodes: list[onnx.NodeProto]
    inits: dict[str, np.ndarray]
    opset: int
    notes: list[str] = field(default_factory=list)

    @property
    def graph_inputs(self) -> list[str]:
        return [i.name for i in self.model.graph.input if i.name not in self.inits]

    @property
    def graph_outputs(self) -> list[str]:
        return [o.name for o in self.model.graph.output]

    def producers(self) -> dict[str, onnx.NodeProto]:
        return {out: node for node in self.nodes for out in node.output}

    def consumers(self) -> dict[str, list[tuple[onnx.NodeProto, int]]]:
        result: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
        for node in self.nodes:
            for idx, name in enumerate(node.input):
                if name:
                    result.setdefault(name, []).append((node, idx))
        return result

    def to_model(self, extra_outputs: list[str] = ()) -> onnx.ModelProto:
        """A standard ModelProto (used for onnxruntime runs and as the writer's base)."""
        model = copy.deepcopy(self.model)
        graph = model.graph
        del graph.node[:]
        graph.node.extend(self.nodes)
        del graph.initializer[:]
        used = {n for node in self.nodes for n in node.input}
        graph.initializer.extend(numpy_helper.from_array(np.ascontiguousarray(v), k)
                                 for k, v in self.inits.items() if k in used)
        known = {o.name for o in graph.output}
        for name in extra_outputs:
            if name not in known:
                graph.output.append(helper.make_empty_tensor_value_info(name))
                known.add(name)
        return model

    def fresh_name(self, base: str) -> str:
        taken = set(self.inits) | {o for n in self.nodes for o in n.output}
        name, k = base, 1
        while name in taken:
            name, k = f"{base}.{k}", k + 1
        return name


def load_net(path: Path | str) -> Net:
    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(f"input model not found: {path} (expected an .onnx file)")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and others
        raise UnsupportedModelError(f"cannot read {path} as an ONNX model: {exc}") from exc
    return net_from_model(model)


def net_from_model(model: onnx.ModelProto) -> Net:
    model = copy.deepcopy(model)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None:
        raise UnsupportedModelError("the model imports no standard ONNX opset")
    if not 11 <= opset <= 21:
        raise UnsupportedModelError(f"opset {opset} is not supported: convert the model to an opset "
                                    f"between 11 and 21 (onnx.version_converter) and retry")
    if any(o.domain not in ("", "ai.onnx") for o in model.opset_import) or model.functions:
        raise UnsupportedModelError("the model already uses custom domains or functions; export from a "
                                    "plain dense ONNX model")
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    del model.graph.initializer[:]
    net = Net(model, list(model.graph.node), inits, opset)
    del model.graph.node[:]
    _check_ops(net)
    return net


def _check_ops(net: Net) -> None:
    problems = []
    for node in net.nodes:
        if node.domain not in ("", "ai.onnx"):
            problems.append(f"{node.name or node.op_type}: custom op {node.domain}::{node.op_type}")
            continue
        since = OPSET_STABLE_SINCE.get(node.op_type)
        if since is None:
            problems.append(f"{node.name or node.op_type}: op {node.op_type} is not on the allow-list "
                            f"of ops verified to keep their meaning at opset {fmt.ONNX_OPSET}")
        elif net.opset < since:
            problems.append(f"{node.name or node.op_type}: {node.op_type} changed meaning between opset "
                            f"{net.opset} and {fmt.ONNX_OPSET}")
        else:
            reason = _check_node_semantics(node, net.opset)
            if reason:
                problems.append(f"{node.name or node.op_type}: {reason}")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise UnsupportedModelError(f"cannot upgrade the model from opset {net.opset} to "
                                    f"{fmt.ONNX_OPSET}: {shown}")


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _set_attr(node: onnx.NodeProto, name: str, value) -> None:
    for i, a in enumerate(node.attribute):
        if a.name == name:
            del node.attribute[i]
            break
    node.attribute.append(helper.make_attribute(name, value))


def prepare(net: Net) -> Net:
    """Constant nodes -> initializers, untie shared weights, fold BN, normalise Gemm."""
    _constants_to_initializers(net)
    _untie_weights(net)
    _fold_batch_norm(net)
    _normalise_gemm(net)
    for node in net.nodes:
        if not node.name:
            node.name = net.fresh_name(f"{node.op_type}_{node.output[0]}")
    net.model.opset_import[0].version = fmt.ONNX_OPSET
    for o in net.model.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = fmt.ONNX_OPSET
    net.model.ir_version = fmt.IR_VERSION
    return net


def _constants_to_initializers(net: Net) -> None:
    kept = []
    graph_outputs = {o.name for o in net.model.graph.output}
    for node in net.nodes:
        attrs = _attrs(node)
        if node.op_type == "Constant" and "value" in attrs:
            net.inits[node.output[0]] = numpy_helper.to_array(attrs["value"])
        elif node.op_type == "Constant" and ("value_float" in attrs or "value_floats" in attrs):
            net.inits[node.output[0]] = np.asarray(attrs.get("value_float", attrs.get("value_floats")), np.float32)
        elif node.op_type == "Constant" and ("value_int" in attrs or "value_ints" in attrs):
            net.inits[node.output[0]] = np.asarray(attrs.get("value_int", attrs.get("value_ints")), np.int64)
        elif node.op_type == "Identity" and node.input[0] in net.inits and node.output[0] not in graph_outputs:
            # torch.onnx.export emits Identity(initializer) when two folded constants are equal.
            net.inits[node.output[0]] = net.inits[node.input[0]].copy()
        else:
            kept.append(node)
    net.nodes = kept
    graph_input_names = {i.name for i in net.model.graph.input}
    if graph_input_names & set(net.inits):  # pre-IR4 style: initializers listed as inputs
        keep = [i for i in net.model.graph.input if i.name not in net.inits]
        del net.model.graph.input[:]
        net.model.graph.input.extend(keep)


def _untie_weights(net: Net) -> None:
    """Give every Conv/Gemm/MatMul/BN its own parameter arrays (permutations edit them in place)."""
    seen: set[str] = set()
    for node in net.nodes:
        if node.op_type not in ("Conv", "Gemm", "MatMul", "BatchNormalization"):
            continue
        for idx in range(1, len(node.input)):
            name = node.input[idx]
            if name in net.inits and net.inits[name].size > 1:
                if name in seen:
                    new = net.fresh_name(f"{name}.{node.name or node.output[0]}")
                    net.inits[new] = net.inits[name].copy()
                    node.input[idx] = new
                else:
                    seen.add(name)


def _fold_batch_norm(net: Net) -> None:
    producers = net.producers()
    consumers = net.consumers()
    outputs = set(net.graph_outputs)
    removed = set()
    for bn in net.nodes:
        if bn.op_type != "BatchNormalization" or len(bn.output) != 1 and any(bn.output[1:]):
            continue
        conv = producers.get(bn.input[0])
        if (conv is None or conv.op_type != "Conv" or len(consumers.get(conv.output[0], [])) != 1
                or conv.output[0] in outputs or conv.input[1] not in net.inits
                or not all(n in net.inits for n in bn.input[1:5])):
            continue
        eps = _attrs(bn).get("epsilon", 1e-5)
        scale, beta, mean, var = (net.inits[n].astype(np.float64) for n in bn.input[1:5])
        factor = scale / np.sqrt(var + eps)
        weight = net.inits[conv.input[1]].astype(np.float64)
        bias = (net.inits[conv.input[2]].astype(np.float64) if len(conv.input) > 2 and conv.input[2]
                else np.zeros(weight.shape[0]))
        net.inits[conv.input[1]] = (weight * factor.reshape(-1, *[1] * (weight.ndim - 1))).astype(np.float32)
        bias_name = conv.input[2] if len(conv.input) > 2 and conv.input[2] else net.fresh_name(f"{conv.input[1]}.bias")
        net.inits[bias_name] = ((bias - mean) * factor + beta).astype(np.float32)
        if len(conv.input) > 2:
            conv.input[2] = bias_name
        else:
            conv.input.append(bias_name)
        conv.output[0] = bn.output[0]
        removed.add(id(bn))
    net.nodes = [n for n in net.nodes if id(n) not in removed]


def _normalise_gemm(net: Net) -> None:
    """Gemm with constant B -> alpha=beta=1, transB=1 (weight [O, I]); bias as [O]."""
    for node in net.nodes:
        if node.op_type != "Gemm" or node.input[1] not in net.inits:
            continue
        attrs = _attrs(node)
        if attrs.get("transA", 0):
            continue
        w = net.inits[node.input[1]].astype(np.float64) * attrs.get("alpha", 1.0)
        if not attrs.get("transB", 0):
            w = w.T
        net.inits[node.input[1]] = np.ascontiguousarray(w, dtype=np.float32)
        if len(node.input) > 2 and node.input[2]:
            c = net.inits.get(node.input[2])
            if c is None or c.size not in (1, w.shape[0]) or (c.ndim == 2 and c.shape[0] != 1):
                continue  # bias not per-output: leave the node as is (not prunable)
            net.inits[node.input[2]] = (np.broadcast_to(c.reshape(-1), (w.shape[0],)).astype(np.float64)
                                        * attrs.get("beta", 1.0)).astype(np.float32)
        for key, value in (("alpha", 1.0), ("beta", 1.0), ("transB", 1)):
            _set_attr(node, key, value)


def infer_shapes(net: Net) -> dict[str, list]:
    """Static shapes of all tensors (symbolic dims as None); batch taken as 1 for MACs."""
    model = net.to_model()
    try:
        inferred = shape_inference.infer_shapes(model)
    except Exception:  # shape inference is a convenience for MACs only
        return {}
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None
                               for d in vi.type.tensor_type.shape.dim]
    return shapes


def find_layers(net: Net) -> list[Layer]:
    """All prunable layers in topological order, with dense MACs when shapes are known."""
    shapes = infer_shapes(net)
    layers = []
    for node in net.nodes:
        layer = _as_layer(net, node)
        if layer is None:
            continue
        shape = shapes.get(layer.y)
        if shape and all(isinstance(d, int) for d in shape[1:]):
            positions = int(np.prod(shape[2:])) if layer.kind == "conv" else int(np.prod(shape[1:-1] or [1]))
            layer.macs = positions * layer.out_channels * layer.in_channels * layer.taps
        layer.index = len(layers)
        layers.append(layer)
    return layers


def _as_layer(net: Net, node: onnx.NodeProto) -> Layer | None:
    attrs = _attrs(node)
    if node.op_type == "Conv":
        w = net.inits.get(node.input[1])
        if w is None or w.ndim != 4 or attrs.get("group", 1) != 1:
            return None
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            net.notes.append(f"{node.name}: Conv with auto_pad kept dense (explicit pads needed)")
            return None
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        return Layer(node, "conv", node.input[1], bias, node.input[0], node.output[0],
                     w.shape[0], w.shape[1], (w.shape[2], w.shape[3]))
    if node.op_type == "Gemm":
        w = net.inits.get(node.input[1])
        if w is None or attrs.get("transA", 0) or attrs.get("transB", 0) != 1 or attrs.get("alpha", 1.0) != 1.0:
            return None
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if bias is not None and (bias not in net.inits or net.inits[bias].shape != (w.shape[0],)):
            return None
        return Layer(node, "gemm", node.input[1], bias, node.input[0], node.output[0], w.shape[0], w.shape[1])
    if node.op_type == "MatMul":
        w = net.inits.get(node.input[1])
        if w is None or w.ndim != 2 or node.input[0] in net.inits:
            return None
        return Layer(node, "matmul", node.input[1], None, node.input[0], node.output[0], w.shape[1], w.shape[0])
    return None

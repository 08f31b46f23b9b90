"""Tests of the group-sparse exporter (sparsedge_export.sparsify), checked with onnxruntime.

onnxruntime runs the exported files unchanged through their model-local function
bodies; a sparse file must equal a dense model carrying the densified weights.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from sparsedge_export import format as fmt
from sparsedge_export.cli import main as cli_main
from sparsedge_export.models import save_model_atomic
from sparsedge_export.models.mobilenet_v1 import build_mobilenet_v1
from sparsedge_export.sparsify import (CalibrationError, ExportError, InvalidPatternError, InvalidSparsityError,
                                       ModelNotFoundError, NothingToPruneError, UnsupportedModelError,
                                       densify_bsr, encode_bsr, export_sparse, report_from_model)
from sparsedge_export.sparsify.graph import find_layers, net_from_model, prepare
from sparsedge_export.sparsify.rearrange import rearrange
from sparsedge_export.sparsify.writer import BsrWeights, finalize_model, make_sparse_node

RES = 96


def _session(model) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    data = model if isinstance(model, (str, Path)) else model.SerializeToString()
    return ort.InferenceSession(str(data) if isinstance(data, Path) else data, options,
                                providers=["CPUExecutionProvider"])


def _run(model, x: np.ndarray) -> np.ndarray:
    session = _session(model)
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(float(np.abs(b).max()), 1e-30))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _images(count: int, seed: int, size: int = RES) -> np.ndarray:
    rng = np.random.default_rng(seed)
    block = -(-size // 6)
    coarse = rng.uniform(-1, 1, (count, 3, 6, 6)).repeat(block, axis=2).repeat(block, axis=3)[:, :, :size, :size]
    return (coarse + rng.normal(0, 0.1, coarse.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def mobilenet(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dense") / "mobilenet.onnx"
    save_model_atomic(build_mobilenet_v1(width=0.25, resolution=RES, num_classes=100), path)
    return path


def _odd_model(path: Path, depthwise_only: bool = False) -> Path:
    """Conv3x3 3->10, Relu, Conv1x1 10->13, Clip(0,6), Conv1x1 13->6, GAP, Flatten, Gemm 6->5 (opset 13)."""
    rng = np.random.default_rng(7)
    inits, nodes = [], []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
        return name

    if depthwise_only:
        nodes.append(helper.make_node("Conv", ["x", const("dw.w", rng.normal(size=(3, 1, 3, 3)))], ["y"],
                                      group=3, pads=[1, 1, 1, 1]))
        out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 16, 16])
    else:
        nodes += [
            helper.make_node("Conv", ["x", const("c1.w", rng.normal(size=(10, 3, 3, 3))), const("c1.b", rng.normal(size=10))],
                             ["c1"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c1"], ["r1"]),
            helper.make_node("Conv", ["r1", const("c2.w", rng.normal(size=(13, 10, 1, 1)) / 3)], ["c2"]),
            helper.make_node("Clip", ["c2", const("lo", 0.0), const("hi", 6.0)], ["r2"]),
            helper.make_node("Conv", ["r2", const("c3.w", rng.normal(size=(6, 13, 3, 3)) / 6), const("c3.b", rng.normal(size=6))],
                             ["c3"], pads=[1, 1, 1, 1], strides=[2, 2]),
            helper.make_node("GlobalAveragePool", ["c3"], ["p"]),
            helper.make_node("Flatten", ["p"], ["f"], axis=1),
            helper.make_node("Gemm", ["f", const("fc.w", rng.normal(size=(5, 6))), const("fc.b", rng.normal(size=5))],
                             ["y"], transB=1),
        ]
        out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])
    graph = helper.make_graph(nodes, "odd", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    save_model_atomic(model, path)
    return path


def _densified(path: Path) -> onnx.ModelProto:
    """The sparse file with every ai.sparsedge node replaced by its dense op + Clip."""
    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        if node.domain != fmt.DOMAIN:
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        x, values, cols, rows, bias = node.input
        bsr = BsrWeights(inits[values], inits[cols], inits[rows])
        out_c = attrs[fmt.ATTR_OUT_CHANNELS]
        in_c = int(cols and max(inits[cols].max(initial=-1) + 1, 1))
        if node.op_type == fmt.GROUP_SPARSE_CONV:
            in_c = _conv_in_channels(model, node)
            kh, kw = attrs[fmt.ATTR_KERNEL_SHAPE]
            w = densify_bsr(bsr, out_c, in_c).reshape(out_c, in_c, kh, kw)
            inits[f"{node.name}.dense"] = w
            nodes.append(helper.make_node("Conv", [x, f"{node.name}.dense", bias], [f"{node.name}.pre"],
                                          strides=attrs[fmt.ATTR_STRIDES], pads=attrs[fmt.ATTR_PADS],
                                          dilations=attrs[fmt.ATTR_DILATIONS]))
        else:
            in_c = _conv_in_channels(model, node)
            w = densify_bsr(bsr, out_c, in_c)[:, :, 0]
            inits[f"{node.name}.dense"] = w
            nodes.append(helper.make_node("Gemm", [x, f"{node.name}.dense", bias], [f"{node.name}.pre"], transB=1))
        inits[f"{node.name}.lo"] = np.array(attrs[fmt.ATTR_ACTIVATION_MIN], np.float32)
        inits[f"{node.name}.hi"] = np.array(attrs[fmt.ATTR_ACTIVATION_MAX], np.float32)
        nodes.append(helper.make_node("Clip", [f"{node.name}.pre", f"{node.name}.lo", f"{node.name}.hi"], [node.output[0]]))
    graph = helper.make_graph(nodes, "dense", model.graph.input, model.graph.output,
                              initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    dense = helper.make_model(graph, opset_imports=[helper.make_opsetid("", fmt.ONNX_OPSET)])
    dense.ir_version = fmt.IR_VERSION
    return dense


def _conv_in_channels(model: onnx.ModelProto, node: onnx.NodeProto) -> int:
    report = report_from_model(model)
    layer = next(layer for layer in report.layers if layer.name == node.name)
    return layer.shape[1]


# ---------------------------------------------------------------- writer
@pytest.mark.parametrize("block", [1, 2, 4, 8])
@pytest.mark.parametrize("kind", ["conv3x3", "matmul"])
def test_writer_round_trip_each_block_size(block, kind):
    rng = np.random.default_rng(block)
    out_c, in_c = 13, 6  # 13 % B != 0 for B in 2, 4, 8: partial last block row
    taps = 9 if kind == "conv3x3" else 1
    weight = rng.standard_normal((out_c, in_c, taps)).astype(np.float32)
    rows = -(-out_c // block)
    for mask in (rng.random((rows, in_c)) < 0.5, np.zeros((rows, in_c), bool)):  # incl. nnz = 0
        bsr = encode_bsr(weight, mask, block)
        assert bsr.values.shape[1:] == (block, taps) and bsr.row_ptr[-1] == len(bsr.values) == mask.sum()
        dense_w = densify_bsr(bsr, out_c, in_c)
        expected_w = weight * np.repeat(mask, block, axis=0)[:out_c, :, None]
        np.testing.assert_array_equal(dense_w, expected_w)
        bias = rng.standard_normal(out_c).astype(np.float32)
        if kind == "conv3x3":
            attrs = {fmt.ATTR_KERNEL_SHAPE: [3, 3], fmt.ATTR_STRIDES: [2, 1], fmt.ATTR_PADS: [1, 0, 1, 2],
                     fmt.ATTR_DILATIONS: [1, 1]}
            node, arrays = make_sparse_node(fmt.GROUP_SPARSE_CONV, "l", "x", "y", bsr, bias, block, out_c,
                                            (0.0, 6.0), attrs)
            x = rng.standard_normal((2, in_c, 9, 8)).astype(np.float32)
            ref = helper.make_node("Conv", ["x", "w", "b"], ["c"], strides=[2, 1], pads=[1, 0, 1, 2])
            w_ref = dense_w.reshape(out_c, in_c, 3, 3)
        else:
            node, arrays = make_sparse_node(fmt.GROUP_SPARSE_MATMUL, "l", "x", "y", bsr, bias, block, out_c,
                                            (0.0, 6.0))
            x = rng.standard_normal((3, in_c)).astype(np.float32)
            ref = helper.make_node("Gemm", ["x", "w", "b"], ["c"], transB=1)
            w_ref = dense_w[:, :, 0]
        graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                                  initializer=[numpy_helper.from_array(v, k) for k, v in arrays.items()])
        sparse = finalize_model(helper.make_model(graph), {"test": True})
        sparse_y = _session(sparse).run(None, {"x": x})[0]
        dense_graph = helper.make_graph(
            [ref, helper.make_node("Clip", ["c", "lo", "hi"], ["y"])], "d",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
            initializer=[numpy_helper.from_array(w_ref, "w"), numpy_helper.from_array(bias, "b"),
                         numpy_helper.from_array(np.float32(0), "lo"), numpy_helper.from_array(np.float32(6), "hi")])
        dense_model = helper.make_model(dense_graph, opset_imports=[helper.make_opsetid("", 17)])
        dense_model.ir_version = 10
        assert _rel(sparse_y, _session(dense_model).run(None, {"x": x})[0]) < 1e-5


# ---------------------------------------------------------------- export
def test_zero_sparsity_reproduces_dense_model(mobilenet, tmp_path):
    digest = _sha(mobilenet)
    out = tmp_path / "s0.onnx"
    report = export_sparse(mobilenet, out, 0.0, progress=False)
    assert report.achieved_sparsity == 0.0
    x = _images(2, 1)
    assert _rel(_run(out, x), _run(mobilenet, x)) < 1e-5
    assert _sha(mobilenet) == digest


@pytest.mark.parametrize("pattern", ["1x1", "2x1", "4x1", "8x1"])
def test_export_matches_densified_weights_and_sparsity(mobilenet, tmp_path, pattern):
    digest = _sha(mobilenet)
    out = tmp_path / "s.onnx"
    target = 0.7
    report = export_sparse(mobilenet, out, target, pattern=pattern, allocation="uniform", progress=False)
    model = onnx.load(str(out))
    assert model.ir_version == fmt.IR_VERSION
    assert {o.domain: o.version for o in model.opset_import} == {"": fmt.ONNX_OPSET, fmt.DOMAIN: fmt.DOMAIN_VERSION}
    props = {p.key: p.value for p in model.metadata_props}
    assert props[fmt.META_FORMAT_VERSION] == str(fmt.FORMAT_VERSION)
    assert json.loads(props[fmt.META_EXPORT])["pattern"] == pattern
    assert {f.name for f in model.functions} == {fmt.GROUP_SPARSE_CONV}
    x = _images(2, 2)
    assert _rel(_run(out, x), _run(_densified(out), x)) < 1e-5
    block = int(pattern[0])
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    sparse_layers = [layer for layer in report.layers if layer.status == "sparse"]
    assert sparse_layers
    for layer in sparse_layers:
        block_weights = block * int(np.prod(layer.shape[2:]))
        assert abs(layer.pruned_weights - target * layer.weights) <= block_weights  # within one block
        assert len(inits[f"{layer.name}.values"]) == layer.nnz_blocks
    removed = sum(layer.pruned_weights for layer in sparse_layers)
    assert report.achieved_sparsity == pytest.approx(removed / sum(layer.weights for layer in sparse_layers))
    assert abs(report.achieved_sparsity - target) < 0.01
    assert _sha(mobilenet) == digest


def test_global_allocation_meets_target_and_odd_channels(tmp_path):
    dense = _odd_model(tmp_path / "odd.onnx")
    digest = _sha(dense)
    for pattern in ("4x1", "8x1"):
        out = tmp_path / f"odd_{pattern}.onnx"
        report = export_sparse(dense, out, 0.5, pattern=pattern, protect_first_last=False, progress=False)
        assert [layer.status for layer in report.layers] == ["sparse"] * 4
        assert {layer.shape[0] % int(pattern[0]) for layer in report.layers} - {0}  # partial block rows exist
        biggest_block = int(pattern[0]) * 9
        total = sum(layer.weights for layer in report.layers)
        assert abs(report.achieved_sparsity * total - 0.5 * total) <= biggest_block
        x = np.random.default_rng(3).standard_normal((2, 3, 16, 16)).astype(np.float32)
        assert _rel(_run(out, x), _run(_densified(out), x)) < 1e-5
        ops = {n.op_type for n in onnx.load(str(out)).graph.node}
        assert {"Relu", "Clip", fmt.GROUP_SPARSE_MATMUL} & ops == {fmt.GROUP_SPARSE_MATMUL}  # activations fused
    assert _sha(dense) == digest


def _assert_permutation_invariant(model: onnx.ModelProto, x: np.ndarray) -> int:
    net = prepare(net_from_model(model))
    before = _run(net.to_model(), x)
    layers = find_layers(net)
    result = rearrange(net, layers[1:-1], 4, 0.7)
    assert result.permuted > 0
    assert _rel(_run(net.to_model(), x), before) < 1e-5
    assert _rel(before, _run(model, x)) < 1e-4  # BN folding (float32 rounding) and the opset upgrade
    return result.permuted


def test_rearrangement_alone_keeps_mobilenet_outputs():
    _assert_permutation_invariant(build_mobilenet_v1(width=0.25, resolution=RES, num_classes=100), _images(2, 4))


def test_rearrangement_alone_keeps_efficientnet_outputs():
    from sparsedge_export import assets
    from sparsedge_export.assets import AssetError
    from sparsedge_export.models.efficientnet_lite0 import build_efficientnet_lite0

    try:
        model = build_efficientnet_lite0()
    except AssetError as exc:
        pytest.skip(f"EfficientNet-Lite0 weights not cached: {exc}")
    assert assets is not None
    spaces = _assert_permutation_invariant(model, _images(1, 5, size=224))
    assert spaces >= 16  # residual Adds tie block outputs into shared spaces


def test_recovery_reduces_layer_and_output_error(mobilenet, tmp_path):
    calibration = _images(16, 6)
    np.save(tmp_path / "calib.npy", calibration)
    outs = {}
    for recover in (False, True):
        outs[recover] = tmp_path / f"r{int(recover)}.onnx"
        report = export_sparse(mobilenet, outs[recover], 0.6, calibration=tmp_path / "calib.npy",
                               recover=recover, progress=False)
    for layer in report.layers:
        if layer.status == "sparse" and layer.pruned_weights:
            before, after = layer.recovery_error
            assert after < before, layer.name
    dense = _run(mobilenet, calibration)
    err = {k: float(np.linalg.norm(_run(v, calibration) - dense)) for k, v in outs.items()}
    assert err[True] < err[False]


def test_calibration_from_image_folder(mobilenet, tmp_path):
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (120, 140, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    report = export_sparse(mobilenet, tmp_path / "img.onnx", 0.5, calibration=folder, allocation="sensitivity",
                           progress=False)
    assert report.calibration_samples == 3 and report.recovery


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("sparsity", [-0.1, 1.0, 1.5, "lots"])
def test_sparsity_outside_range(mobilenet, tmp_path, sparsity):
    with pytest.raises(InvalidSparsityError, match=r"\[0, 1\)"):
        export_sparse(mobilenet, tmp_path / "x.onnx", sparsity, progress=False)


def test_unknown_pattern(mobilenet, tmp_path):
    with pytest.raises(InvalidPatternError, match="4x1"):
        export_sparse(mobilenet, tmp_path / "x.onnx", 0.5, pattern="3x1", progress=False)


def test_calibration_wrong_shape(mobilenet, tmp_path):
    with pytest.raises(CalibrationError, match=r"needs \['N', 3, 96, 96\]"):
        export_sparse(mobilenet, tmp_path / "x.onnx", 0.5, calibration=np.zeros((4, 3, 64, 64), np.float32),
                      progress=False)
    assert not (tmp_path / "x.onnx").exists()


def test_nothing_to_prune(tmp_path):
    with pytest.raises(NothingToPruneError, match="depthwise"):
        export_sparse(_odd_model(tmp_path / "dw.onnx", depthwise_only=True), tmp_path / "x.onnx", 0.5, progress=False)
    model = build_mobilenet_v1(width=0.25, resolution=RES, num_classes=10)
    keep = [n for n in model.graph.node if not n.name.startswith(("block",))]
    assert keep  # conv0 + head only: both protected
    tiny = tmp_path / "two_layers.onnx"
    _two_layer_model(tiny)
    with pytest.raises(NothingToPruneError, match="--no-protect"):
        export_sparse(tiny, tmp_path / "x.onnx", 0.5, progress=False)


def _two_layer_model(path: Path) -> None:
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((4, 3, 1, 1)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((4, 4, 1, 1)).astype(np.float32), "w2")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w1"], ["a"]), helper.make_node("Conv", ["a", "w2"], ["y"])],
                              "two", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 4])], initializer=[w1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    save_model_atomic(model, path)


def test_missing_input_file(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not found") as info:
        export_sparse(tmp_path / "absent.onnx", tmp_path / "x.onnx", 0.5, progress=False)
    assert isinstance(info.value, ExportError) and isinstance(info.value, FileNotFoundError)


def test_unsupported_op_is_refused(tmp_path):
    graph = helper.make_graph([helper.make_node("Resize", ["x", "", "s"], ["y"])], "r",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=[numpy_helper.from_array(np.ones(4, np.float32), "s")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    save_model_atomic(model, tmp_path / "resize.onnx")
    with pytest.raises(UnsupportedModelError, match="Resize"):
        export_sparse(tmp_path / "resize.onnx", tmp_path / "x.onnx", 0.5, progress=False)


def test_interrupted_export_leaves_no_file(mobilenet, tmp_path, monkeypatch):
    digest = _sha(mobilenet)
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    def broken_fsync(fd):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="simulated"):
        export_sparse(mobilenet, out_dir / "s.onnx", 0.5, progress=False)
    assert list(out_dir.iterdir()) == []  # neither the output nor a temporary file
    assert _sha(mobilenet) == digest


# ---------------------------------------------------------------- CLI
def test_cli_export_and_inspect(mobilenet, tmp_path, capsys):
    out, plot = tmp_path / "cli.onnx", tmp_path / "layers.png"
    assert cli_main(["export", str(mobilenet), "-o", str(out), "--sparsity", "0.5", "--pattern", "2x1",
                     "--no-rearrange", "--allocation", "uniform"]) == 0
    captured = capsys.readouterr()
    assert "block1.pw" in captured.err and "total:" in captured.err  # progress + report on stderr
    assert cli_main(["inspect", str(out), "--plot", str(plot)]) == 0
    text = capsys.readouterr().out
    assert "GroupSparseConv" in text and "protected" in text and "MACs" in text
    assert plot.stat().st_size > 1000
    assert cli_main(["export", str(mobilenet), "-o", str(out), "--sparsity", "2"]) == 2
    assert "outside [0, 1)" in capsys.readouterr().err


def test_identity_on_initializers_is_resolved(tmp_path):
    """torch.onnx.export writes Identity(initializer) when two folded biases are equal."""
    rng = np.random.default_rng(5)
    inits = [numpy_helper.from_array(rng.standard_normal((16, 8, 1, 1)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.standard_normal((16, 16, 1, 1)).astype(np.float32), "w2"),
             numpy_helper.from_array(rng.standard_normal((16, 16, 1, 1)).astype(np.float32), "w3"),
             numpy_helper.from_array(np.zeros(16, np.float32), "b")]
    nodes = [helper.make_node("Identity", ["b"], ["b_copy"]),
             helper.make_node("Conv", ["x", "w1", "b"], ["c1"]), helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b_copy"], ["c2"]), helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("Conv", ["r2", "w3", "b_copy"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 6, 6])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    dense = tmp_path / "ident.onnx"
    save_model_atomic(model, dense)
    out = tmp_path / "ident_sparse.onnx"
    x = rng.standard_normal((2, 8, 6, 6)).astype(np.float32)
    for rearrange_on in (True, False):
        export_sparse(dense, out, 0.5, pattern="4x1", rearrange=rearrange_on, calibration=x, progress=False)
        assert _rel(_run(out, x), _run(_densified(out), x)) < 1e-5

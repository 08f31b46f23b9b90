"""The ai.sparsedge ops, written from Python (format.py) and read by the C++
core: BSR weights built by hand here must give what a dense Conv/MatMul with
the densified weights gives in onnxruntime, on every kernel ISA. Malformed
BSR data is an InvalidModelError naming the problem."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import sparsedge
from sparsedge_export import format as fmt

ISAS = sparsedge.get_available_isas()


def random_bsr(rng, out_channels, in_channels, block, taps, density):
    """BSR blocks of `block` output channels x one input channel, and the dense weight."""
    rows = -(-out_channels // block)
    keep = rng.random((rows, in_channels)) < density
    values, cols, row_ptr = [], [], [0]
    dense = np.zeros((rows * block, in_channels, taps), np.float32)
    for r in range(rows):
        for c in np.flatnonzero(keep[r]):
            v = rng.standard_normal((block, taps)).astype(np.float32)
            if r == rows - 1 and out_channels % block:
                v[out_channels % block:] = 0.0  # padded rows of a partial block row
            values.append(v)
            cols.append(c)
            dense[r * block:(r + 1) * block, c] = v
        row_ptr.append(len(cols))
    values = np.array(values, np.float32).reshape(len(cols), block, taps)
    return values, np.array(cols, np.int32), np.array(row_ptr, np.int32), dense[:out_channels]


def sparse_conv_model(values, cols, row_ptr, bias, out_channels, block, kernel, strides, pads, act, x_shape):
    inits = [numpy_helper.from_array(values, "values"), numpy_helper.from_array(cols, "cols"),
             numpy_helper.from_array(row_ptr, "row_ptr")]
    inputs = ["x", "values", "cols", "row_ptr"]
    if bias is not None:
        inits.append(numpy_helper.from_array(bias, "bias"))
        inputs.append("bias")
    node = helper.make_node(
        fmt.GROUP_SPARSE_CONV, inputs, ["y"], domain=fmt.DOMAIN,
        **{fmt.ATTR_BLOCK_SIZE: block, fmt.ATTR_OUT_CHANNELS: out_channels, fmt.ATTR_KERNEL_SHAPE: list(kernel),
           fmt.ATTR_STRIDES: list(strides), fmt.ATTR_PADS: list(pads),
           fmt.ATTR_ACTIVATION_MIN: act[0], fmt.ATTR_ACTIVATION_MAX: act[1]})
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", fmt.ONNX_OPSET),
                                                    helper.make_opsetid(fmt.DOMAIN, fmt.DOMAIN_VERSION)])
    model.ir_version = fmt.IR_VERSION
    return model


def dense_conv_reference(x, dense, bias, kernel, strides, pads, act):
    w = dense.reshape(dense.shape[0], dense.shape[1], *kernel)
    inits = [numpy_helper.from_array(w, "w")]
    inputs = ["x", "w"]
    if bias is not None:
        inits.append(numpy_helper.from_array(bias, "b"))
        inputs.append("b")
    nodes = [helper.make_node("Conv", inputs, ["c"], strides=list(strides), pads=list(pads)),
             helper.make_node("Clip", ["c", "lo", "hi"], ["y"])]
    inits += [numpy_helper.from_array(np.array(act[0], np.float32), "lo"),
              numpy_helper.from_array(np.array(act[1], np.float32), "hi")]
    graph = helper.make_graph(nodes, "ref", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


NONE = (-fmt.NO_CLAMP, fmt.NO_CLAMP)
CASES = [
    # out, in, block, kernel, strides, pads, hw, density, act
    (64, 32, 4, (1, 1), (1, 1), (0, 0, 0, 0), (14, 14), 0.3, (0.0, fmt.NO_CLAMP)),
    (30, 17, 4, (1, 1), (1, 1), (0, 0, 0, 0), (7, 7), 0.5, NONE),          # O % B != 0
    (19, 8, 8, (1, 1), (1, 1), (0, 0, 0, 0), (5, 9), 0.6, (0.0, 6.0)),
    (16, 16, 2, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 0.5, NONE),          # 1x1 spatial
    (16, 16, 1, (1, 1), (1, 1), (0, 0, 0, 0), (33, 3), 1.0, NONE),         # dense
    (24, 12, 4, (1, 1), (1, 1), (0, 0, 0, 0), (8, 8), 0.0, (0.0, fmt.NO_CLAMP)),  # all pruned
    (32, 3, 4, (3, 3), (2, 2), (0, 0, 1, 1), (17, 16), 0.7, (0.0, 6.0)),   # stem-like, asymmetric pads
    (13, 9, 2, (3, 3), (1, 1), (1, 1, 1, 1), (6, 7), 0.4, NONE),
    (8, 8, 8, (1, 1), (2, 2), (0, 0, 0, 0), (9, 9), 0.5, NONE),            # strided 1x1
]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
@pytest.mark.parametrize("with_bias", [True, False])
def test_group_sparse_conv_matches_dense_reference(isa, case, with_bias):
    out_c, in_c, block, kernel, strides, pads, hw, density, act = case
    rng = np.random.default_rng(hash((case, with_bias)) % 2**32)
    values, cols, row_ptr, dense = random_bsr(rng, out_c, in_c, block, kernel[0] * kernel[1], density)
    bias = rng.standard_normal(out_c).astype(np.float32) if with_bias else None
    x = rng.standard_normal((2, in_c, *hw)).astype(np.float32)
    model = sparse_conv_model(values, cols, row_ptr, bias, out_c, block, kernel, strides, pads, act, list(x.shape))
    session = sparsedge.InferenceSession(model.SerializeToString(), isa=isa)
    out = session.run(None, {"x": x})[0]
    ref = dense_conv_reference(x, dense, bias, kernel, strides, pads, act)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(ref).max())))
    assert session.get_nodes()[0]["op_type"] == fmt.GROUP_SPARSE_CONV


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("rows", [1, 3, 40])
def test_group_sparse_matmul_matches_dense_reference(isa, rows):
    rng = np.random.default_rng(rows)
    out_f, in_f, block = 37, 50, 4
    values, cols, row_ptr, dense = random_bsr(rng, out_f, in_f, block, 1, 0.4)
    bias = rng.standard_normal(out_f).astype(np.float32)
    node = helper.make_node(fmt.GROUP_SPARSE_MATMUL, ["x", "values", "cols", "row_ptr", "bias"], ["y"],
                            domain=fmt.DOMAIN, **{fmt.ATTR_BLOCK_SIZE: block, fmt.ATTR_OUT_CHANNELS: out_f,
                                                  fmt.ATTR_ACTIVATION_MIN: 0.0, fmt.ATTR_ACTIVATION_MAX: fmt.NO_CLAMP})
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, in_f])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(values, "values"), numpy_helper.from_array(cols, "cols"),
         numpy_helper.from_array(row_ptr, "row_ptr"), numpy_helper.from_array(bias, "bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", fmt.ONNX_OPSET),
                                                    helper.make_opsetid(fmt.DOMAIN, fmt.DOMAIN_VERSION)])
    model.ir_version = fmt.IR_VERSION
    x = rng.standard_normal((rows, in_f)).astype(np.float32)
    out = sparsedge.InferenceSession(model.SerializeToString(), isa=isa).run(None, {"x": x})[0]
    ref = np.maximum(x @ dense[:, :, 0].T + bias, 0.0)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * float(np.abs(ref).max()))


def dense_matmul_reference(x, dense, bias, act):
    """onnxruntime on the densified weight: Clip(x @ W^T (+ bias))."""
    inits = [numpy_helper.from_array(np.ascontiguousarray(dense.T), "wt"),
             numpy_helper.from_array(np.array(act[0], np.float32), "lo"),
             numpy_helper.from_array(np.array(act[1], np.float32), "hi")]
    nodes = [helper.make_node("MatMul", ["x", "wt"], ["mm"])]
    last = "mm"
    if bias is not None:
        inits.append(numpy_helper.from_array(bias, "b"))
        nodes.append(helper.make_node("Add", ["mm", "b"], ["mmb"]))
        last = "mmb"
    nodes.append(helper.make_node("Clip", [last, "lo", "hi"], ["y"]))
    graph = helper.make_graph(nodes, "ref", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("block", [1, 2, 4, 8])
@pytest.mark.parametrize("shape", [(37, 50, 0.4, True, NONE), (577, 576, 0.5, False, (-0.5, 0.5)),
                                   (192, 1536, 0.3, True, NONE)], ids=["small", "577x576-clamp", "192x1536"])
def test_group_sparse_matmul_one_row_decode_path(isa, block, shape):
    """M = 1 (LLM decode) runs the f32-gspmv kernels of every ISA: same result as onnxruntime."""
    out_f, in_f, density, with_bias, act = shape
    rng = np.random.default_rng(out_f * 10 + block)
    values, cols, row_ptr, dense = random_bsr(rng, out_f, in_f, block, 1, density)
    bias = rng.standard_normal(out_f).astype(np.float32) if with_bias else None
    inputs = ["x", "values", "cols", "row_ptr"] + (["bias"] if with_bias else [])
    inits = [numpy_helper.from_array(values, "values"), numpy_helper.from_array(cols, "cols"),
             numpy_helper.from_array(row_ptr, "row_ptr")]
    if with_bias:
        inits.append(numpy_helper.from_array(bias, "bias"))
    node = helper.make_node(fmt.GROUP_SPARSE_MATMUL, inputs, ["y"], domain=fmt.DOMAIN,
                            **{fmt.ATTR_BLOCK_SIZE: block, fmt.ATTR_OUT_CHANNELS: out_f,
                               fmt.ATTR_ACTIVATION_MIN: act[0], fmt.ATTR_ACTIVATION_MAX: act[1]})
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, in_f])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", fmt.ONNX_OPSET),
                                                    helper.make_opsetid(fmt.DOMAIN, fmt.DOMAIN_VERSION)])
    model.ir_version = fmt.IR_VERSION
    x = rng.standard_normal((1, in_f)).astype(np.float32)
    session = sparsedge.InferenceSession(model.SerializeToString(), isa=isa)
    out = session.run(None, {"x": x})[0]
    ref = dense_matmul_reference(x, dense[:, :, 0], bias, act)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(ref).max())))
    assert session.get_nodes()[0]["kernel"].startswith("gspmv-"), session.get_nodes()[0]


def _malformed(mutate):
    rng = np.random.default_rng(0)
    values, cols, row_ptr, _ = random_bsr(rng, 16, 8, 4, 1, 0.5)
    parts = {"values": values, "cols": cols, "row_ptr": row_ptr, "block": 4}
    mutate(parts)
    model = sparse_conv_model(parts["values"], parts["cols"], parts["row_ptr"], None, 16, parts["block"],
                              (1, 1), (1, 1), (0, 0, 0, 0), NONE, [1, 8, 4, 4])
    session = sparsedge.InferenceSession(model.SerializeToString())
    session.run(None, {"x": np.zeros((1, 8, 4, 4), np.float32)})


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p.update(block=3), "block_size"),
    (lambda p: p.update(row_ptr=p["row_ptr"][:-1]), "row_ptr"),
    (lambda p: p.update(cols=p["cols"].astype(np.int64)), "col_indices"),
    (lambda p: p["cols"].__setitem__(0, 99), "col"),
    (lambda p: p["row_ptr"].__setitem__(-1, p["row_ptr"][-1] + 1), "row_ptr"),
    (lambda p: p["row_ptr"].__setitem__(0, 1), "row_ptr"),
    (lambda p: p.update(values=p["values"][:, :2]), "values"),
])
def test_malformed_bsr_is_a_clear_error(mutate, message):
    with pytest.raises(sparsedge.InvalidModelError, match=message):
        _malformed(mutate)


def test_wrong_domain_version_is_unsupported():
    rng = np.random.default_rng(0)
    values, cols, row_ptr, _ = random_bsr(rng, 8, 8, 4, 1, 0.5)
    model = sparse_conv_model(values, cols, row_ptr, None, 8, 4, (1, 1), (1, 1), (0, 0, 0, 0), NONE, [1, 8, 2, 2])
    for opset in model.opset_import:
        if opset.domain == fmt.DOMAIN:
            opset.version = 2
    with pytest.raises(sparsedge.UnsupportedError, match="version 2"):
        sparsedge.InferenceSession(model.SerializeToString())


def _resident_bytes(path) -> int:
    """Resident bytes of this process's mappings of ``path`` (/proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            first = line.split(maxsplit=1)[0]
            if "-" in first and not first.endswith(":"):  # a mapping header: "start-end perms ... path"
                inside = line.rstrip().endswith(str(path))
            elif inside and first == "Rss:":
                total += int(line.split()[1]) * 1024
    return total


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/smaps"), reason="needs Linux /proc")
def test_group_sparse_matmul_releases_mapped_weights_after_packing(tmp_path):
    # GroupSparseMatMul packs its BSR at the first shape inference (it needs the input's
    # feature count). The mapped originals must leave memory then, or a sparse model holds
    # its weights twice (once packed, once mapped) and outgrows the dense one.
    rng = np.random.default_rng(7)
    out_f, in_f, block = 512, 512, 4
    values, cols, row_ptr, dense = random_bsr(rng, out_f, in_f, block, 1, 0.7)
    node = helper.make_node(fmt.GROUP_SPARSE_MATMUL, ["x", "values", "cols", "row_ptr"], ["y"], domain=fmt.DOMAIN,
                            **{fmt.ATTR_BLOCK_SIZE: block, fmt.ATTR_OUT_CHANNELS: out_f})
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, in_f])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(values, "values"), numpy_helper.from_array(cols, "cols"),
         numpy_helper.from_array(row_ptr, "row_ptr")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", fmt.ONNX_OPSET),
                                                    helper.make_opsetid(fmt.DOMAIN, fmt.DOMAIN_VERSION)])
    model.ir_version = fmt.IR_VERSION
    path, data = tmp_path / "gs.onnx", tmp_path / "gs.data"  # external data: mapped in place, as LLM exports are
    onnx.save(model, str(path), save_as_external_data=True, location=data.name, size_threshold=1024)
    session = sparsedge.InferenceSession(str(path))
    assert _resident_bytes(data) < values.nbytes // 4  # released once the op is built
    x = rng.standard_normal((1, in_f)).astype(np.float32)
    for _ in range(2):
        out = session.run(None, {"x": x})[0]
    np.testing.assert_allclose(out, x @ dense[:, :, 0].T, rtol=1e-4, atol=1e-3)
    assert values.nbytes > 512 * 1024
    assert _resident_bytes(data) < values.nbytes // 4, (_resident_bytes(data), values.nbytes)

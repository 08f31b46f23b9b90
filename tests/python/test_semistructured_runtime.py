"""SemiStructuredMatMul (2:4) in the runtime: a single-op model written with the
exporter's node and function builders, run by sparsedge on every ISA and by
onnxruntime (through the function body) on the same file: decode (one row of
X) and prefill shapes (M > 1, the f32-spmm24 row tiles), 1 and 3 threads."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import sparsedge
from sparsedge_export import format as fmt
from sparsedge_export.llm.semistructured import encode_2_4, make_semi_structured_node, semi_structured_function

ISAS = sparsedge.get_available_isas()


def random_2_4(rng, out_channels, in_channels):
    weight = rng.standard_normal((out_channels, in_channels)).astype(np.float32)
    groups = in_channels // 4
    keep = np.argsort(rng.random((out_channels, groups, 4)), axis=-1)[..., :2]
    mask = np.zeros((out_channels, groups, 4), bool)
    np.put_along_axis(mask, keep, True, axis=-1)
    return encode_2_4(weight, mask.reshape(out_channels, in_channels))


def write_model(path, sw, x_shape, bias=None):
    out_channels = sw.values.shape[0]
    node, tensors = make_semi_structured_node("proj", "X", "Y", sw, bias)
    graph = helper.make_graph(
        [node], "semistructured",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, list(x_shape[:-1]) + [out_channels])],
        initializer=[numpy_helper.from_array(a, n) for n, a in tensors.items()])
    model = helper.make_model(graph, functions=[semi_structured_function()],
                              opset_imports=[helper.make_opsetid("", fmt.ONNX_OPSET),
                                             helper.make_opsetid(fmt.DOMAIN, fmt.DOMAIN_VERSION)],
                              ir_version=fmt.IR_VERSION)
    onnx.save(model, str(path))
    return str(path)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("out_channels,in_channels,x_shape", [
    (5, 4, (1, 4)), (13, 12, (3, 12)), (67, 576, (1, 576)), (64, 1536, (2, 3, 1536)), (1536, 576, (1, 576)),
    # M > 1 (prefill): row tiles of X and their remainders, split over threads by rows or panels
    (17, 20, (2, 9, 20)), (67, 576, (64, 576)), (192, 576, (1, 37, 576))])
def test_matches_onnxruntime(tmp_path, isa, out_channels, in_channels, x_shape):
    rng = np.random.default_rng(out_channels * 7 + in_channels)
    sw = random_2_4(rng, out_channels, in_channels)
    bias = rng.standard_normal(out_channels).astype(np.float32) if out_channels % 2 else None
    path = write_model(tmp_path / "m.onnx", sw, x_shape, bias)
    x = rng.standard_normal(x_shape).astype(np.float32)
    ref = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"X": x})[0]
    results = []
    for threads in (1, 3):
        got = sparsedge.InferenceSession(path, threads=threads, isa=isa).run(None, {"X": x})[0]
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * float(np.abs(ref).max()))
        results.append(got)
    np.testing.assert_array_equal(results[0], results[1])  # thread count does not change the bits


@pytest.mark.parametrize("byte", [0b0101, 0b0000, 0b0001 | (0 << 2), 0x13])
def test_malformed_index_is_invalid_model(tmp_path, byte):
    rng = np.random.default_rng(0)
    sw = random_2_4(rng, 6, 8)
    sw.indices[4, 1] = byte  # p0 == p1, p0 > p1, or bits 4-7 set
    path = write_model(tmp_path / "bad.onnx", sw, (1, 8))
    with pytest.raises(sparsedge.InvalidModelError, match="proj"):
        sparsedge.InferenceSession(path)


def test_wrong_values_shape_is_invalid_model(tmp_path):
    rng = np.random.default_rng(1)
    sw = random_2_4(rng, 6, 8)
    sw.values = sw.values[:, :3].copy()
    path = write_model(tmp_path / "bad.onnx", sw, (1, 8))
    with pytest.raises(sparsedge.InvalidModelError, match="proj"):
        sparsedge.InferenceSession(path)

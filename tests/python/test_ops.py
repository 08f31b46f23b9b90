"""Every supported ONNX op, run on sparsedge and on onnxruntime (the reference).

Each case builds a one-op (or tiny multi-op) model with onnx.helper, feeds it
seeded random inputs over edge shapes, and runs it under every kernel ISA
this machine offers. Float results must satisfy
max|diff| <= 1e-4 * max(1, max|ref|); integer results must match exactly.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import sparsedge

ISAS = sparsedge.get_available_isas()
RTOL = 1e-4
FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64


def make_model(nodes, inputs, outputs, inits=None, opset=13):
    """inputs/outputs: {name: (elem_type, shape or None)}; inits: {name: ndarray}."""
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, t, s) for n, (t, s) in inputs.items()],
        [helper.make_tensor_value_info(n, t, s) for n, (t, s) in outputs.items()],
        initializer=[numpy_helper.from_array(np.asarray(v), n) for n, v in (inits or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def reference(model, feeds):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def assert_close(got, ref, what=""):
    assert got.dtype == ref.dtype, f"{what}: dtype {got.dtype} != {ref.dtype}"
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    if ref.dtype.kind == "f":
        scale = max(1.0, float(np.abs(ref).max())) if ref.size else 1.0
        diff = float(np.abs(got.astype(np.float64) - ref).max()) if ref.size else 0.0
        assert diff <= RTOL * scale, f"{what}: max|diff| {diff:.3g} > {RTOL * scale:.3g}"
    else:
        np.testing.assert_array_equal(got, ref, err_msg=what)


def check(model, feeds, isa, threads=1):
    """Runs `model` on both runtimes and compares every output; returns the session."""
    ref = reference(model, feeds)
    sess = sparsedge.InferenceSession(model.SerializeToString(), threads=threads, isa=isa)
    got = sess.run(None, feeds)
    assert len(got) == len(ref)
    for i, (g, r) in enumerate(zip(got, ref)):
        assert_close(g, r, f"output {i}")
    return sess


def rand(*shape, seed=0, lo=-1.0, hi=1.0):
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(np.float32)


def unary_model(op, shape, opset=13, **attrs):
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    return make_model([node], {"x": (FLOAT, list(shape))}, {"y": (FLOAT, None)}, opset=opset), {
        "x": rand(*shape, lo=-4, hi=4)
    }


# ---------------------------------------------------------------------------
# Conv

def conv_case(n, c, h, w, oc, k, group=1, bias=True, opset=13, seed=1, **attrs):
    """A single Conv; k is an int (square), a (kh, kw) pair or a 1-tuple (1-D)."""
    ks = (k, k) if isinstance(k, int) else tuple(k)
    spatial = (h, w) if len(ks) == 2 else (w,)
    wt = rand(oc, c // group, *ks, seed=seed)
    inits = {"W": wt}
    inputs = ["x", "W"]
    if bias:
        inits["B"] = rand(oc, seed=seed + 1)
        inputs.append("B")
    node = helper.make_node("Conv", inputs, ["y"], group=group, **attrs)
    model = make_model([node], {"x": (FLOAT, [n, c, *spatial])}, {"y": (FLOAT, None)}, inits, opset)
    return model, {"x": rand(n, c, *spatial, seed=seed + 2)}


CONV_CASES = {
    # depthwise fast paths: 3x3 / 5x5, stride 1 / 2, channels not a multiple of 8
    "dw3x3s1": lambda: conv_case(1, 13, 9, 11, 13, 3, group=13, pads=[1, 1, 1, 1]),
    "dw3x3s2": lambda: conv_case(2, 5, 10, 7, 5, 3, group=5, strides=[2, 2], pads=[1, 1, 1, 1]),
    "dw3x3s2_even": lambda: conv_case(1, 8, 16, 16, 8, 3, group=8, strides=[2, 2], pads=[0, 0, 1, 1]),
    "dw5x5s1": lambda: conv_case(1, 7, 11, 9, 7, 5, group=7, pads=[2, 2, 2, 2]),
    "dw5x5s2": lambda: conv_case(1, 17, 13, 12, 17, 5, group=17, strides=[2, 2], pads=[2, 2, 2, 2]),
    "dw3x3s1_nopad": lambda: conv_case(1, 3, 5, 6, 3, 3, group=3),
    "dw3x3s1_asym": lambda: conv_case(1, 4, 7, 7, 4, 3, group=4, pads=[0, 1, 2, 0]),
    "dw3x3s2_same_upper": lambda: conv_case(1, 6, 9, 10, 6, 3, group=6, strides=[2, 2], auto_pad="SAME_UPPER"),
    "dw5x5s2_same_lower": lambda: conv_case(1, 6, 9, 10, 6, 5, group=6, strides=[2, 2], auto_pad="SAME_LOWER"),
    "dw3x3_dilated": lambda: conv_case(1, 4, 9, 9, 4, 3, group=4, dilations=[2, 2], pads=[2, 2, 2, 2]),
    "dw3x3_stride_hw": lambda: conv_case(1, 4, 9, 9, 4, 3, group=4, strides=[2, 1], pads=[1, 1, 1, 1]),
    "dw3x3_1x1_input": lambda: conv_case(1, 9, 1, 1, 9, 3, group=9, pads=[1, 1, 1, 1]),
    "dw3x3_tiny": lambda: conv_case(1, 3, 2, 3, 3, 3, group=3, strides=[2, 2], pads=[1, 1, 1, 1]),
    "dw_multiplier2": lambda: conv_case(1, 3, 6, 6, 6, 3, group=3, pads=[1, 1, 1, 1]),
    "dw3x3_nobias": lambda: conv_case(1, 10, 8, 8, 10, 3, group=10, bias=False, pads=[1, 1, 1, 1]),
    # pointwise and general
    "1x1": lambda: conv_case(2, 19, 5, 7, 23, 1),
    "1x1_nobias": lambda: conv_case(1, 8, 4, 4, 16, 1, bias=False),
    "1x1_stride2": lambda: conv_case(1, 6, 7, 7, 5, 1, strides=[2, 2]),
    "1x1_padded": lambda: conv_case(1, 3, 3, 3, 4, 1, pads=[1, 0, 0, 1]),
    "1x1_spatial_1": lambda: conv_case(3, 17, 1, 1, 33, 1),
    "3x3_rgb_s2": lambda: conv_case(1, 3, 15, 17, 10, 3, strides=[2, 2], pads=[1, 1, 1, 1]),
    "3x3_nobias": lambda: conv_case(2, 5, 6, 5, 7, 3, bias=False, pads=[1, 1, 1, 1]),
    "kxk_2x4": lambda: conv_case(1, 4, 8, 9, 6, (2, 4)),
    "7x7_s2": lambda: conv_case(1, 3, 16, 15, 9, 7, strides=[2, 2], pads=[3, 3, 3, 3]),
    "asym_pads": lambda: conv_case(1, 5, 7, 8, 6, 3, pads=[0, 2, 1, 0]),
    "same_upper_even_k": lambda: conv_case(1, 3, 7, 8, 4, 4, strides=[2, 2], auto_pad="SAME_UPPER"),
    "same_lower_even_k": lambda: conv_case(1, 3, 7, 8, 4, 4, strides=[2, 2], auto_pad="SAME_LOWER"),
    "same_upper_s1": lambda: conv_case(1, 3, 6, 5, 4, 3, auto_pad="SAME_UPPER"),
    "same_lower_s3": lambda: conv_case(1, 2, 10, 11, 3, 3, strides=[3, 3], auto_pad="SAME_LOWER"),
    "valid": lambda: conv_case(1, 3, 7, 8, 4, 3, strides=[2, 2], auto_pad="VALID"),
    "notset_explicit": lambda: conv_case(1, 3, 7, 8, 4, 3, auto_pad="NOTSET", pads=[1, 1, 1, 1]),
    "dilated": lambda: conv_case(1, 4, 10, 10, 5, 3, dilations=[2, 3], pads=[1, 2, 1, 2]),
    "strides_2x1": lambda: conv_case(1, 4, 9, 8, 5, 3, strides=[2, 1], pads=[1, 1, 1, 1]),
    "1x1_spatial_k3": lambda: conv_case(1, 6, 1, 1, 7, 3, pads=[1, 1, 1, 1]),
    "groups2": lambda: conv_case(1, 6, 7, 7, 10, 3, group=2, pads=[1, 1, 1, 1]),
    "groups3_s2": lambda: conv_case(2, 9, 8, 9, 6, 3, group=3, strides=[2, 2], pads=[1, 0, 1, 0]),
    "big_channels": lambda: conv_case(1, 37, 6, 6, 41, 3, pads=[1, 1, 1, 1]),
    "conv1d": lambda: conv_case(2, 3, 1, 17, 5, (3,), pads=[1, 1]),
    "conv1d_s2_dil": lambda: conv_case(1, 4, 1, 20, 6, (5,), strides=[2], dilations=[2], pads=[0, 3]),
    "conv1d_same": lambda: conv_case(1, 4, 1, 9, 6, (4,), strides=[2], auto_pad="SAME_UPPER", bias=False),
    "conv1d_depthwise": lambda: conv_case(1, 5, 1, 12, 5, (3,), group=5, pads=[1, 1]),
    "kernel_shape_attr": lambda: conv_case(1, 3, 6, 6, 4, 3, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    "opset11": lambda: conv_case(1, 3, 6, 6, 4, 3, opset=11, pads=[1, 1, 1, 1]),
}


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv(case, isa):
    model, feeds = CONV_CASES[case]()
    check(model, feeds, isa)


# ---------------------------------------------------------------------------
# Element-wise

def clip_case(opset, lo, hi, as_attr=False):
    if as_attr:
        attrs = {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
        node = helper.make_node("Clip", ["x"], ["y"], **attrs)
        inits = {}
    else:
        ins = ["x", "lo" if lo is not None else "", "hi" if hi is not None else ""]
        while ins[-1] == "":
            ins.pop()
        inits = {k: np.float32(v) for k, v in (("lo", lo), ("hi", hi)) if v is not None}
        node = helper.make_node("Clip", ins, ["y"])
    model = make_model([node], {"x": (FLOAT, [2, 3, 4, 5])}, {"y": (FLOAT, None)}, inits, opset)
    return model, {"x": rand(2, 3, 4, 5, lo=-8, hi=8)}


def binary_case(op, sa, sb, const_b=False, dtype=np.float32, opset=13):
    ta = FLOAT if dtype == np.float32 else INT64
    rng = np.random.default_rng(3)
    a = rng.uniform(-3, 3, sa).astype(dtype) if dtype == np.float32 else rng.integers(-50, 50, sa).astype(dtype)
    if dtype == np.float32:
        b = rng.uniform(0.5, 3, sb) * rng.choice([-1, 1], sb)  # away from 0 for Div
    else:
        b = rng.integers(1, 9, sb) * rng.choice([-1, 1], sb)
    b = np.asarray(b).astype(dtype)
    node = helper.make_node(op, ["a", "b"], ["y"])
    inputs = {"a": (ta, list(sa))}
    feeds = {"a": a}
    inits = {}
    if const_b:
        inits["b"] = b
    else:
        inputs["b"] = (ta, list(sb))
        feeds["b"] = b
    return make_model([node], inputs, {"y": (ta, None)}, inits, opset), feeds


BROADCASTS = {
    "same": ((2, 3, 4, 5), (2, 3, 4, 5)),
    "nchw_nc11": ((2, 3, 4, 5), (2, 3, 1, 1)),
    "nc11_nchw": ((1, 3, 1, 1), (2, 3, 4, 5)),
    "scalar": ((2, 3, 4, 5), ()),
    "scalar_left": ((), (3, 4)),
    "rank_mismatch": ((3, 4, 5), (5,)),
    "rank_mismatch_c11": ((2, 3, 4, 5), (3, 1, 1)),
    "both_broadcast": ((4, 1), (3,)),
    "middle": ((2, 1, 4), (1, 3, 1)),
    "one_elem": ((1,), (2, 3)),
    "inner_1": ((7, 1), (7, 6)),
}

ELEMENTWISE_CASES = {
    "relu": lambda: unary_model("Relu", (2, 3, 5, 7)),
    "relu_scalar": lambda: unary_model("Relu", ()),
    "relu_empty": lambda: unary_model("Relu", (0, 3)),
    "sigmoid": lambda: unary_model("Sigmoid", (3, 17)),
    "hardsigmoid_default": lambda: unary_model("HardSigmoid", (3, 17)),
    "hardsigmoid_attrs": lambda: unary_model("HardSigmoid", (3, 17), alpha=0.3, beta=0.4),
    "hardswish": lambda: unary_model("HardSwish", (2, 4, 3, 3), opset=14),
    "clip_attr_op10": lambda: clip_case(10, -1.5, 2.0, as_attr=True),
    "clip_attr_min_only_op10": lambda: clip_case(10, 0.5, None, as_attr=True),
    "clip_attr_max_only_op10": lambda: clip_case(10, None, 1.0, as_attr=True),
    "clip_inputs_op11": lambda: clip_case(11, 0.0, 6.0),
    "clip_min_only_op11": lambda: clip_case(11, -1.0, None),
    "clip_max_only_op13": lambda: clip_case(13, None, 2.5),
    "clip_neither_op13": lambda: clip_case(13, None, None),
    "clip_inputs_op13": lambda: clip_case(13, -2.0, 3.0),
}
for _op in ("Add", "Sub", "Mul", "Div"):
    for _name, (_sa, _sb) in BROADCASTS.items():
        ELEMENTWISE_CASES[f"{_op.lower()}_{_name}"] = (lambda o=_op, a=_sa, b=_sb: binary_case(o, a, b))
    ELEMENTWISE_CASES[f"{_op.lower()}_const_c11"] = (
        lambda o=_op: binary_case(o, (2, 3, 4, 5), (3, 1, 1), const_b=True))
    ELEMENTWISE_CASES[f"{_op.lower()}_int64"] = (
        lambda o=_op: binary_case(o, (2, 3, 4), (3, 1), dtype=np.int64))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("case", sorted(ELEMENTWISE_CASES))
def test_elementwise(case, isa):
    model, feeds = ELEMENTWISE_CASES[case]()
    check(model, feeds, isa)


def test_clip_dynamic_bounds():
    """Clip bounds that are graph inputs (not fusable, read at run time)."""
    node = helper.make_node("Clip", ["x", "lo", "hi"], ["y"])
    model = make_model([node], {"x": (FLOAT, [3, 4]), "lo": (FLOAT, []), "hi": (FLOAT, [])}, {"y": (FLOAT, None)})
    check(model, {"x": rand(3, 4, lo=-3, hi=3), "lo": np.array(-0.5, np.float32), "hi": np.array(0.7, np.float32)}, ISAS[0])


# ---------------------------------------------------------------------------
# Pooling, reductions, Softmax

def pool_case(op, shape, opset=13, **attrs):
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    model = make_model([node], {"x": (FLOAT, list(shape))}, {"y": (FLOAT, None)}, opset=opset)
    return model, {"x": rand(*shape, seed=5, lo=-5, hi=5)}


def reduce_case(shape, axes, keepdims=1, opset=13):
    if opset >= 18:
        ins = ["x"] + (["axes"] if axes is not None else [])
        inits = {"axes": np.array(axes, np.int64)} if axes is not None else {}
        node = helper.make_node("ReduceMean", ins, ["y"], keepdims=keepdims)
    else:
        inits = {}
        kw = {"axes": axes} if axes is not None else {}
        node = helper.make_node("ReduceMean", ["x"], ["y"], keepdims=keepdims, **kw)
    model = make_model([node], {"x": (FLOAT, list(shape))}, {"y": (FLOAT, None)}, inits, opset)
    return model, {"x": rand(*shape, seed=6, lo=-3, hi=5)}


def softmax_case(shape, opset, axis=None):
    attrs = {} if axis is None else {"axis": axis}
    return unary_model("Softmax", shape, opset=opset, **attrs)


POOL_CASES = {
    "gap": lambda: pool_case("GlobalAveragePool", (2, 5, 7, 9)),
    "gap_1x1": lambda: pool_case("GlobalAveragePool", (1, 3, 1, 1)),
    "gmp": lambda: pool_case("GlobalMaxPool", (2, 3, 4, 5)),
    "avg_k2s2": lambda: pool_case("AveragePool", (1, 3, 8, 8), kernel_shape=[2, 2], strides=[2, 2]),
    "avg_pads_exclude": lambda: pool_case("AveragePool", (1, 2, 7, 6), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    "avg_pads_include": lambda: pool_case("AveragePool", (1, 2, 7, 6), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1),
    "avg_asym_pads_include": lambda: pool_case("AveragePool", (1, 2, 6, 7), kernel_shape=[3, 2], pads=[0, 1, 2, 0], count_include_pad=1),
    "avg_ceil": lambda: pool_case("AveragePool", (1, 2, 7, 8), kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
    "avg_ceil_pads_include": lambda: pool_case("AveragePool", (1, 2, 7, 8), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1),
    "avg_ceil_pads_exclude": lambda: pool_case("AveragePool", (1, 2, 6, 9), kernel_shape=[2, 3], strides=[2, 2], pads=[1, 1, 0, 1], ceil_mode=1),
    "avg_same_upper": lambda: pool_case("AveragePool", (1, 2, 7, 8), kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
    "avg_opset11": lambda: pool_case("AveragePool", (1, 3, 5, 5), opset=11, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    "max_k3s2p1": lambda: pool_case("MaxPool", (2, 3, 9, 10), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    "max_k2s2": lambda: pool_case("MaxPool", (1, 4, 6, 7), kernel_shape=[2, 2], strides=[2, 2]),
    "max_ceil": lambda: pool_case("MaxPool", (1, 4, 6, 7), kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
    "max_ceil_pads": lambda: pool_case("MaxPool", (1, 2, 8, 7), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
    "max_dilations": lambda: pool_case("MaxPool", (1, 2, 9, 9), kernel_shape=[2, 3], dilations=[2, 2], pads=[1, 1, 1, 1]),
    "max_asym_pads": lambda: pool_case("MaxPool", (1, 2, 5, 6), kernel_shape=[3, 3], pads=[0, 2, 1, 0]),
    "max_same_lower": lambda: pool_case("MaxPool", (1, 2, 7, 8), kernel_shape=[3, 2], strides=[2, 2], auto_pad="SAME_LOWER"),
    "max_1x1_input": lambda: pool_case("MaxPool", (1, 3, 1, 1), kernel_shape=[1, 1]),
    "reduce_mean_hw": lambda: reduce_case((2, 3, 4, 5), [2, 3]),
    "reduce_mean_neg_nokeep": lambda: reduce_case((2, 3, 4, 5), [-1], keepdims=0),
    "reduce_mean_all": lambda: reduce_case((2, 3, 4), None),
    "reduce_mean_all_nokeep": lambda: reduce_case((2, 3, 4), None, keepdims=0),
    "reduce_mean_op18_input": lambda: reduce_case((2, 3, 4, 5), [2, 3], opset=18),
    "reduce_mean_op18_nokeep": lambda: reduce_case((2, 3, 4, 5), [1, -1], keepdims=0, opset=18),
    "reduce_mean_op18_no_axes": lambda: reduce_case((3, 4), None, opset=18),
    "softmax_op13_default": lambda: softmax_case((2, 3, 7), 13),
    "softmax_op13_axis1": lambda: softmax_case((2, 3, 4, 5), 13, axis=1),
    "softmax_op11_default": lambda: softmax_case((2, 3, 4), 11),
    "softmax_op11_axis2": lambda: softmax_case((2, 3, 4, 5), 11, axis=2),
    "softmax_op11_axis_neg": lambda: softmax_case((2, 3, 4), 11, axis=-1),
    "softmax_op21_2d": lambda: softmax_case((4, 1000), 21),
}


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("case", sorted(POOL_CASES))
def test_pool_reduce_softmax(case, isa):
    model, feeds = POOL_CASES[case]()
    check(model, feeds, isa)


# ---------------------------------------------------------------------------
# Gemm and MatMul

def gemm_case(m, k, n, trans_a=0, trans_b=0, alpha=1.0, beta=1.0, c_shape="n", const_b=True, opset=13):
    a = rand(*((k, m) if trans_a else (m, k)), seed=7)
    b = rand(*((n, k) if trans_b else (k, n)), seed=8)
    c = None if c_shape is None else rand(*{"n": (n,), "1n": (1, n), "mn": (m, n), "m1": (m, 1),
                                            "scalar": (), "1": (1,)}[c_shape], seed=9)
    inputs = {"a": (FLOAT, list(a.shape))}
    feeds = {"a": a}
    inits = {}
    if const_b:
        inits["b"] = b
    else:
        inputs["b"] = (FLOAT, list(b.shape))
        feeds["b"] = b
    ins = ["a", "b"]
    if c is not None:
        inits["c"] = c
        ins.append("c")
    node = helper.make_node("Gemm", ins, ["y"], transA=trans_a, transB=trans_b, alpha=alpha, beta=beta)
    return make_model([node], inputs, {"y": (FLOAT, None)}, inits, opset), feeds


def matmul_case(sa, sb, const_b=False):
    a, b = rand(*sa, seed=10), rand(*sb, seed=11)
    inputs = {"a": (FLOAT, list(sa))}
    feeds = {"a": a}
    inits = {}
    if const_b:
        inits["b"] = b
    else:
        inputs["b"] = (FLOAT, list(sb))
        feeds["b"] = b
    node = helper.make_node("MatMul", ["a", "b"], ["y"])
    return make_model([node], inputs, {"y": (FLOAT, None)}, inits), feeds


GEMM_CASES = {}
for _const in (True, False):
    _tag = "constB" if _const else "dynB"
    for _ta in (0, 1):
        for _tb in (0, 1):
            GEMM_CASES[f"gemm_{_tag}_tA{_ta}_tB{_tb}"] = (
                lambda c=_const, ta=_ta, tb=_tb: gemm_case(5, 19, 13, ta, tb, const_b=c))
    for _cs in ("n", "1n", "mn", "m1", "scalar", "1", None):
        GEMM_CASES[f"gemm_{_tag}_C_{_cs}"] = (
            lambda c=_const, cs=_cs: gemm_case(6, 10, 7, c_shape=cs, alpha=0.7, beta=1.3, const_b=c))
    GEMM_CASES[f"gemm_{_tag}_alpha_beta_tAB"] = (
        lambda c=_const: gemm_case(3, 33, 17, 1, 1, alpha=-2.0, beta=0.5, c_shape="mn", const_b=c))
    GEMM_CASES[f"gemm_{_tag}_m1"] = lambda c=_const: gemm_case(1, 64, 10, 0, 1, const_b=c)
    GEMM_CASES[f"gemm_{_tag}_big"] = lambda c=_const: gemm_case(33, 70, 45, 0, 1, const_b=c)
GEMM_CASES["gemm_opset11"] = lambda: gemm_case(4, 8, 6, 0, 1, opset=11)
GEMM_CASES.update({
    "matmul_2d_const": lambda: matmul_case((7, 20), (20, 9), const_b=True),
    "matmul_3d_const": lambda: matmul_case((2, 5, 16), (16, 17), const_b=True),
    "matmul_4d_const": lambda: matmul_case((2, 3, 4, 5), (5, 6), const_b=True),
    "matmul_1d_a_const": lambda: matmul_case((12,), (12, 5), const_b=True),
    "matmul_2d": lambda: matmul_case((7, 20), (20, 9)),
    "matmul_batched": lambda: matmul_case((2, 4, 3), (2, 3, 5)),
    "matmul_broadcast": lambda: matmul_case((2, 1, 3, 4), (3, 4, 5)),
    "matmul_broadcast_b": lambda: matmul_case((3, 4), (2, 4, 5)),
    "matmul_broadcast_both": lambda: matmul_case((2, 1, 3, 4), (1, 3, 4, 2)),
    "matmul_1d_a": lambda: matmul_case((4,), (2, 4, 5)),
    "matmul_1d_b": lambda: matmul_case((2, 3, 4), (4,)),
    "matmul_1d_both": lambda: matmul_case((6,), (6,)),
    "matmul_3d_const_b": lambda: matmul_case((2, 3, 4), (2, 4, 5), const_b=True),
})


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("case", sorted(GEMM_CASES))
def test_gemm_matmul(case, isa):
    model, feeds = GEMM_CASES[case]()
    check(model, feeds, isa)


# ---------------------------------------------------------------------------
# Shape and data-movement ops

def shape_op_case(op, shape, inits=None, extra_inputs=(), opset=13, dtype=FLOAT, **attrs):
    node = helper.make_node(op, ["x", *extra_inputs], ["y"], **attrs)
    x = rand(*shape, seed=12, lo=-5, hi=5)
    if dtype == INT64:
        x = np.random.default_rng(12).integers(-100, 100, shape).astype(np.int64)
    model = make_model([node], {"x": (dtype, list(shape))}, {"y": (dtype, None)}, inits, opset)
    return model, {"x": x}


def i64(*v):
    return np.array(v, np.int64)


def concat_case(shapes, axis):
    names = [f"x{i}" for i in range(len(shapes))]
    node = helper.make_node("Concat", names, ["y"], axis=axis)
    model = make_model([node], {n: (FLOAT, list(s)) for n, s in zip(names, shapes)}, {"y": (FLOAT, None)})
    return model, {n: rand(*s, seed=i) for i, (n, s) in enumerate(zip(names, shapes))}


def slice_case(shape, starts, ends, axes=None, steps=None, opset=13):
    if opset < 10:
        attrs = {"starts": starts, "ends": ends}
        if axes is not None:
            attrs["axes"] = axes
        return shape_op_case("Slice", shape, opset=opset, **attrs)
    inits = {"starts": i64(*starts), "ends": i64(*ends)}
    extra = ["starts", "ends"]
    if axes is not None or steps is not None:
        inits["axes"] = i64(*(axes if axes is not None else range(len(starts))))
        extra.append("axes")
    if steps is not None:
        inits["steps"] = i64(*steps)
        extra.append("steps")
    return shape_op_case("Slice", shape, inits, extra, opset=opset)


def pad_case(shape, pads, mode, value=None, opset=13, axes=None):
    if opset < 11:
        attrs = {"pads": pads, "mode": mode}
        if value is not None:
            attrs["value"] = value
        return shape_op_case("Pad", shape, opset=opset, **attrs)
    inits = {"pads": i64(*pads)}
    extra = ["pads"]
    if value is not None or axes is not None:
        extra.append("cv" if value is not None else "")
        if value is not None:
            inits["cv"] = np.array(value, np.float32)
    if axes is not None:
        extra.append("axes")
        inits["axes"] = i64(*axes)
    return shape_op_case("Pad", shape, inits, extra, opset=opset, mode=mode)


def cast_case(to, src_dtype=FLOAT):
    x = rand(3, 7, seed=13, lo=-50, hi=50)
    if src_dtype == INT64:
        x = np.random.default_rng(13).integers(-1000, 1000, (3, 7)).astype(np.int64)
    node = helper.make_node("Cast", ["x"], ["y"], to=to)
    return make_model([node], {"x": (src_dtype, [3, 7])}, {"y": (to, None)}), {"x": x}


def bn_case(shape, eps=1e-5, opset=13):
    c = shape[1]
    rng = np.random.default_rng(14)
    inits = {"s": rng.uniform(0.5, 2, c).astype(np.float32), "b": rng.uniform(-1, 1, c).astype(np.float32),
             "m": rng.uniform(-1, 1, c).astype(np.float32), "v": rng.uniform(0.1, 2, c).astype(np.float32)}
    return shape_op_case("BatchNormalization", shape, inits, ["s", "b", "m", "v"], opset=opset, epsilon=eps)


SHAPE_CASES = {
    "flatten_axis1": lambda: shape_op_case("Flatten", (2, 3, 4, 5)),
    "flatten_axis0": lambda: shape_op_case("Flatten", (2, 3, 4), axis=0),
    "flatten_axis3": lambda: shape_op_case("Flatten", (2, 3, 4, 5), axis=3),
    "flatten_axis_neg": lambda: shape_op_case("Flatten", (2, 3, 4, 5), axis=-2),
    "reshape_0_-1": lambda: shape_op_case("Reshape", (2, 3, 4, 5), {"s": i64(0, -1)}, ["s"]),
    "reshape_0_mid": lambda: shape_op_case("Reshape", (2, 3, 4, 5), {"s": i64(2, 0, -1, 5)}, ["s"]),
    "reshape_flat": lambda: shape_op_case("Reshape", (2, 3, 4), {"s": i64(-1)}, ["s"]),
    "reshape_int64": lambda: shape_op_case("Reshape", (2, 6), {"s": i64(3, 4)}, ["s"], dtype=INT64),
    "transpose_nchw_nhwc": lambda: shape_op_case("Transpose", (2, 3, 4, 5), perm=[0, 2, 3, 1]),
    "transpose_default": lambda: shape_op_case("Transpose", (2, 3, 4)),
    "transpose_2d": lambda: shape_op_case("Transpose", (5, 7), perm=[1, 0]),
    "concat_axis1": lambda: concat_case([(2, 3, 4), (2, 1, 4), (2, 5, 4)], 1),
    "concat_axis_neg": lambda: concat_case([(2, 3), (2, 4)], -1),
    "concat_axis0": lambda: concat_case([(1, 3), (2, 3)], 0),
    "concat_empty_part": lambda: concat_case([(2, 0), (2, 4)], 1),
    "identity": lambda: shape_op_case("Identity", (3, 4)),
    "dropout_op13": lambda: shape_op_case("Dropout", (3, 4), {"r": np.array(0.5, np.float32)}, ["r"]),
    "dropout_op11": lambda: shape_op_case("Dropout", (3, 4), opset=11, ratio=0.3),
    "cast_f32_i64": lambda: cast_case(INT64),
    "cast_f32_i32": lambda: cast_case(TensorProto.INT32),
    "cast_i64_f32": lambda: cast_case(FLOAT, INT64),
    "cast_f32_f64": lambda: cast_case(TensorProto.DOUBLE),
    "cast_f32_bool": lambda: cast_case(TensorProto.BOOL),
    "cast_f32_f32": lambda: cast_case(FLOAT),
    "slice_basic": lambda: slice_case((5, 6, 7), [1, 2], [4, 5], [0, 2]),
    "slice_neg_start": lambda: slice_case((5, 6, 7), [-3], [10**10], [1]),
    "slice_steps": lambda: slice_case((9, 10), [1, 0], [8, 10], [0, 1], [2, 3]),
    "slice_neg_step": lambda: slice_case((6, 7), [-1], [-(2**63)], [1], [-1]),
    "slice_neg_step2": lambda: slice_case((6, 7), [4, 5], [0, 1], [0, 1], [-2, -3]),
    "slice_no_axes": lambda: slice_case((4, 5), [1, 1], [3, -1]),
    "slice_empty": lambda: slice_case((4, 5), [3], [1], [0]),
    "slice_neg_axis": lambda: slice_case((4, 5, 6), [1], [4], [-1]),
    "slice_op9_attrs": lambda: slice_case((5, 6), [1, -4], [3, 1000], [0, 1], opset=9),
    "slice_op11": lambda: slice_case((5, 6), [0], [3], [1], [1], opset=11),
    "squeeze_op11_attr": lambda: shape_op_case("Squeeze", (1, 3, 1, 4), opset=11, axes=[0, 2]),
    "squeeze_op11_neg_attr": lambda: shape_op_case("Squeeze", (3, 1, 4, 1), opset=11, axes=[-1]),
    "squeeze_op13_input": lambda: shape_op_case("Squeeze", (1, 3, 1, 4), {"a": i64(2)}, ["a"]),
    "squeeze_no_axes": lambda: shape_op_case("Squeeze", (1, 3, 1, 4, 1)),
    "unsqueeze_op11_attr": lambda: shape_op_case("Unsqueeze", (3, 4), opset=11, axes=[0, 3]),
    "unsqueeze_op13_input": lambda: shape_op_case("Unsqueeze", (3, 4), {"a": i64(-1, 1)}, ["a"]),
    "pad_constant_op11": lambda: pad_case((2, 3, 4), [0, 1, 2, 0, 2, 1], "constant"),
    "pad_constant_value_op13": lambda: pad_case((2, 3, 4), [1, 1, 0, 1, 0, 2], "constant", value=2.5),
    "pad_reflect": lambda: pad_case((1, 2, 4, 5), [0, 0, 2, 3, 0, 0, 3, 4], "reflect"),
    "pad_edge": lambda: pad_case((1, 2, 4, 5), [0, 0, 3, 1, 0, 0, 2, 6], "edge"),
    "pad_negative_crop": lambda: pad_case((3, 6), [1, -2, 0, -1], "constant"),
    "pad_op10_attr": lambda: pad_case((2, 3), [1, 2, 0, 1], "constant", value=-1.0, opset=10),
    "pad_op10_attr_reflect": lambda: pad_case((3, 4), [1, 2, 1, 2], "reflect", opset=10),
    "pad_op18_axes": lambda: pad_case((2, 3, 4), [1, 2, 3, 0], "constant", axes=[0, 2], opset=18),
    "pad_op21_edge": lambda: pad_case((2, 3, 4), [0, 1, 1, 0, 2, 1], "edge", opset=21),
    "batchnorm_4d": lambda: bn_case((2, 3, 4, 5)),
    "batchnorm_2d": lambda: bn_case((4, 6), eps=1e-3),
    "batchnorm_3d": lambda: bn_case((2, 5, 7)),
    "batchnorm_op9": lambda: bn_case((1, 3, 2, 2), opset=9),
    "batchnorm_empty_batch": lambda: bn_case((0, 3)),
    "relu_after_empty_concat": lambda: concat_case([(0, 3), (0, 3)], 0),
}


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("case", sorted(SHAPE_CASES))
def test_shape_ops(case, isa):
    model, feeds = SHAPE_CASES[case]()
    check(model, feeds, isa)


def test_gather():
    """Gather with constant and run-time indices, negative indices, axis 1."""
    x = rand(4, 5, 3, seed=15)
    idx = i64(0, -1, 2)
    for axis, inits, inputs, feeds in (
        (0, {"i": idx}, {}, {}),
        (1, {"i": i64(-2)}, {}, {}),
        (1, {}, {"i": (INT64, [3])}, {"i": idx}),
    ):
        node = helper.make_node("Gather", ["x", "i"], ["y"], axis=axis)
        model = make_model([node], {"x": (FLOAT, [4, 5, 3]), **inputs}, {"y": (FLOAT, None)}, inits)
        check(model, {"x": x, **feeds}, ISAS[0])


# ---------------------------------------------------------------------------
# torch.onnx.export-style shape chains (must fold; must follow the batch size)

def torch_flatten_chain(opset=13):
    """x -> Shape -> Gather(0) -> Unsqueeze -> Concat([-1]) -> Reshape(x), as torch emits x.view(x.size(0), -1)."""
    if opset >= 13:
        unsq = helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"])
    else:
        unsq = helper.make_node("Unsqueeze", ["n"], ["n1"], axes=[0])
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(i64(0).reshape(()))),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        unsq,
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["flat"]),
        helper.make_node("Relu", ["flat"], ["y"]),
    ]
    inits = {"minus1": i64(-1)}
    if opset >= 13:
        inits["ax0"] = i64(0)
    return make_model(nodes, {"x": (FLOAT, ["N", 3, 4, 5])}, {"y": (FLOAT, None)}, inits, opset)


@pytest.mark.parametrize("opset", [11, 13])
def test_torch_shape_chain_folds(opset):
    model = torch_flatten_chain(opset)
    sess = sparsedge.InferenceSession(model.SerializeToString())
    for n in (2, 5, 2):  # plans are per input shape; going back must reuse the first
        x = rand(n, 3, 4, 5, seed=n)
        (got,) = sess.run(None, {"x": x})
        assert_close(got, reference(model, {"x": x})[0], f"batch {n}")


def test_shape_chain_folds_at_load_for_constant_input():
    """A chain whose data is an initializer is folded away when the model loads."""
    nodes = [
        helper.make_node("Shape", ["w"], ["s"]),
        helper.make_node("Gather", ["s", "one"], ["c"], axis=0),
        helper.make_node("Unsqueeze", ["c", "ax0"], ["c1"]),
        helper.make_node("Concat", ["minus1", "c1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    inits = {"w": rand(2, 6), "one": i64(1).reshape(()), "ax0": i64(0), "minus1": i64(-1)}
    model = make_model(nodes, {"x": (FLOAT, [3, 4, 6])}, {"y": (FLOAT, None)}, inits)
    sess = check(model, {"x": rand(3, 4, 6)}, ISAS[0])
    assert [n["op_type"] for n in sess.get_nodes()] == ["Reshape"]


def test_dynamic_batch_reuses_plans():
    """Ops keep shape-dependent state; alternating input shapes must not reuse stale state."""
    nodes = [
        helper.make_node("Gemm", ["a", "b"], ["g"]),
        helper.make_node("Softmax", ["g"], ["y"], axis=0),
    ]
    model = make_model(nodes, {"a": (FLOAT, ["M", 6]), "b": (FLOAT, [6, 4])}, {"y": (FLOAT, None)})
    sess = sparsedge.InferenceSession(model.SerializeToString())
    b = rand(6, 4, seed=1)
    for m in (4, 2, 7, 4, 2):
        feeds = {"a": rand(m, 6, seed=m), "b": b}
        assert_close(sess.run(None, feeds)[0], reference(model, feeds)[0], f"M={m}")


# ---------------------------------------------------------------------------
# Fusions: the pattern must collapse to one node and still match

def conv_then(act_nodes, inits_extra=None, bn=False, opset=13, group=1, c=6, oc=6):
    model, feeds = conv_case(1, c, 9, 9, oc, 3, group=group, pads=[1, 1, 1, 1], opset=opset)
    g = model.graph
    g.node[0].output[0] = "conv"
    prev = "conv"
    if bn:
        rng = np.random.default_rng(16)
        for name, lo, hi in (("bs", 0.5, 2), ("bb", -1, 1), ("bm", -1, 1), ("bv", 0.1, 2)):
            g.initializer.append(numpy_helper.from_array(rng.uniform(lo, hi, oc).astype(np.float32), name))
        g.node.append(helper.make_node("BatchNormalization", [prev, "bs", "bb", "bm", "bv"], ["bn"]))
        prev = "bn"
    for i, (op, extra, attrs) in enumerate(act_nodes):
        out = "y" if i == len(act_nodes) - 1 else f"a{i}"
        g.node.append(helper.make_node(op, [prev, *extra], [out], **attrs))
        prev = out
    if not act_nodes:
        g.node[-1].output[0] = "y"
    for name, v in (inits_extra or {}).items():
        g.initializer.append(numpy_helper.from_array(v, name))
    return model, feeds


FUSION_CASES = {
    "conv_relu": lambda: conv_then([("Relu", [], {})]),
    "conv_clip06_op11": lambda: conv_then([("Clip", ["lo", "hi"], {})],
                                          {"lo": np.float32(0), "hi": np.float32(6)}, opset=11),
    "conv_clip06_op10_attr": lambda: conv_then([("Clip", [], {"min": 0.0, "max": 6.0})], opset=10),
    "conv_bn": lambda: conv_then([], bn=True),
    "conv_bn_relu": lambda: conv_then([("Relu", [], {})], bn=True),
    "dwconv_bn_clip": lambda: conv_then([("Clip", ["lo", "hi"], {})], {"lo": np.float32(0), "hi": np.float32(6)},
                                        bn=True, group=6),
}


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("case", sorted(FUSION_CASES))
def test_conv_fusions(case, isa):
    model, feeds = FUSION_CASES[case]()
    # scale the input so the clamps bite on both sides
    feeds = {"x": feeds["x"] * 8}
    sess = check(model, feeds, isa)
    assert [n["op_type"] for n in sess.get_nodes()] == ["Conv"]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("c_shape", ["n", "mn"])
def test_gemm_relu_fusion(isa, c_shape):
    model, feeds = gemm_case(5, 12, 9, 0, 1, c_shape=c_shape)
    model.graph.node[0].output[0] = "g"
    model.graph.node.append(helper.make_node("Relu", ["g"], ["y"]))
    sess = check(model, feeds, isa)
    assert [n["op_type"] for n in sess.get_nodes()] == ["Gemm"]


@pytest.mark.parametrize("isa", ISAS)
def test_matmul_add_relu_chain(isa):
    model, feeds = matmul_case((3, 16), (16, 8), const_b=True)
    g = model.graph
    g.node[0].output[0] = "mm"
    g.initializer.append(numpy_helper.from_array(rand(8, seed=3), "bias"))
    g.node.append(helper.make_node("Add", ["mm", "bias"], ["z"]))
    g.node.append(helper.make_node("Relu", ["z"], ["y"]))
    check(model, feeds, isa)


def test_conv_output_also_graph_output_not_fused():
    """A Conv whose output is itself a graph output keeps it unclamped."""
    model, feeds = conv_then([("Relu", [], {})])
    model.graph.output.append(helper.make_tensor_value_info("conv", FLOAT, None))
    check(model, {"x": feeds["x"] * 4}, ISAS[0])


# ---------------------------------------------------------------------------
# Threads and input immutability

def _threaded_models():
    conv, conv_feeds = conv_case(1, 16, 33, 31, 24, 3, pads=[1, 1, 1, 1], seed=20)
    dw, dw_feeds = conv_case(2, 32, 29, 30, 32, 3, group=32, strides=[2, 2], pads=[1, 1, 1, 1], seed=21)
    pw, pw_feeds = conv_case(1, 40, 17, 15, 56, 1, seed=22)
    gemm, gemm_feeds = gemm_case(67, 130, 90, 0, 1)
    return [(conv, conv_feeds), (dw, dw_feeds), (pw, pw_feeds), (gemm, gemm_feeds)]


@pytest.mark.parametrize("isa", ISAS)
def test_two_threads_match_one(isa):
    for model, feeds in _threaded_models():
        data = model.SerializeToString()
        (one,) = sparsedge.InferenceSession(data, threads=1, isa=isa).run(None, feeds)
        s2 = sparsedge.InferenceSession(data, threads=2, isa=isa)
        assert s2.threads == 2
        (two,) = s2.run(None, feeds)
        assert one.shape == two.shape
        assert float(np.abs(one - two).max()) <= 1e-6 * max(1.0, float(np.abs(one).max()))
        assert_close(two, reference(model, feeds)[0], "threads=2")


def test_run_does_not_modify_inputs():
    cases = [m for m in _threaded_models()]
    cases.append(SHAPE_CASES["reshape_0_-1"]())
    cases.append(ELEMENTWISE_CASES["add_nchw_nc11"]())
    cases.append(SHAPE_CASES["identity"]())
    cases.append(FUSION_CASES["conv_bn_relu"]())
    for model, feeds in cases:
        before = {k: v.copy() for k, v in feeds.items()}
        sess = sparsedge.InferenceSession(model.SerializeToString(), threads=2)
        first = sess.run(None, feeds)
        second = sess.run(None, feeds)
        for k in feeds:
            np.testing.assert_array_equal(feeds[k], before[k])
        for a, b in zip(first, second):  # results are copies, not views of the arena
            np.testing.assert_array_equal(a, b)


def test_outputs_are_independent_copies():
    model, feeds = unary_model("Relu", (3, 4))
    sess = sparsedge.InferenceSession(model.SerializeToString())
    (y1,) = sess.run(None, feeds)
    keep = y1.copy()
    sess.run(None, {"x": -feeds["x"]})
    np.testing.assert_array_equal(y1, keep)


def test_non_contiguous_input():
    model, _ = unary_model("Sigmoid", (4, 3))
    x = rand(3, 4).T  # Fortran-ordered view
    check(model, {"x": x}, ISAS[0])


def test_isas_listed():
    assert "scalar" in ISAS
    assert "avx2" in ISAS, "this machine is expected to have AVX2"


def test_operator_list_covers_tested_ops():
    ops = set(sparsedge.get_operators())
    for op in ("Conv", "Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Add", "Sub", "Mul", "Div",
               "GlobalAveragePool", "AveragePool", "MaxPool", "ReduceMean", "Gemm", "MatMul", "Flatten",
               "Reshape", "Transpose", "Concat", "Softmax", "Pad", "BatchNormalization", "Identity",
               "Dropout", "Shape", "Gather", "Unsqueeze", "Cast", "Slice", "Squeeze"):
        assert op in ops, op


@pytest.mark.parametrize("case", sorted(FUSION_CASES) + ["torch_chain", "gemm_relu"])
def test_unoptimized_graph_matches(case):
    """optimize=False runs every node as written (no folding or fusion) and must agree too."""
    if case == "torch_chain":
        model, feeds = torch_flatten_chain(13), {"x": rand(2, 3, 4, 5)}
    elif case == "gemm_relu":
        model, feeds = gemm_case(5, 12, 9, 0, 1)
        model.graph.node[0].output[0] = "g"
        model.graph.node.append(helper.make_node("Relu", ["g"], ["y"]))
    else:
        model, feeds = FUSION_CASES[case]()
    sess = sparsedge.InferenceSession(model.SerializeToString(), optimize=False)
    assert len(sess.get_nodes()) == len(model.graph.node)
    for got, ref in zip(sess.run(None, feeds), reference(model, feeds)):
        assert_close(got, ref, case)


@pytest.mark.parametrize("isa", ISAS)
def test_dynamic_spatial_sizes(isa):
    """SAME pads depend on the input size: alternate sizes on one session, two threads."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], group=8, strides=[2, 2], auto_pad="SAME_UPPER"),
             helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], auto_pad="SAME_LOWER"),
             helper.make_node("GlobalAveragePool", ["p"], ["y"])]
    model = make_model(nodes, {"x": (FLOAT, [1, 8, "H", "W"])}, {"y": (FLOAT, None), "c": (FLOAT, None)},
                       {"w": rand(8, 1, 3, 3, seed=1)})
    sess = sparsedge.InferenceSession(model.SerializeToString(), isa=isa, threads=2)
    for hw in [(9, 9), (16, 17), (1, 1), (9, 9), (16, 17)]:
        feeds = {"x": rand(1, 8, *hw, seed=hw[1])}
        for got, ref in zip(sess.run(None, feeds), reference(model, feeds)):
            assert_close(got, ref, f"{hw}")

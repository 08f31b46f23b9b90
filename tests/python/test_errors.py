"""Bad models and bad calls: each raises its own exception class, with a message
naming the problem, and leaves the process (and the session) usable.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import sparsedge
from sparsedge import (
    InvalidArgumentError,
    InvalidModelError,
    ModelFileNotFoundError,
    SparsedgeError,
    UnsupportedError,
)

FLOAT = TensorProto.FLOAT


def make_model(nodes, inputs, outputs, inits=None, opset=13, extra_opsets=()):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, t, s) for n, (t, s) in inputs.items()],
        [helper.make_tensor_value_info(n, t, s) for n, (t, s) in outputs.items()],
        initializer=[numpy_helper.from_array(np.asarray(v), n) for n, v in (inits or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), *extra_opsets])
    model.ir_version = 8
    return model


def conv_model():
    w = np.random.default_rng(0).uniform(-1, 1, (4, 3, 3, 3)).astype(np.float32)
    b = np.random.default_rng(1).uniform(-1, 1, (4,)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"])]
    return make_model(nodes, {"x": (FLOAT, [1, 3, 8, 8])}, {"y": (FLOAT, None)}, {"W": w, "B": b})


X = np.random.default_rng(2).uniform(-1, 1, (1, 3, 8, 8)).astype(np.float32)


@pytest.fixture(scope="module")
def session():
    return sparsedge.InferenceSession(conv_model().SerializeToString())


def still_alive(sess=None):
    """The process, and the session if given, still work after an error."""
    sess = sess or sparsedge.InferenceSession(conv_model().SerializeToString())
    (y,) = sess.run(None, {"x": X})
    assert y.shape == (1, 4, 8, 8) and np.isfinite(y).all()


def raises(exc_class, fragment, fn, *args, **kwargs):
    with pytest.raises(exc_class) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, SparsedgeError)
    assert fragment.lower() in str(info.value).lower(), str(info.value)
    return info.value


# ---------------------------------------------------------------------------
# Malformed model files

def test_truncated_file(tmp_path):
    data = conv_model().SerializeToString()
    path = tmp_path / "half.onnx"
    path.write_bytes(data[: len(data) // 2])
    err = raises(InvalidModelError, "truncated", sparsedge.InferenceSession, str(path))
    assert "half.onnx" in str(err)
    still_alive()


def test_truncated_bytes():
    data = conv_model().SerializeToString()
    raises(InvalidModelError, "truncated", sparsedge.InferenceSession, data[: len(data) // 2])
    still_alive()


def test_truncated_at_every_tenth_byte():
    """No cut point crashes: every prefix is an InvalidModelError (or, rarely, loads)."""
    data = conv_model().SerializeToString()
    for cut in range(1, len(data), max(1, len(data) // 40)):
        try:
            sparsedge.InferenceSession(data[:cut])
        except InvalidModelError:
            pass
    still_alive()


def test_random_bytes():
    data = np.random.default_rng(0).bytes(1000)
    raises(InvalidModelError, "malformed ONNX model", sparsedge.InferenceSession, data)
    for seed in range(1, 30):
        with pytest.raises(InvalidModelError):
            sparsedge.InferenceSession(np.random.default_rng(seed).bytes(257))
    still_alive()


def test_empty_file(tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    raises(InvalidModelError, "empty", sparsedge.InferenceSession, str(path))
    raises(InvalidModelError, "empty", sparsedge.InferenceSession, b"")
    still_alive()


def test_tensor_proto_is_not_a_model():
    data = numpy_helper.from_array(np.ones((2, 3), np.float32), "t").SerializeToString()
    raises(InvalidModelError, "not an ONNX ModelProto", sparsedge.InferenceSession, data)
    still_alive()


def test_graph_proto_is_not_a_model():
    data = conv_model().graph.SerializeToString()
    raises(InvalidModelError, "not an ONNX ModelProto", sparsedge.InferenceSession, data)
    still_alive()


def test_model_without_graph():
    model = onnx.ModelProto(ir_version=8)
    model.opset_import.append(helper.make_opsetid("", 13))
    raises(InvalidModelError, "no graph", sparsedge.InferenceSession, model.SerializeToString())


def test_graph_with_cycle():
    nodes = [helper.make_node("Relu", ["b"], ["a"], name="r"), helper.make_node("Add", ["x", "a"], ["b"], name="s")]
    model = make_model(nodes, {"x": (FLOAT, [2])}, {"b": (FLOAT, None)})
    raises(InvalidModelError, "cycle", sparsedge.InferenceSession, model.SerializeToString())
    still_alive()


def test_undefined_node_input():
    model = make_model([helper.make_node("Relu", ["nowhere"], ["y"])], {"x": (FLOAT, [2])}, {"y": (FLOAT, None)})
    raises(InvalidModelError, "'nowhere'", sparsedge.InferenceSession, model.SerializeToString())


def test_opset_too_old():
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": (FLOAT, [2])}, {"y": (FLOAT, None)}, opset=6)
    raises(UnsupportedError, "opset 6", sparsedge.InferenceSession, model.SerializeToString())


# ---------------------------------------------------------------------------
# External data

def save_external(tmp_path, model, name="m.onnx"):
    path = tmp_path / name
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    assert (tmp_path / "weights.bin").exists()
    return path


def test_external_data_missing_file(tmp_path):
    path = save_external(tmp_path, conv_model())
    os.remove(tmp_path / "weights.bin")
    err = raises(ModelFileNotFoundError, "weights.bin", sparsedge.InferenceSession, str(path))
    assert "not found" in str(err)
    still_alive()


def test_external_data_too_short(tmp_path):
    path = save_external(tmp_path, conv_model())
    weights = tmp_path / "weights.bin"
    weights.write_bytes(weights.read_bytes()[:20])
    raises(InvalidModelError, "too short", sparsedge.InferenceSession, str(path))
    still_alive()


def test_external_data_from_bytes_is_rejected(tmp_path):
    path = save_external(tmp_path, conv_model())
    raises(InvalidArgumentError, "load it from its path", sparsedge.InferenceSession, path.read_bytes())


def test_external_data_outside_model_folder(tmp_path):
    model = conv_model()
    onnx.external_data_helper.convert_model_to_external_data(model, location="../escape.bin", size_threshold=0)
    data = model.SerializeToString()  # the tensors still hold their data; only location matters here
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    raises(InvalidModelError, "leaves the model's folder", sparsedge.InferenceSession, str(path))


def test_external_data_loads_and_matches_onnxruntime(tmp_path):
    model = conv_model()
    path = save_external(tmp_path, model)
    sess = sparsedge.InferenceSession(str(path))
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": X})[0]
    (got,) = sess.run(None, {"x": X})
    assert np.abs(got - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())


def test_external_data_is_mapped_not_copied(tmp_path):
    """Add reads its constant operand in place: a write to the weights file
    shows through the shared mapping (Linux page cache), which a copy would not."""
    c = np.arange(1, 17, dtype=np.float32).reshape(4, 4)
    model = make_model([helper.make_node("Add", ["x", "c"], ["y"])], {"x": (FLOAT, [4, 4])}, {"y": (FLOAT, None)},
                       {"c": c})
    path = save_external(tmp_path, model)
    sess = sparsedge.InferenceSession(str(path))
    x = np.zeros((4, 4), np.float32)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], c)
    with open(tmp_path / "weights.bin", "r+b") as f:  # same inode, so the mapping sees it
        f.write((c * 10).tobytes())
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], c * 10)


# ---------------------------------------------------------------------------
# Bad calls to run()

def test_wrong_input_name(session):
    err = raises(InvalidArgumentError, "unknown input 'z'", session.run, None, {"z": X})
    assert "'x'" in str(err)  # lists the real inputs
    still_alive(session)


def test_wrong_rank(session):
    raises(InvalidArgumentError, "has shape [3, 8, 8]", session.run, None, {"x": X[0]})
    still_alive(session)


def test_wrong_shape(session):
    raises(InvalidArgumentError, "has shape [1, 3, 8, 9]", session.run, None, {"x": np.zeros((1, 3, 8, 9), np.float32)})
    still_alive(session)


def test_wrong_dtype(session):
    err = raises(InvalidArgumentError, "float64", session.run, None, {"x": X.astype(np.float64)})
    assert "float32" in str(err)
    still_alive(session)


def test_unsupported_numpy_dtype(session):
    raises(InvalidArgumentError, "unsupported dtype", session.run, None, {"x": np.array(["a"])})
    raises(InvalidArgumentError, "unsupported dtype", session.run, None, {"x": object()})
    still_alive(session)


def test_missing_input(session):
    raises(InvalidArgumentError, "missing input 'x'", session.run, None, {})
    still_alive(session)


def test_unknown_output_name(session):
    err = raises(InvalidArgumentError, "unknown output 'nope'", session.run, ["nope"], {"x": X})
    assert "'y'" in str(err)
    still_alive(session)


def test_feed_not_a_dict(session):
    raises(InvalidArgumentError, "input_feed must be a dict", session.run, None, [X])
    still_alive(session)


def test_shape_error_at_planning():
    """A free dimension that the graph cannot take is reported when planned, not crashed on."""
    w = np.ones((4, 3, 3, 3), np.float32)
    model = make_model([helper.make_node("Conv", ["x", "W"], ["y"])], {"x": (FLOAT, ["N", "C", "H", "W"])},
                       {"y": (FLOAT, None)}, {"W": w})
    sess = sparsedge.InferenceSession(model.SerializeToString())
    raises(InvalidArgumentError, "channels", sess.run, None, {"x": np.zeros((1, 5, 8, 8), np.float32)})
    raises(InvalidArgumentError, "smaller than the kernel", sess.run, None, {"x": np.zeros((1, 3, 2, 2), np.float32)})
    assert sess.run(None, {"x": np.zeros((1, 3, 4, 4), np.float32)})[0].shape == (1, 4, 2, 2)


# ---------------------------------------------------------------------------
# Unsupported content

def test_unsupported_op_lstm():
    w = np.zeros((1, 8, 3), np.float32)
    model = make_model([helper.make_node("LSTM", ["x", "W", "W"], ["y"], hidden_size=2)],
                       {"x": (FLOAT, [1, 1, 3])}, {"y": (FLOAT, None)}, {"W": w})
    raises(UnsupportedError, "unsupported operator 'LSTM'", sparsedge.InferenceSession, model.SerializeToString())
    still_alive()


def test_made_up_op():
    model = make_model([helper.make_node("FrobnicateTensor", ["x"], ["y"])], {"x": (FLOAT, [2])}, {"y": (FLOAT, None)})
    raises(UnsupportedError, "'FrobnicateTensor'", sparsedge.InferenceSession, model.SerializeToString())


def test_op_from_unknown_domain():
    model = make_model([helper.make_node("Relu", ["x"], ["y"], domain="com.example")], {"x": (FLOAT, [2])},
                       {"y": (FLOAT, None)}, extra_opsets=[helper.make_opsetid("com.example", 1)])
    raises(UnsupportedError, "domain 'com.example'", sparsedge.InferenceSession, model.SerializeToString())


def test_op_from_unimported_domain():
    model = make_model([helper.make_node("Relu", ["x"], ["y"], domain="com.example")], {"x": (FLOAT, [2])},
                       {"y": (FLOAT, None)})
    raises(InvalidModelError, "does not import", sparsedge.InferenceSession, model.SerializeToString())


def test_non_constant_conv_weight():
    model = make_model([helper.make_node("Conv", ["x", "w"], ["y"])],
                       {"x": (FLOAT, [1, 3, 8, 8]), "w": (FLOAT, [4, 3, 3, 3])}, {"y": (FLOAT, None)})
    raises(UnsupportedError, "W must be a constant", sparsedge.InferenceSession, model.SerializeToString())
    still_alive()


def test_control_flow_subgraph():
    then = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "then", [],
                             [helper.make_tensor_value_info("t", FLOAT, None)])
    node = helper.make_node("If", ["cond"], ["y"], then_branch=then, else_branch=then)
    model = make_model([node], {"cond": (TensorProto.BOOL, []), "x": (FLOAT, [2])}, {"y": (FLOAT, None)})
    raises(UnsupportedError, "If", sparsedge.InferenceSession, model.SerializeToString())


# ---------------------------------------------------------------------------
# Paths and options

def test_nonexistent_path(tmp_path):
    missing = tmp_path / "nope" / "model.onnx"
    err = raises(ModelFileNotFoundError, "not found", sparsedge.InferenceSession, str(missing))
    assert isinstance(err, FileNotFoundError)
    assert "model.onnx" in str(err)


def test_directory_path(tmp_path):
    raises(InvalidArgumentError, "is a directory", sparsedge.InferenceSession, str(tmp_path))


def test_threads_zero():
    data = conv_model().SerializeToString()
    raises(InvalidArgumentError, "threads", sparsedge.InferenceSession, data, threads=0)
    raises(InvalidArgumentError, "threads", sparsedge.InferenceSession, data, threads=-2)
    raises(InvalidArgumentError, "threads", sparsedge.InferenceSession, data, threads=1.5)
    still_alive()


def test_unknown_isa():
    data = conv_model().SerializeToString()
    raises(InvalidArgumentError, "unknown ISA 'pentium'", sparsedge.InferenceSession, data, isa="pentium")


def test_wrong_model_argument_type():
    raises(InvalidArgumentError, "expected a path or bytes", sparsedge.InferenceSession, 42)


def test_model_path_loads(tmp_path):
    path = tmp_path / "conv.onnx"
    onnx.save_model(conv_model(), str(path))
    still_alive(sparsedge.InferenceSession(path))  # os.PathLike accepted


def test_pool_window_larger_than_input():
    model = make_model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[3, 3])],
                       {"x": (FLOAT, [1, 2, 1, 5])}, {"y": (FLOAT, None)})
    sess = sparsedge.InferenceSession(model.SerializeToString())
    raises(InvalidArgumentError, "smaller than the 3x3 window", sess.run, None,
           {"x": np.zeros((1, 2, 1, 5), np.float32)})


def test_gather_index_out_of_range():
    x = np.zeros((4, 5), np.float32)
    const = make_model([helper.make_node("Gather", ["x", "i"], ["y"])], {"x": (FLOAT, [4, 5])}, {"y": (FLOAT, None)},
                       {"i": np.array([0, 7], np.int64)})
    raises(InvalidArgumentError, "index 7 is out of range", sparsedge.InferenceSession(const.SerializeToString()).run,
           None, {"x": x})
    dyn = make_model([helper.make_node("Gather", ["x", "i"], ["y"])],
                     {"x": (FLOAT, [4, 5]), "i": (TensorProto.INT64, [2])}, {"y": (FLOAT, None)})
    sess = sparsedge.InferenceSession(dyn.SerializeToString())
    raises(InvalidArgumentError, "index -5 is out of range", sess.run, None, {"x": x, "i": np.array([0, -5], np.int64)})
    assert sess.run(None, {"x": x, "i": np.array([0, -4], np.int64)})[0].shape == (2, 5)


@pytest.mark.parametrize("op, to, what", [
    ("Cast", TensorProto.FLOAT16, "cast to float16"),
    ("Pad", TensorProto.INT64, "float32 only"),
])
def test_unsupported_types(op, to, what):
    if op == "Cast":
        model = make_model([helper.make_node("Cast", ["x"], ["y"], to=to)], {"x": (FLOAT, [3])}, {"y": (to, None)})
        raises(UnsupportedError, what, sparsedge.InferenceSession, model.SerializeToString())
    else:
        model = make_model([helper.make_node("Pad", ["x", "p"], ["y"])], {"x": (to, [3])}, {"y": (to, None)},
                           {"p": np.array([1, 1], np.int64)})
        sess = sparsedge.InferenceSession(model.SerializeToString())
        raises(UnsupportedError, what, sess.run, None, {"x": np.arange(3, dtype=np.int64)})

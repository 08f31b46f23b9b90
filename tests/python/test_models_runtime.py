"""Whole models on the sparsedge runtime, against onnxruntime on the same file.

Every model runs on each kernel ISA this CPU offers (scalar reference and the
SIMD path), and must match onnxruntime to max|diff| / max|ref| <= 1e-4.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import sparsedge
from conftest import fetch_or_skip
from sparsedge_export import assets
from sparsedge_export.models.preprocess import load_image_for

ISAS = sparsedge.get_available_isas()
TOLERANCE = 1e-4


def _ort(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _photo_inputs(model_name):
    images = []
    for name in ("chelsea.png", "coffee.png"):
        images.append(load_image_for(model_name, fetch_or_skip(assets.skimage_image, name)))
    return images


def _assert_matches(path, inputs, isa, threads=1):
    reference = _ort(path)
    session = sparsedge.InferenceSession(path, threads=threads, isa=isa)
    name = session.get_inputs()[0].name
    for x in inputs:
        ref = reference.run(None, {name: x})[0]
        out = session.run(None, {name: x})[0]
        assert out.shape == ref.shape
        err = np.abs(out - ref).max() / np.abs(ref).max()
        assert err <= TOLERANCE, f"{path.name} on {isa}: max|diff|/max|ref| = {err:.2e}"
        assert np.argmax(out) == np.argmax(ref)
    return session


@pytest.mark.parametrize("isa", ISAS)
def test_mobilenet_v1_matches_onnxruntime(mobilenet_v1_path, isa):
    inputs = _photo_inputs("mobilenet-v1")
    session = _assert_matches(mobilenet_v1_path, inputs, isa)
    kernels = {n["kernel"] for n in session.get_nodes()}
    # BatchNormalization folded, Relu fused: only convs, pooling and the classifier remain.
    assert not any(n["op_type"] in ("BatchNormalization", "Relu") for n in session.get_nodes())
    assert any(isa in k for k in kernels) or isa == "sse2"


def test_mobilenet_v1_width_and_threads(model_dir):
    from sparsedge_export.models import build_model

    path = build_model("mobilenet-v1", model_dir, filename="mobilenet-v1-0.25.onnx", width=0.25, resolution=160)
    x = np.random.default_rng(1).uniform(-1, 1, (1, 3, 160, 160)).astype(np.float32)
    _assert_matches(path, [x], None)
    one = sparsedge.InferenceSession(path, threads=1).run(None, {"input": x})[0]
    two = sparsedge.InferenceSession(path, threads=2).run(None, {"input": x})[0]
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("isa", ISAS)
def test_efficientnet_lite0_matches_onnxruntime(efficientnet_lite0_path, isa):
    _assert_matches(efficientnet_lite0_path, _photo_inputs("efficientnet-lite0"), isa)


def test_efficientnet_lite0_classifies_the_cat(efficientnet_lite0_path):
    session = sparsedge.InferenceSession(efficientnet_lite0_path)
    cat = load_image_for("efficientnet-lite0", fetch_or_skip(assets.skimage_image, "chelsea.png"))
    coffee = load_image_for("efficientnet-lite0", fetch_or_skip(assets.skimage_image, "coffee.png"))
    assert 281 <= int(np.argmax(session.run(None, {"input": cat})[0])) <= 285
    assert int(np.argmax(session.run(None, {"input": coffee})[0])) == 967


def test_runs_are_repeatable_and_inputs_untouched(efficientnet_lite0_path):
    session = sparsedge.InferenceSession(efficientnet_lite0_path)
    x = load_image_for("efficientnet-lite0", fetch_or_skip(assets.skimage_image, "chelsea.png"))
    before = x.copy()
    first = session.run(None, {"input": x})[0]
    second = session.run(None, {"input": x})[0]
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(x, before)


torch = pytest.importorskip("torch", reason="torch (test-only) is not installed; tools/setup.sh installs it")


@pytest.fixture(scope="module")
def torch_exports(tmp_path_factory):
    import models_torch

    out = tmp_path_factory.mktemp("torch")
    try:
        return models_torch.export_all(out, opsets=(13, 18))
    except ImportError as exc:  # onnxscript missing for the dynamo exporter
        pytest.skip(f"torch.onnx.export unavailable: {exc}")


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small"])
@pytest.mark.parametrize("opset", [13, 18])
@pytest.mark.parametrize("isa", ISAS)
def test_torch_exports_match_onnxruntime(torch_exports, name, opset, isa):
    key = next(k for k in torch_exports if k[0].replace("-", "_").lower() == name and k[1] == opset)
    path = torch_exports[key]
    rng = np.random.default_rng(opset)
    inputs = [rng.uniform(-1, 1, (1, 3, 224, 224)).astype(np.float32) for _ in range(2)]
    _assert_matches(path, inputs, isa)


@pytest.mark.parametrize("isa", ISAS)
def test_exported_sparse_mobilenet_matches_onnxruntime(model_dir, isa):
    """A file written by `sparsedge export` (calibration, rearrangement, recovery) runs the same
    in sparsedge (native group-sparse kernels) and onnxruntime (the ONNX function bodies)."""
    from sparsedge_export.models import build_model
    from sparsedge_export.sparsify import export_sparse

    dense = model_dir / "mobilenet-v1-0.5-160.onnx"
    if not dense.exists():
        build_model("mobilenet-v1", model_dir, filename=dense.name, width=0.5, resolution=160)
    rng = np.random.default_rng(7)
    calibration = rng.uniform(-1, 1, (4, 3, 160, 160)).astype(np.float32)
    for sparsity, pattern in ((0.5, "4x1"), (0.8, "8x1"), (0.7, "1x1")):
        sparse = model_dir / f"mobilenet-v1-0.5-{pattern}-{int(sparsity * 100)}.onnx"
        if not sparse.exists():
            export_sparse(dense, sparse, sparsity, pattern=pattern, calibration=calibration, progress=False)
        x = rng.uniform(-1, 1, (1, 3, 160, 160)).astype(np.float32)
        session = _assert_matches(sparse, [x], isa)
        assert sum(n["op_type"] == "GroupSparseConv" for n in session.get_nodes()) >= 10


def test_exported_sparse_efficientnet_matches_onnxruntime(model_dir, efficientnet_lite0_path):
    from sparsedge_export.sparsify import export_sparse

    sparse = model_dir / "efficientnet-lite0-30.onnx"
    export_sparse(efficientnet_lite0_path, sparse, 0.3, pattern="4x1", progress=False)
    session = _assert_matches(sparse, _photo_inputs("efficientnet-lite0"), None)
    assert any(n["op_type"] == "GroupSparseConv" for n in session.get_nodes())

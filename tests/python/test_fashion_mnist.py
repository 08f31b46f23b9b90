"""Accuracy of the trained Fashion-MNIST MobileNet-v1, dense and pruned to 70% (no retraining).

Needs the model written by ``tools/train_fashion_mnist.py`` to the cache
(``$SPARSEDGE_CACHE`` or ``~/.cache/sparsedge/models/fashion_mobilenet_v1.onnx``);
skips when it is absent (the weights are never committed; training needs torch and
about 20 minutes of CPU). Evaluates with onnxruntime on the first 2000 test images.
The full sweep is ``tools/accuracy_fashion_mnist.py`` (docs/ACCURACY.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

import fashion_mnist_common as common  # noqa: E402

N_TEST = 2000
N_CALIB = 256


@pytest.fixture(scope="module")
def model_path() -> Path:
    path = common.model_path()
    if not path.exists():
        pytest.skip(f"trained Fashion-MNIST model not in the cache ({path}); "
                    f"run `python tools/train_fashion_mnist.py` (needs torch) to create it")
    return path


@pytest.fixture(scope="module")
def data():
    from sparsedge_export import assets

    try:
        train_x, _, test_x, test_y = assets.fashion_mnist()
    except assets.AssetError as exc:
        pytest.skip(f"Fashion-MNIST not available: {exc}")
    idx = np.sort(np.random.default_rng(0).choice(len(train_x), N_CALIB, replace=False))
    return common.preprocess(train_x[idx]), common.preprocess(test_x[:N_TEST]), test_y[:N_TEST]


def _predict(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {"input": x[i:i + 256]})[0].argmax(1) for i in range(0, len(x), 256)])


@pytest.fixture(scope="module")
def dense_accuracy(model_path, data) -> float:
    _, x, y = data
    return float((_predict(model_path, x) == y).mean())


def test_dense_accuracy(dense_accuracy):
    assert dense_accuracy >= 0.88, f"dense accuracy on the first {N_TEST} test images: {dense_accuracy:.4f}"


def test_sparse_70_within_2_points(model_path, data, dense_accuracy, tmp_path):
    sparsify = pytest.importorskip("sparsedge_export.sparsify", reason="the sparsedge exporter is not importable")
    calib, x, y = data
    out = tmp_path / "fashion_70.onnx"
    report = sparsify.export_sparse(model_path, out, 0.7, pattern="4x1", calibration=calib, progress=False)
    assert abs(report.achieved_sparsity - 0.7) < 0.02, report.achieved_sparsity
    acc = float((_predict(out, x) == y).mean())
    assert acc >= dense_accuracy - 0.02, (f"70% sparse accuracy {acc:.4f} vs dense {dense_accuracy:.4f} "
                                          f"on the first {N_TEST} test images")

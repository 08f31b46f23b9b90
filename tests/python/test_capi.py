"""The C API end to end: builds tests/cpp/test_capi.c and cpp/examples/classify.c
through CMake (sharing build/native-tests with test_native.py), runs the C
misuse tests through ctest, and runs `classify` on EfficientNet-Lite0 with the
Chelsea photo, checking its top-5 against onnxruntime."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import fetch_or_skip
from sparsedge_export import assets
from sparsedge_export.models.preprocess import load_image_for

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "native-tests"
TOP_LINE = re.compile(r"^top-(\d+) class (\d+) score (\S+)$", re.MULTILINE)
CAT_CLASSES = range(281, 286)  # ImageNet tabby .. Egyptian cat
TOLERANCE = 1e-4


def _run(cmd, **kw):
    result = subprocess.run([str(c) for c in cmd], cwd=ROOT, capture_output=True, text=True, **kw)
    assert result.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def capi_build():
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed; tools/setup.sh installs it")
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    _run(["cmake", "-S", ".", "-B", BUILD, *generator, "-DSPARSEDGE_BUILD_TESTS=ON",
          "-DSPARSEDGE_BUILD_EXAMPLES=ON", "-DCMAKE_BUILD_TYPE=Release"])
    _run(["cmake", "--build", BUILD, "-j", str(os.cpu_count() or 2), "--target", "classify", "generate", "test_capi"],
         timeout=1200)
    return BUILD


@pytest.fixture(scope="module")
def chelsea(tmp_path_factory):
    x = load_image_for("efficientnet-lite0", fetch_or_skip(assets.skimage_image, "chelsea.png"))
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32
    folder = tmp_path_factory.mktemp("capi")
    raw = folder / "chelsea.f32"
    np.ascontiguousarray(x, dtype="<f4").tofile(raw)
    npy = folder / "chelsea.npy"
    np.save(npy, x)
    return x, raw, npy


def _classify(build, model, image, *options):
    result = _run([build / "cpp" / "examples" / "classify", model, image, *options], timeout=300)
    top = [(int(c), float(s)) for _, c, s in TOP_LINE.findall(result.stdout)]
    assert len(top) == 5, result.stdout
    return top


def test_capi_c_tests(capi_build):
    result = _run(["ctest", "--test-dir", capi_build, "-R", "^test_capi$", "--output-on-failure"], timeout=600)
    assert "100% tests passed" in result.stdout, result.stdout


def test_classify_efficientnet_lite0_matches_onnxruntime(capi_build, efficientnet_lite0_path, chelsea):
    import onnxruntime as ort

    x, raw, npy = chelsea
    top = _classify(capi_build, efficientnet_lite0_path, raw)
    assert top[0][0] in CAT_CLASSES, top

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    reference = ort.InferenceSession(str(efficientnet_lite0_path), options, providers=["CPUExecutionProvider"])
    logits = reference.run(None, {reference.get_inputs()[0].name: x})[0].reshape(-1)
    classes = [c for c, _ in top]
    scores = np.array([s for _, s in top])
    assert classes[0] == int(np.argmax(logits))
    np.testing.assert_allclose(scores, logits[classes], rtol=TOLERANCE, atol=0)
    # The printed five are the five largest logits (the reference's own ranking may
    # swap near-ties, so compare as values).
    np.testing.assert_allclose(np.sort(logits)[::-1][:5], scores, rtol=TOLERANCE, atol=0)

    # The .npy reader and other thread counts give the same answer.
    again = _classify(capi_build, efficientnet_lite0_path, npy, "--threads", "2")
    assert [c for c, _ in again] == classes
    np.testing.assert_allclose([s for _, s in again], scores, rtol=TOLERANCE, atol=0)


def test_classify_reports_errors(capi_build, chelsea, tmp_path):
    _, raw, _ = chelsea
    exe = capi_build / "cpp" / "examples" / "classify"
    missing = subprocess.run([str(exe), str(tmp_path / "missing.onnx"), str(raw)], capture_output=True, text=True)
    assert missing.returncode != 0
    assert "SDE_FILE_NOT_FOUND" in missing.stderr and "missing.onnx" in missing.stderr

    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07\x12\xff\xff\xff")
    result = subprocess.run([str(exe), str(broken), str(raw)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "SDE_INVALID_MODEL" in result.stderr


# ---------------------------------------------------------------- generation
def test_c_generate_example_streams_paris(capi_build, smollm2_dir):
    """cpp/examples/generate.c (C API only) continues the prompt greedily exactly as
    sparsedge.Generator does, and stops at --max-new-tokens."""
    import sparsedge

    result = _run([capi_build / "cpp" / "examples" / "generate", smollm2_dir, "The capital of France is",
                   "--max-new-tokens", "8"], timeout=300)
    expected = "".join(sparsedge.Generator(smollm2_dir, max_context=64).generate("The capital of France is", 8))
    assert result.stdout.startswith(" Paris")
    assert result.stdout.rstrip("\n") == expected
    assert "[8 tokens]" in result.stderr


@pytest.mark.parametrize("args, status, message", [
    (["The capital", "--temperature", "-1"], "SDE_INVALID_ARGUMENT", "temperature"),
    (["The capital", "--top-p", "0"], "SDE_INVALID_ARGUMENT", "top_p"),
    (["", "--max-new-tokens", "4"], "SDE_INVALID_ARGUMENT", "prompt is empty"),
])
def test_c_generate_bad_arguments(capi_build, smollm2_dir, args, status, message):
    result = subprocess.run([str(capi_build / "cpp" / "examples" / "generate"), str(smollm2_dir), *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert status in result.stderr and message in result.stderr


def test_c_generate_missing_directory(capi_build, tmp_path):
    result = subprocess.run([str(capi_build / "cpp" / "examples" / "generate"), str(tmp_path / "nope"), "hi"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "SDE_FILE_NOT_FOUND" in result.stderr

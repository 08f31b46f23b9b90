"""The native C++ tests cross-built for aarch64 and run under qemu user-mode
emulation: every NEON kernel against its reference, the operators per ISA,
the C API, and whole models (MobileNet-v1 dense and 80% group-sparse,
EfficientNet-Lite0) against onnxruntime outputs computed on this machine.

Needs g++-aarch64-linux-gnu and qemu-user-static (tools/setup.sh installs
them); skips with the reason when either is missing. The build directory
build/aarch64 is reused between runs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import fetch_or_skip

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "aarch64"
TOOLCHAIN = ROOT / "cmake" / "toolchains" / "aarch64-linux-gnu.cmake"
NATIVE_TESTS = 9  # add_test entries in tests/cpp/CMakeLists.txt (built by the sparsedge_tests target)
CAT_CLASSES = range(281, 286)


def _run(cmd, timeout, **kw):
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, **kw)
    assert result.returncode == 0, (f"{' '.join(map(str, cmd))} failed:\n"
                                    f"{result.stdout[-6000:]}\n{result.stderr[-4000:]}")
    return result


@pytest.fixture(scope="module")
def aarch64_build():
    missing = [tool for tool in ("aarch64-linux-gnu-g++", "qemu-aarch64-static", "cmake")
               if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (tools/setup.sh installs "
                    "g++-aarch64-linux-gnu qemu-user-static)")
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    _run(["cmake", "-S", ".", "-B", str(BUILD), *generator, f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAIN}",
          "-DSPARSEDGE_BUILD_TESTS=ON", "-DSPARSEDGE_BUILD_EXAMPLES=ON", "-DCMAKE_BUILD_TYPE=Release"],
         timeout=300)
    # Only what ctest runs (the benchmarks are not tests).
    _run(["cmake", "--build", str(BUILD), "-j", str(os.cpu_count() or 2), "--target", "sparsedge_tests", "classify"],
         timeout=1200)
    return BUILD


def test_native_tests_under_qemu_exercise_neon(aarch64_build, model_checks):
    env = dict(os.environ, SPARSEDGE_MODEL_CHECK_DIR=str(model_checks))
    env.pop("SPARSEDGE_ISA", None)  # the start-up choice must be NEON
    result = _run(["ctest", "--test-dir", str(aarch64_build), "-V"], timeout=900, env=env)
    out = result.stdout
    summary = re.search(r"(\d+)% tests passed, (\d+) tests failed out of (\d+)", out)
    assert summary, out[-3000:]
    assert summary.group(2) == "0" and int(summary.group(3)) == NATIVE_TESTS, summary.group(0)
    assert "Skipped" not in out and "skipped:" not in out, "test_models did not run its checks"

    # NEON was dispatched and tested, not only the scalar fallback.
    kernels_line = re.search(r"test_kernels: (\d+) kernels tested, 0 skipped, dispatch=neon", out)
    assert kernels_line and int(kernels_line.group(1)) >= 11, "NEON kernels missing from test_kernels"
    assert "__neon" in out or "dispatch=neon" in out
    assert "test_operators: neon done" in out
    assert "test_llm: all checks passed" in out  # same tokenizer and seeded draws as on x86
    gspmm_line = re.search(r"f32-gspmm kernels: (\d+) tested", out)
    assert gspmm_line and int(gspmm_line.group(1)) >= 8, "NEON gspmm kernels missing"
    for name in ("mobilenet-v1", "mobilenet-v1-sparse80", "efficientnet-lite0"):
        line = re.search(rf"ok {re.escape(name)}: isa=neon .*kernels=\[([^\]]*)\]", out)
        assert line, f"{name} did not pass on NEON:\n{out[-3000:]}"
        assert "/neon" in line.group(1)
    assert "gspmm-" in re.search(r"ok mobilenet-v1-sparse80: .*", out).group(0)


def test_classify_example_under_qemu(aarch64_build, model_checks, tmp_path):
    """cpp/examples/classify.c (the C API) cross-built for aarch64 classifies a real photo."""
    import numpy as np
    import onnxruntime as ort

    from sparsedge_export import assets
    from sparsedge_export.models.preprocess import load_image_for

    x = load_image_for("efficientnet-lite0", fetch_or_skip(assets.skimage_image, "chelsea.png"))
    image = tmp_path / "chelsea.npy"
    np.save(image, x)
    model = model_checks / "efficientnet-lite0.onnx"
    exe = aarch64_build / "cpp" / "examples" / "classify"
    result = _run(["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu", str(exe), str(model), str(image)],
                  timeout=600)
    top = [(int(c), float(v)) for c, v in re.findall(r"^top-\d+ class (\d+) score (\S+)$", result.stdout, re.M)]
    assert len(top) == 5 and top[0][0] in CAT_CLASSES, result.stdout
    logits = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0][0]
    assert top[0][0] == int(np.argmax(logits))
    np.testing.assert_allclose(top[0][1], logits[top[0][0]], rtol=1e-4)

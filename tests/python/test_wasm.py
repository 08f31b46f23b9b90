"""The WebAssembly build under node: the native C++ tests compiled with
emscripten (every wasmsimd kernel against its reference, the operators per
ISA, the C API), the SIMD128 instructions really present, and whole models
(MobileNet-v1 dense and 80% group-sparse, EfficientNet-Lite0) through the JS
API against onnxruntime outputs computed on this machine.

Needs emscripten and node (tools/setup.sh installs emscripten); skips with the
reason when either is missing. Build directories build/wasm and
build/wasm-tests are reused between runs (wasm/build.sh).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]
BUILD_SH = ROOT / "wasm" / "build.sh"


def _run(cmd, timeout, **kw):
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, **kw)
    assert result.returncode == 0, (f"{' '.join(map(str, cmd))} failed:\n"
                                    f"{result.stdout[-6000:]}\n{result.stderr[-4000:]}")
    return result


@pytest.fixture(scope="module")
def toolchain():
    missing = [tool for tool in ("emcc", "emcmake", "node", "cmake") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (tools/setup.sh installs emscripten; "
                    "node 18+ is needed to run the wasm)")


@pytest.fixture(scope="module")
def dist(toolchain):
    _run(["bash", str(BUILD_SH), "dist"], timeout=1200)
    return ROOT / "wasm" / "dist"


def test_native_tests_under_node_exercise_wasmsimd(toolchain, model_checks):
    env = dict(os.environ, SPARSEDGE_MODEL_CHECK_DIR=str(model_checks))
    env.pop("SPARSEDGE_ISA", None)  # the start-up choice must be wasmsimd
    out = _run(["bash", str(BUILD_SH), "tests"], timeout=1500, env=env).stdout  # ctest -V
    summary = re.search(r"(\d+)% tests passed, (\d+) tests failed out of (\d+)", out)
    assert summary, out[-3000:]
    assert summary.group(2) == "0" and int(summary.group(3)) == 9, summary.group(0)
    assert "Skipped" not in out and "skipped:" not in out, "test_models did not run its checks"
    # The SIMD128 kernels were dispatched and tested, not only the scalar fallback.
    line = re.search(r"test_kernels: (\d+) kernels tested, 0 skipped, dispatch=wasmsimd \((\w+)\)", out)
    assert line and int(line.group(1)) >= 11 and "__wasmsimd" in line.group(2), out[-3000:]
    assert "test_operators: wasmsimd done" in out
    assert "test_gspmm: all passed" in out and "test_capi: all checks passed" in out
    assert "test_llm: all checks passed" in out  # same seeded draws as on x86
    assert "test_models: 3 passed, 0 failed" in out
    assert "gspmm-8x4/wasmsimd" in out and "dwconv5x5s2/wasmsimd" in out and "gemm1x1/wasmsimd" in out


def test_dist_uses_simd128(dist):
    wasm = dist / "sparsedge.wasm"
    assert wasm.stat().st_size > 0 and (dist / "sparsedge.mjs").exists()
    if shutil.which("wasm-objdump") is None:
        pytest.skip("wasm-objdump not installed (apt-get install wabt)")
    disasm = _run(["wasm-objdump", "-d", str(wasm)], timeout=300).stdout
    for instr in ("f32x4.mul", "f32x4.add", "v128.load", "i8x16.shuffle"):
        assert instr in disasm, f"{instr} missing from sparsedge.wasm"


def test_models_and_api_under_node(dist, model_checks):
    env = dict(os.environ, SPARSEDGE_MODEL_CHECK_DIR=str(model_checks))
    env.pop("SPARSEDGE_ISA", None)
    result = _run([shutil.which("node"), "--test", "wasm/test/"], timeout=600, env=env)
    out = result.stdout
    passed = re.search(r"# pass (\d+)", out)
    assert passed and int(passed.group(1)) >= 8, out[-3000:]
    assert re.search(r"# fail 0\b", out) and re.search(r"# skipped 0\b", out), out[-3000:]
    for name in ("mobilenet-v1", "mobilenet-v1-sparse80", "efficientnet-lite0"):
        assert re.search(rf"^ok \d+ - {name} matches onnxruntime", out, re.M), out[-3000:]

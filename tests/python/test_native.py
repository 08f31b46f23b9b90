"""Runs the native C++ test suite (tests/cpp: every kernel against its
reference, per ISA) through CMake and ctest, so `pytest` is the one test
command. The build directory is reused between runs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "native-tests"


def _run(cmd, **kw):
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, **kw)
    assert result.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def native_build():
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed; tools/setup.sh installs it")
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    _run(["cmake", "-S", ".", "-B", str(BUILD), *generator, "-DSPARSEDGE_BUILD_TESTS=ON", "-DCMAKE_BUILD_TYPE=Release"])
    _run(["cmake", "--build", str(BUILD), "-j", str(os.cpu_count() or 2)], timeout=1200)
    return BUILD


def test_native_kernel_and_operator_tests(native_build):
    result = _run(["ctest", "--test-dir", str(native_build), "--output-on-failure"], timeout=600)
    assert "tests passed" in result.stdout
    assert " 0 tests failed" in result.stdout or "100% tests passed" in result.stdout

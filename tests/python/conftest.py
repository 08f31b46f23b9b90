"""Shared fixtures: real models built once per test session, in a temp dir."""

from __future__ import annotations

import pytest

from sparsedge_export import assets
from sparsedge_export.assets import AssetError


def fetch_or_skip(fetch, *args):
    """Fetch an asset; skip (with the reason) only when offline and not cached."""
    try:
        return fetch(*args)
    except AssetError as exc:
        if assets.is_offline():
            pytest.skip(f"asset not cached and SPARSEDGE_OFFLINE=1: {exc}")
        raise


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def mobilenet_v1_path(model_dir):
    from sparsedge_export.models import build_model

    return build_model("mobilenet-v1", model_dir)


@pytest.fixture(scope="session")
def efficientnet_lite0_path(model_dir):
    from sparsedge_export.models import build_model

    weights = fetch_or_skip(assets.efficientnet_lite0_weights)
    return build_model("efficientnet-lite0", model_dir, weights_path=weights)


@pytest.fixture(scope="session")
def model_checks(tmp_path_factory):
    """Models, inputs and onnxruntime outputs for the native whole-model checks
    (tools/make_model_checks.py), written once per test session."""
    import subprocess
    import sys
    from pathlib import Path

    fetch_or_skip(assets.efficientnet_lite0_weights)
    out = tmp_path_factory.mktemp("model_checks")
    script = Path(__file__).resolve().parents[2] / "tools" / "make_model_checks.py"
    result = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert (out / "checks.txt").read_text().count("\n") == 3
    return out


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory):
    """The dense SmolLM2-135M decoder directory (model.onnx + data, tokenizer.json,
    generation_config.json), built once per test session from the cached GGUF."""
    from sparsedge_export.llm.build import build_smollm2

    gguf = fetch_or_skip(assets.smollm2_gguf)
    out = tmp_path_factory.mktemp("smollm2_runtime")
    build_smollm2(out, gguf_path=gguf, progress=False)
    yield out
    for path in out.iterdir():  # 540 MB: do not leave it in pytest's kept temp dirs
        path.unlink(missing_ok=True)

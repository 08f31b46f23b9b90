"""Shared bits of the Fashion-MNIST tools: model path and input preprocessing.

Used by ``tools/train_fashion_mnist.py``, ``tools/accuracy_fashion_mnist.py`` and
``tests/python/test_fashion_mnist.py``. numpy only (no torch), so the evaluation
side does not need torch.

Preprocessing (the ONNX model's input is the result): uint8 28x28 -> float32
``x / 255``, zero-padded by 2 pixels on each side to 32x32 (the background of
Fashion-MNIST is 0), then ``(x - MEAN) / STD`` with the training-set statistics
of the unpadded images. Shape ``[N, 1, 32, 32]``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

MODEL_NAME = "fashion_mobilenet_v1"
INPUT_SIZE = 32
PAD = (INPUT_SIZE - 28) // 2
MEAN = 0.2860  # Fashion-MNIST training set, pixels / 255
STD = 0.3530


def cache_dir() -> Path:
    env = os.environ.get("SPARSEDGE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sparsedge"


def model_path() -> Path:
    return cache_dir() / "models" / f"{MODEL_NAME}.onnx"


def metadata_path() -> Path:
    return cache_dir() / "models" / f"{MODEL_NAME}.json"


def preprocess(images: np.ndarray) -> np.ndarray:
    """uint8 ``[N, 28, 28]`` -> float32 ``[N, 1, 32, 32]`` model inputs."""
    x = images.astype(np.float32) / 255.0
    x = np.pad(x, ((0, 0), (PAD, PAD), (PAD, PAD)))
    x = (x - MEAN) / STD
    return x[:, None, :, :].astype(np.float32)

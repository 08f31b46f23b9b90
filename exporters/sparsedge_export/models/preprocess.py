"""Image preprocessing for the CNN builders (Pillow + numpy only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["PREPROCESS", "load_image_for", "preprocess_image"]

# model name -> (resize shorter side to, center crop, mean, std); x' = (x - mean) / std.
PREPROCESS = {
    "efficientnet-lite0": (256, 224, 127.0, 128.0),
    "mobilenet-v1": (256, 224, 127.0, 128.0),
}


def preprocess_image(image: Image.Image, resize: int = 256, crop: int = 224,
                     mean: float = 127.0, std: float = 128.0) -> np.ndarray:
    """RGB, bilinear resize of the shorter side, center crop, normalise; returns [1,3,crop,crop] float32."""
    image = image.convert("RGB")
    width, height = image.size
    scale = resize / min(width, height)
    new_w, new_h = max(crop, round(width * scale)), max(crop, round(height * scale))
    image = image.resize((new_w, new_h), Image.BILINEAR)
    left, top = (new_w - crop) // 2, (new_h - crop) // 2
    image = image.crop((left, top, left + crop, top + crop))
    pixels = np.asarray(image, dtype=np.float32)
    return ((pixels - mean) / std).transpose(2, 0, 1)[None].copy()


def load_image_for(model_name: str, path: Path | str) -> np.ndarray:
    """Load ``path`` and preprocess it for ``model_name`` (a key of PREPROCESS)."""
    if model_name not in PREPROCESS:
        raise KeyError(f"no preprocessing known for {model_name!r}; known: {sorted(PREPROCESS)}")
    resize, crop, mean, std = PREPROCESS[model_name]
    with Image.open(path) as image:
        return preprocess_image(image, resize, crop, mean, std)

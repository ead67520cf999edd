"""Image array layout and value range: the checks the .npz and folder loaders share."""

from __future__ import annotations

import numpy as np

from ...config import ConfigError, ModelConfig
from ...errors import DatasetError


def image_shape(model: ModelConfig) -> tuple[int, int, int]:
    """`model.input_shape` as (channels, height, width); image models need all three."""
    if len(model.input_shape) != 3:
        raise ConfigError(
            f"model.input_shape is {list(model.input_shape)}; the image-cnn family needs "
            "[channels, height, width], for example [3, 32, 32]"
        )
    channels, height, width = model.input_shape
    return channels, height, width


def prepare_array(x: np.ndarray, model: ModelConfig, where: str) -> np.ndarray:
    """Check an image array and bring it to (N, C, H, W), uint8 or float32 in [0, 1].

    Accepted: (N, C, H, W); (N, H, W, C), transposed when the shape says so; (N, H, W)
    for one channel. uint8 is kept as 0-255 bytes (scaled when batched); floats must
    already be in [0, 1].
    """
    channels, height, width = image_shape(model)
    channels_first, channels_last = (channels, height, width), (height, width, channels)
    if x.ndim == 3 and channels == 1 and x.shape[1:] == (height, width):
        x = x[:, None, :, :]
    elif x.ndim == 4 and x.shape[1:] == channels_last != channels_first:
        x = x.transpose(0, 3, 1, 2)
    if x.ndim != 4 or x.shape[1:] != channels_first:
        raise DatasetError(
            f"{where}: x has shape {list(x.shape)}, but model.input_shape is "
            f"{[channels, height, width]}: expected (N, {channels}, {height}, {width}) or "
            f"(N, {height}, {width}, {channels})"
        )
    if len(x) == 0:
        raise DatasetError(f"{where}: x holds no examples")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise DatasetError(
            f"{where}: x has dtype {x.dtype}; store images as uint8 (0-255) or as floats in [0, 1]"
        )
    low, high = float(np.min(x)), float(np.max(x))
    if not (np.isfinite(low) and np.isfinite(high)) or low < 0.0 or high > 1.0:
        raise DatasetError(
            f"{where}: float x has values in [{low:g}, {high:g}]; scale images to [0, 1] "
            "(divide 0-255 pixels by 255) or store them as uint8"
        )
    return np.ascontiguousarray(x, dtype=np.float32)

"""What a model family provides, so that adding a family is a new folder, not a rewrite.

A family knows its architecture, how to make a learnable synthetic dataset for smoke runs
and tests, how to read its native real-data format (a folder of images per class for
images; a CSV for tables, text files for text) and how to check the `x` array of an `.npz`.
Everything else (splitting, training, the gate, ONNX export, parity) is shared and works
on numpy arrays and `torch.nn.Module`s. Nothing here imports torch: loading data must not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    from ..config import DataConfig, ModelConfig


@dataclasses.dataclass(frozen=True)
class Examples:
    """Labelled examples: `x` (N, *input_shape), `y` int64 labels (N,), one name per class.

    `x` is float32 in the model's input range, or uint8 (0-255) for image bytes, which keeps
    a real image dataset four times smaller in memory; `data.to_model_input` scales it.
    """

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, indices: np.ndarray) -> Examples:
        return Examples(self.x[indices], self.y[indices], self.class_names)


@dataclasses.dataclass(frozen=True)
class Family:
    """One model family: its `model.family` name and the things only it knows."""

    # The `model.family` value in configs, e.g. "image-cnn".
    name: str
    # The `data.source` value of the family's native real-data format, e.g. "image-folder".
    native_source: str
    # Build the nn.Module from `model.*`. With training examples it also fits what it
    # learns from data before training (input normalisation); without, a checkpoint's
    # state_dict restores that.
    build_model: Callable[[ModelConfig, Examples | None], torch.nn.Module]
    # A seeded, learnable synthetic dataset: (model config, data config, seed) -> Examples.
    synthetic_examples: Callable[[ModelConfig, DataConfig, int], Examples]
    # Read the native format at a path: (path, model config) -> Examples.
    load_native: Callable[[Path, ModelConfig], Examples]
    # Check and convert the `x` array of an .npz to (N, *input_shape), float32 or uint8;
    # (x, model config, where) -> x. Raises DatasetError saying what is wrong.
    prepare_array: Callable[[np.ndarray, ModelConfig, str], np.ndarray]
    # The model-input axis (batch is 0) whose entries drift monitoring summarises one by
    # one: an image's channels, a series' sensors (drift.py).
    summary_axis: int

"""Seeded synthetic sensor windows that a small recurrent network learns in seconds.

Each class is an oscillation with its own frequency, strongest on its own feature (a
sensor), with a per-window random phase, amplitude and offset, Gaussian noise on every
step, and optional label noise; so a model has to tell rhythms and channels apart, not
read a constant.
"""

from __future__ import annotations

import numpy as np

from ...config import DataConfig, ModelConfig
from ..interface import Examples
from ..labels import balanced_labels, class_names, flip_labels
from .layout import series_shape


def synthetic_examples(model: ModelConfig, data: DataConfig, seed: int) -> Examples:
    """`data.synthetic_samples` windows of shape `model.input_shape`, float32."""
    steps, features = series_shape(model)
    num_classes = model.num_classes
    rng = np.random.default_rng(seed)
    count = data.synthetic_samples

    labels = balanced_labels(count, num_classes, rng)
    # Cycles per window: 2, 3, 4, ... for classes 0, 1, 2, ...
    frequencies = 2.0 + np.arange(num_classes)
    time = np.linspace(0.0, 1.0, steps)[None, :, None]
    phase = rng.uniform(0.0, 2 * np.pi, size=(count, 1, 1))
    amplitude = rng.uniform(0.6, 1.4, size=(count, 1, 1))
    # Every feature carries the rhythm a little, the class's own feature strongly.
    weights = np.full((num_classes, features), 0.3)
    weights[np.arange(num_classes), np.arange(num_classes) % features] = 1.0
    wave = np.sin(2 * np.pi * frequencies[labels][:, None, None] * time + phase)
    series = amplitude * wave * weights[labels][:, None, :]
    series += rng.normal(0.0, 0.5, size=(count, 1, features))  # per-window offsets
    series += rng.normal(0.0, data.synthetic_noise, size=series.shape)

    noisy = flip_labels(labels, data.synthetic_label_noise, num_classes, rng)
    return Examples(series.astype(np.float32), noisy, class_names(num_classes))

"""Seeded synthetic images that a small CNN learns in seconds.

Each class is a sinusoidal grating with its own orientation and stripe frequency (and, in
colour, its own tint). Every example shifts the grating by a random phase, varies its
contrast and adds Gaussian pixel noise, so the network has to learn the pattern, not
memorise pixels. Optional label noise flips a fraction of labels, so accuracy stays below
1.0 the way it does on real data.
"""

from __future__ import annotations

import math

import numpy as np

from ...config import DataConfig, ModelConfig
from ..interface import Examples
from ..labels import balanced_labels, class_names, flip_labels
from .layout import image_shape

# Stripe frequencies in cycles per image; classes alternate between them so that
# neighbouring orientations still differ in frequency.
FREQUENCIES = (2.0, 4.0)


def synthetic_examples(model: ModelConfig, data: DataConfig, seed: int) -> Examples:
    """`data.synthetic_samples` images of shape `model.input_shape`, float32 in [0, 1]."""
    channels, height, width = image_shape(model)
    num_classes = model.num_classes
    rng = np.random.default_rng(seed)
    count = data.synthetic_samples

    labels = balanced_labels(count, num_classes, rng)

    orientation_steps = math.ceil(num_classes / len(FREQUENCIES))
    class_index = np.arange(num_classes)
    angles = math.pi * (class_index // len(FREQUENCIES)) / orientation_steps
    frequencies = np.array(FREQUENCIES)[class_index % len(FREQUENCIES)]
    # Per-class tint: weights on the channels, all positive so every channel carries it.
    tints = 0.6 + 0.4 * np.cos(
        2 * math.pi * (class_index[:, None] / num_classes + np.arange(channels)[None, :] / 3)
    )
    if channels == 1:
        tints = np.ones((num_classes, 1))

    rows = np.linspace(0.0, 1.0, height)[None, :, None]
    cols = np.linspace(0.0, 1.0, width)[None, None, :]
    angle = angles[labels][:, None, None]
    phase = rng.uniform(0.0, 2 * math.pi, size=(count, 1, 1))
    contrast = rng.uniform(0.25, 0.45, size=(count, 1, 1))
    projected = cols * np.cos(angle) + rows * np.sin(angle)
    grating = np.sin(2 * math.pi * frequencies[labels][:, None, None] * projected + phase)
    images = 0.5 + (contrast * grating)[:, None, :, :] * tints[labels][:, :, None, None]
    images += rng.normal(0.0, data.synthetic_noise, size=images.shape)
    images = np.clip(images, 0.0, 1.0).astype(np.float32)

    noisy_labels = flip_labels(labels, data.synthetic_label_noise, num_classes, rng)
    return Examples(images, noisy_labels, class_names(num_classes))

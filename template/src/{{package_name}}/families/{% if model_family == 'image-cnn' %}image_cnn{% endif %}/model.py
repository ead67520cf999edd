"""A small CNN: [conv3x3 -> batch norm -> ReLU -> max pool] per stage, then a linear head.

Input normalisation lives inside the model (buffers saved in the checkpoint and exported
to ONNX), so every consumer - evaluate, the ONNX export, the server - feeds raw [0, 1]
pixels and nobody has to copy the training statistics by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ...config import ConfigError, ModelConfig
from ..interface import Examples
from .layout import image_shape

DEFAULT_HPARAMS: dict[str, Any] = {"channels": [16, 32], "dropout": 0.1}


class ImageCNN(nn.Module):
    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int],
        dropout: float,
    ) -> None:
        super().__init__()
        in_channels = input_shape[0]
        # Neutral defaults; `fit_normalisation` or a checkpoint replaces them.
        self.register_buffer("mean", torch.full((1, in_channels, 1, 1), 0.5))
        self.register_buffer("std", torch.full((1, in_channels, 1, 1), 0.25))
        stages: list[nn.Module] = []
        for out_channels in channels:
            stages += [
                # No conv bias: the batch norm that follows has its own.
                nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            in_channels = out_channels
        self.features = nn.Sequential(*stages)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(in_channels, num_classes)

    def fit_normalisation(self, images: np.ndarray) -> None:
        """Per-channel mean and std of training images given as model input ([0, 1])."""
        per_channel = images.transpose(1, 0, 2, 3).reshape(images.shape[1], -1)
        mean = per_channel.mean(axis=1, dtype=np.float64)
        # A constant channel would divide by zero; 1e-3 keeps it finite and harmless.
        std = np.maximum(per_channel.std(axis=1, dtype=np.float64), 1e-3)
        self.mean.copy_(torch.from_numpy(mean.astype(np.float32)).view_as(self.mean))
        self.std.copy_(torch.from_numpy(std.astype(np.float32)).view_as(self.std))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.features((images - self.mean) / self.std)
        # Global average pooling as a plain mean: nn.AdaptiveAvgPool2d has no deterministic
        # CUDA backward, and training runs with torch.use_deterministic_algorithms.
        pooled = features.mean(dim=(2, 3))
        return self.classifier(self.dropout(pooled))


def build_model(model: ModelConfig, train_examples: Examples | None = None) -> ImageCNN:
    """The CNN described by `model.hparams`; fits normalisation on `train_examples`."""
    hparams = _check_hparams(model)
    network = ImageCNN(image_shape(model), model.num_classes, **hparams)
    if train_examples is not None:
        x = train_examples.x
        network.fit_normalisation(x / np.float32(255) if x.dtype == np.uint8 else x)
    return network


def _check_hparams(model: ModelConfig) -> dict[str, Any]:
    unknown = sorted(set(model.hparams) - set(DEFAULT_HPARAMS))
    if unknown:
        raise ConfigError(
            f"model.hparams has unknown key(s) {', '.join(unknown)}; "
            f"the image-cnn family takes {', '.join(DEFAULT_HPARAMS)}"
        )
    hparams = {**DEFAULT_HPARAMS, **model.hparams}
    channels = hparams["channels"]
    if (
        not isinstance(channels, list)
        or not channels
        or not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in channels)
    ):
        raise ConfigError(
            f"model.hparams.channels is {channels!r}; give a non-empty list of positive "
            "integers, one per conv stage (for example [16, 32])"
        )
    dropout = hparams["dropout"]
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
        raise ConfigError(f"model.hparams.dropout is {dropout!r}; give a number in [0, 1)")
    # Every stage halves height and width; the last stage must still have a pixel.
    _, height, width = image_shape(model)
    smallest = 2 ** len(channels)
    if min(height, width) < smallest:
        raise ConfigError(
            f"model.input_shape {list(model.input_shape)} is too small for "
            f"{len(channels)} conv stages, which need height and width >= {smallest}: "
            "use fewer entries in model.hparams.channels"
        )
    return {"channels": list(channels), "dropout": float(dropout)}

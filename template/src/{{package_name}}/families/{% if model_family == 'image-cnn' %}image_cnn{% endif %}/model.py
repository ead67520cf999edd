"""The image-cnn family's architectures, chosen by `model.arch`:

- `cnn` (the default): [conv3x3 -> batch norm -> ReLU -> max pool] per stage, then a
  linear head; small and fast, for smoke runs and small images;
- `resnet18`: ResNet-18 (He et al., 2016) adapted to 32x32 input as for CIFAR-10: a 3x3
  stem without max pooling, four stages of two basic blocks (64-512 channels, strides
  1, 2, 2, 2), global average pooling, a linear head; 11.2 M parameters.

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
from ..hparams import dropout_rate, with_defaults
from ..interface import Examples
from .layout import image_shape

ARCHS = ("cnn", "resnet18")
DEFAULT_HPARAMS: dict[str, Any] = {"channels": [16, 32], "dropout": 0.1}
# What each architecture reads from model.hparams.
HPARAMS_OF_ARCH = {"cnn": ("channels", "dropout"), "resnet18": ("dropout",)}
RESNET18_STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))  # (channels, stride)


class NormalisedInput(nn.Module):
    """Per-channel input normalisation as buffers: saved in the checkpoint and exported
    to ONNX, fitted on the training images."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        # Neutral defaults; `fit_normalisation` or a checkpoint replaces them.
        self.register_buffer("mean", torch.full((1, channels, 1, 1), 0.5))
        self.register_buffer("std", torch.full((1, channels, 1, 1), 0.25))

    def fit_normalisation(self, images: np.ndarray) -> None:
        """Per-channel mean and std of training images given as model input ([0, 1])."""
        per_channel = images.transpose(1, 0, 2, 3).reshape(images.shape[1], -1)
        mean = per_channel.mean(axis=1, dtype=np.float64)
        # A constant channel would divide by zero; 1e-3 keeps it finite and harmless.
        std = np.maximum(per_channel.std(axis=1, dtype=np.float64), 1e-3)
        self.mean.copy_(torch.from_numpy(mean.astype(np.float32)).view_as(self.mean))
        self.std.copy_(torch.from_numpy(std.astype(np.float32)).view_as(self.std))

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std


class ImageCNN(NormalisedInput):
    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int],
        dropout: float,
    ) -> None:
        in_channels = input_shape[0]
        super().__init__(in_channels)
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

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.features(self.normalise(images))
        # Global average pooling as a plain mean: nn.AdaptiveAvgPool2d has no deterministic
        # CUDA backward, and training runs with torch.use_deterministic_algorithms.
        pooled = features.mean(dim=(2, 3))
        return self.classifier(self.dropout(pooled))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm, plus the input (projected when the shape
    changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(NormalisedInput):
    def __init__(self, input_shape: Sequence[int], num_classes: int, dropout: float) -> None:
        in_channels = input_shape[0]
        super().__init__(in_channels)
        # A 3x3 stem without max pooling: at 32x32 the ImageNet stem (7x7 stride 2, then a
        # max pool) would leave 8x8 before the first block.
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 3, 1, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
        )
        blocks: list[nn.Module] = []
        width = 64
        for channels, stride in RESNET18_STAGES:
            blocks += [BasicBlock(width, channels, stride), BasicBlock(channels, channels, 1)]
            width = channels
        self.blocks = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.blocks(self.stem(self.normalise(images)))
        pooled = features.mean(dim=(2, 3))  # as in ImageCNN: deterministic on CUDA
        return self.classifier(self.dropout(pooled))


def build_model(model: ModelConfig, train_examples: Examples | None = None) -> ImageCNN | ResNet18:
    """The architecture `model.arch` with `model.hparams`; fits normalisation on
    `train_examples`."""
    arch, hparams = _check_hparams(model)
    network: ImageCNN | ResNet18
    if arch == "resnet18":
        network = ResNet18(image_shape(model), model.num_classes, hparams["dropout"])
    else:
        network = ImageCNN(image_shape(model), model.num_classes, **hparams)
    if train_examples is not None:
        x = train_examples.x
        network.fit_normalisation(x / np.float32(255) if x.dtype == np.uint8 else x)
    return network


def _check_hparams(model: ModelConfig) -> tuple[str, dict[str, Any]]:
    arch = model.arch or "cnn"
    if arch not in ARCHS:
        raise ConfigError(f"model.arch is {arch!r}; the image-cnn family has {', '.join(ARCHS)}")
    accepted = {name: DEFAULT_HPARAMS[name] for name in HPARAMS_OF_ARCH[arch]}
    hparams = {
        **DEFAULT_HPARAMS,
        **with_defaults(model, accepted, f"arch {arch} of the image-cnn family"),
    }
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
    rate = dropout_rate(hparams)
    # Every stride-2 stage halves height and width; the last must still have a pixel.
    _, height, width = image_shape(model)
    if arch == "resnet18" and min(height, width) < 8:
        raise ConfigError(
            f"model.input_shape {list(model.input_shape)} is too small for resnet18, whose "
            "three stride-2 stages need height and width >= 8: use arch cnn"
        )
    smallest = 2 ** len(channels)
    if arch == "cnn" and min(height, width) < smallest:
        raise ConfigError(
            f"model.input_shape {list(model.input_shape)} is too small for "
            f"{len(channels)} conv stages, which need height and width >= {smallest}: "
            "use fewer entries in model.hparams.channels"
        )
    return arch, {"channels": list(channels), "dropout": rate}

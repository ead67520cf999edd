"""The image-cnn family: a small CNN or a ResNet-18 (`model.arch`) over (C, H, W) images
with values in [0, 1]."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..interface import Examples, Family
from .image_folder import load_image_folder
from .layout import prepare_array
from .synthetic import synthetic_examples

if TYPE_CHECKING:
    from ...config import ModelConfig
    from .model import ImageCNN, ResNet18


def build_model(model: ModelConfig, train_examples: Examples | None = None) -> ImageCNN | ResNet18:
    # Imported here so that loading data never imports torch.
    from .model import build_model as build

    return build(model, train_examples)


FAMILY = Family(
    name="image-cnn",
    native_source="image-folder",
    build_model=build_model,
    synthetic_examples=synthetic_examples,
    load_native=load_image_folder,
    prepare_array=prepare_array,
    summary_axis=1,  # channels of (batch, C, H, W)
)

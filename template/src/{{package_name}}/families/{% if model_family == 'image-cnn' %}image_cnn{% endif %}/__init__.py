"""The image-cnn family: a small CNN or a ResNet-18 (`model.arch`) over (C, H, W) images
with values in [0, 1]."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...drift import InputSummary
from ..interface import (
    Examples,
    Family,
    InputEncoder,
    ModelInput,
    PublicDataset,
    fit_array_encoder,
    restore_array_encoder,
    uniform_input,
)
from .cifar10 import download_cifar10
from .image_folder import load_image_folder
from .layout import image_shape, prepare_array
from .synthetic import synthetic_examples

if TYPE_CHECKING:
    from ...config import ModelConfig
    from .model import ImageCNN, ResNet18


def build_model(
    model: ModelConfig, encoder: InputEncoder, train_examples: Examples | None = None
) -> ImageCNN | ResNet18:
    # Imported here so that loading data never imports torch.
    from .model import build_model as build

    return build(model, train_examples)


def model_input(model: ModelConfig, encoder: InputEncoder) -> ModelInput:
    shape = image_shape(model)
    return ModelInput("input", "float32", shape, uniform_input("input", shape))


def input_summary(encoder: InputEncoder) -> InputSummary:
    return InputSummary("axis-mean", axis=1)  # channels of (batch, C, H, W)


FAMILY = Family(
    name="image-cnn",
    native_source="image-folder",
    synthetic_examples=synthetic_examples,
    load_native=load_image_folder,
    prepare_array=prepare_array,
    fit_encoder=fit_array_encoder,
    restore_encoder=restore_array_encoder,
    model_input=model_input,
    build_model=build_model,
    input_summary=input_summary,
    public_datasets=(
        PublicDataset(
            "cifar10",
            "data/cifar10.npz",
            "CIFAR-10 (60000 32x32 colour images, 10 classes; about 163 MiB) as .npz",
            download_cifar10,
        ),
    ),
)

"""The sequence-rnn family: an LSTM or GRU (`model.arch`) over windows of a multivariate
series, (time steps, features) float32, of any length."""

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
from .layout import prepare_array, series_shape
from .sensor_csv import load_sensor_csv
from .synthetic import synthetic_examples
from .uci_har import download_uci_har

if TYPE_CHECKING:
    from ...config import ModelConfig
    from .model import SequenceRNN


def build_model(
    model: ModelConfig, encoder: InputEncoder, train_examples: Examples | None = None
) -> SequenceRNN:
    # Imported here so that loading data never imports torch.
    from .model import build_model as build

    return build(model, train_examples)


def model_input(model: ModelConfig, encoder: InputEncoder) -> ModelInput:
    # The time axis is dynamic: a model trained on windows of one length takes any.
    shape = (None, series_shape(model)[1])
    return ModelInput("input", "float32", shape, uniform_input("input", shape))


def input_summary(encoder: InputEncoder) -> InputSummary:
    return InputSummary("axis-mean", axis=2)  # features of (batch, time, features)


FAMILY = Family(
    name="sequence-rnn",
    native_source="sensor-csv",
    synthetic_examples=synthetic_examples,
    load_native=load_sensor_csv,
    prepare_array=prepare_array,
    fit_encoder=fit_array_encoder,
    restore_encoder=restore_array_encoder,
    model_input=model_input,
    build_model=build_model,
    input_summary=input_summary,
    public_datasets=(
        PublicDataset(
            "uci-har",
            "data/uci-har.npz",
            "UCI HAR (10299 windows of 128 steps x 9 sensors, 6 activities; 60 MiB) as .npz",
            download_uci_har,
        ),
    ),
)

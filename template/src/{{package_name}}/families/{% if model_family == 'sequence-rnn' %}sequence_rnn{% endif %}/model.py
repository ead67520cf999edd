"""The sequence-rnn family's network: a recurrent classifier over multivariate series.

`model.arch` chooses the cell, `lstm` (the default) or `gru`. Per-feature input
normalisation (fitted on the training windows, saved as buffers and exported to ONNX), a
stack of `layers` recurrent layers of `hidden` units (optionally bidirectional), the mean
of the last layer's outputs over time, and a linear head. The mean, not the last step,
makes the output independent of where a window was cut and lets the model take any
length: the ONNX export has a dynamic sequence axis.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ...config import ConfigError, ModelConfig
from ..hparams import dropout_rate, positive_int, with_defaults
from ..interface import Examples
from .layout import series_shape

ARCHS = ("lstm", "gru")
DEFAULT_HPARAMS: dict[str, Any] = {
    "hidden": 64,
    "layers": 1,
    "dropout": 0.1,
    "bidirectional": False,
}
_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


class SequenceRNN(nn.Module):
    def __init__(
        self,
        arch: str,
        features: int,
        num_classes: int,
        hidden: int,
        layers: int,
        dropout: float,
        bidirectional: bool,
    ) -> None:
        super().__init__()
        # Neutral defaults; `fit_normalisation` or a checkpoint replaces them.
        self.register_buffer("mean", torch.zeros(1, 1, features))
        self.register_buffer("std", torch.ones(1, 1, features))
        self.rnn = _CELLS[arch](
            features,
            hidden,
            num_layers=layers,
            batch_first=True,
            # Between stacked layers only: PyTorch warns when it would do nothing.
            dropout=dropout if layers > 1 else 0.0,
            bidirectional=bidirectional,
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden * (2 if bidirectional else 1), num_classes)

    def fit_normalisation(self, windows: np.ndarray) -> None:
        """Per-feature mean and std over every time step of the training windows."""
        flat = windows.reshape(-1, windows.shape[-1])
        mean = flat.mean(axis=0, dtype=np.float64)
        # A constant feature would divide by zero; 1e-3 keeps it finite and harmless.
        std = np.maximum(flat.std(axis=0, dtype=np.float64), 1e-3)
        self.mean.copy_(torch.from_numpy(mean.astype(np.float32)).view_as(self.mean))
        self.std.copy_(torch.from_numpy(std.astype(np.float32)).view_as(self.std))

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.rnn((series - self.mean) / self.std)
        return self.classifier(self.dropout(outputs.mean(dim=1)))


def build_model(model: ModelConfig, train_examples: Examples | None = None) -> SequenceRNN:
    """The cell `model.arch` with `model.hparams`; fits normalisation on `train_examples`."""
    arch, hparams = _check_hparams(model)
    _, features = series_shape(model)
    network = SequenceRNN(arch, features, model.num_classes, **hparams)
    if train_examples is not None:
        network.fit_normalisation(train_examples.x)
    return network


def _check_hparams(model: ModelConfig) -> tuple[str, dict[str, Any]]:
    arch = model.arch or "lstm"
    if arch not in ARCHS:
        raise ConfigError(f"model.arch is {arch!r}; the sequence-rnn family has {', '.join(ARCHS)}")
    hparams = with_defaults(model, DEFAULT_HPARAMS, "the sequence-rnn family")
    for name in ("hidden", "layers"):
        positive_int(hparams, name)
    if not isinstance(hparams["bidirectional"], bool):
        raise ConfigError(
            f"model.hparams.bidirectional is {hparams['bidirectional']!r}; give true or false"
        )
    return arch, {**hparams, "dropout": dropout_rate(hparams)}

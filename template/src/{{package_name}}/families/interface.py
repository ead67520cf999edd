"""What a model family provides, so that adding a family is a new folder, not a rewrite.

A family knows its architecture; how to make a learnable synthetic dataset for smoke runs
and tests; how to read its native real-data format (a folder of images per class, a CSV
of sensor windows, a table of texts) and check the `x` array of an `.npz`; what turns
stored examples into model input (its `InputEncoder`: scaling image bytes, a tokenizer
trained on the training split); the ONNX model's input (`ModelInput`); and how drift
monitoring summarises an input. Everything else (splitting, training, the gate, the
champion, ONNX export, parity, serving) is shared and works on numpy arrays and
`torch.nn.Module`s. Nothing here imports torch: loading data must not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..drift import InputSummary

if TYPE_CHECKING:
    import torch

    from ..config import DataConfig, ModelConfig

# The name of the dynamic sequence axis in the ONNX model (the batch axis is "batch").
SEQUENCE_AXIS = "sequence"


@dataclasses.dataclass(frozen=True)
class Examples:
    """Labelled examples: `x` holds N examples in the family's stored form, `y` int64
    labels (N,), one name per class.

    Stored forms: float32 model input (N, *input_shape); uint8 image bytes (0-255), which
    keep a real image dataset four times smaller in memory; (N,) strings for text.
    """

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, indices: np.ndarray) -> Examples:
        return Examples(self.x[indices], self.y[indices], self.class_names)


class InputEncoder(Protocol):
    """Turns stored examples into model input. Fitted on the training split (a tokenizer),
    or fixed (scaling image bytes); its `state` is saved in the checkpoint."""

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Model input for stored examples `x`: float32 or int64, batch first."""
        ...

    def compact(self, x: np.ndarray) -> np.ndarray:
        """What training keeps in memory: model input, or a smaller form that training
        turns into model input batch by batch (uint8 image bytes)."""
        ...

    def state(self) -> str | None:
        """What `Family.restore_encoder` rebuilds it from (saved in the checkpoint)."""
        ...

    def serving_metadata(self) -> dict[str, Any] | None:
        """What a server needs besides the ONNX graph to take raw input (a text model's
        tokenizer), recorded in the ONNX metadata; None: it takes model input as is."""
        ...


@dataclasses.dataclass(frozen=True)
class ModelInput:
    """The ONNX model's one input: the export's contract with the server."""

    name: str
    dtype: str  # a numpy dtype name: float32 or int64
    # Without the batch axis; None marks the dynamic sequence axis.
    shape: tuple[int | None, ...]
    # Seeded inputs for the export's example and the parity check:
    # (batch, sequence length or None, generator) -> array of `dtype`.
    random: Callable[[int, int | None, np.random.Generator], np.ndarray]
    # The longest sequence the model takes (a position table's size); None: any length.
    max_length: int | None = None

    @property
    def sequence_axis(self) -> int | None:
        """The sequence axis' index in the batched input, or None when there is none."""
        return self.shape.index(None) + 1 if None in self.shape else None


@dataclasses.dataclass(frozen=True)
class PublicDataset:
    """A public dataset the family trains on: `python -m <package> data download-<name>`
    fetches it (download.py) and converts it to a format `data.source` reads."""

    name: str  # the command is download-<name>
    default_out: str  # where the converted dataset goes, e.g. data/cifar10.npz
    description: str
    # (out, URL to fetch from instead of the publisher's: a mirror) -> out
    download: Callable[[Path, str | None], Path]


@dataclasses.dataclass(frozen=True)
class Family:
    """One model family: its `model.family` name and the things only it knows."""

    # The `model.family` value in configs, e.g. "image-cnn".
    name: str
    # The `data.source` value of the family's native real-data format, e.g. "image-folder".
    native_source: str
    # A seeded, learnable synthetic dataset: (model config, data config, seed) -> Examples.
    synthetic_examples: Callable[[ModelConfig, DataConfig, int], Examples]
    # Read the native format at a path: (path, model config) -> Examples.
    load_native: Callable[[Path, ModelConfig], Examples]
    # Check and convert the `x` array of an .npz to the stored form;
    # (x, model config, where) -> x. Raises DatasetError saying what is wrong.
    prepare_array: Callable[[np.ndarray, ModelConfig, str], np.ndarray]
    # Fit the encoder on the training split: (train examples, model config) -> encoder.
    fit_encoder: Callable[[Examples, ModelConfig], InputEncoder]
    # Rebuild it from a checkpoint's `state`: (state, model config) -> encoder.
    restore_encoder: Callable[[str | None, ModelConfig], InputEncoder]
    # The ONNX model's input for a model config and its encoder.
    model_input: Callable[[ModelConfig, InputEncoder], ModelInput]
    # Build the nn.Module from `model.*` and the encoder. With the training examples it
    # also fits what it learns from data before training (input normalisation); without,
    # a checkpoint's state_dict restores that.
    build_model: Callable[[ModelConfig, InputEncoder, Examples | None], torch.nn.Module]
    # How drift monitoring summarises a model input sample (drift.py).
    input_summary: Callable[[InputEncoder], InputSummary]
    # Public datasets to train on, for real runs (the default profile names the first).
    public_datasets: tuple[PublicDataset, ...] = ()


class ArrayEncoder:
    """The encoder of families whose examples are arrays: float32 examples are model input
    as they are, uint8 image bytes are scaled to [0, 1]. Nothing is fitted."""

    def encode(self, x: np.ndarray) -> np.ndarray:
        if x.dtype == np.uint8:
            return x.astype(np.float32) / np.float32(255)
        return x.astype(np.float32, copy=False)

    def compact(self, x: np.ndarray) -> np.ndarray:
        return x

    def state(self) -> str | None:
        return None

    def serving_metadata(self) -> dict[str, Any] | None:
        return None


def restore_array_encoder(state: str | None, model: ModelConfig) -> ArrayEncoder:
    return ArrayEncoder()


def fit_array_encoder(train: Examples, model: ModelConfig) -> ArrayEncoder:
    return ArrayEncoder()


def uniform_input(
    name: str, shape: tuple[int | None, ...]
) -> Callable[[int, int | None, np.random.Generator], np.ndarray]:
    """Seeded float32 inputs uniform in [0, 1), the sequence axis (None) `length` long."""

    def random(batch: int, length: int | None, generator: np.random.Generator) -> np.ndarray:
        sizes = [length if size is None else size for size in shape]
        if None in sizes:
            raise ValueError(f"input {name!r} has a sequence axis: give its length")
        return generator.random((batch, *sizes), dtype=np.float32)

    return random

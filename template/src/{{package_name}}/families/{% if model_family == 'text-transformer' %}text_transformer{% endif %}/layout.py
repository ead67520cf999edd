"""Text array layout and the tokenizer's length: the checks the loaders share."""

from __future__ import annotations

import numpy as np

from ...config import ConfigError, ModelConfig
from ...errors import DatasetError
from ...tokenization import MIN_MAX_LENGTH


def max_tokens(model: ModelConfig) -> int:
    """`model.input_shape` as [max tokens]: the longest sequence the model takes, [CLS]
    and [SEP] included; longer texts are truncated."""
    if len(model.input_shape) != 1 or model.input_shape[0] < MIN_MAX_LENGTH:
        raise ConfigError(
            f"model.input_shape is {list(model.input_shape)}; the text-transformer family "
            f"needs [max tokens] of at least {MIN_MAX_LENGTH}, for example [128]"
        )
    return model.input_shape[0]


def as_texts(values: list[str] | np.ndarray) -> np.ndarray:
    """A 1-d object array of Python strings (what tokenizers and numpy indexing want)."""
    texts = np.empty(len(values), dtype=object)
    texts[:] = [str(value) for value in values]
    return texts


def prepare_array(x: np.ndarray, model: ModelConfig, where: str) -> np.ndarray:
    """Check the texts of an .npz: one string per example."""
    max_tokens(model)
    if x.ndim != 1 or x.dtype.kind != "U":
        raise DatasetError(
            f"{where}: x has shape {list(x.shape)} and dtype {x.dtype}; the text-transformer "
            "family expects one string per example, a 1-d unicode array (np.array(texts))"
        )
    if len(x) == 0:
        raise DatasetError(f"{where}: x holds no examples")
    return as_texts(x)

"""The text family's encoder: the BPE tokenizer trained on the training split
(tokenization.py), kept in the checkpoint and handed to the server in the ONNX file."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import tokenization
from ...config import ConfigError, ModelConfig
from ...errors import ArtifactError
from ..interface import Examples
from .layout import max_tokens

DEFAULT_VOCAB_SIZE = 8000
# The ONNX input the ids go to.
INPUT_NAME = "input_ids"


class TextEncoder:
    def __init__(self, tokenizer_json: str, max_length: int) -> None:
        self.tokenizer_json = tokenizer_json
        self.max_length = max_length
        self.tokenizer = tokenization.load_tokenizer(tokenizer_json, max_length)
        self.vocab_size = self.tokenizer.get_vocab_size()

    def encode(self, x: np.ndarray) -> np.ndarray:
        """int64 ids (N, the longest of the batch up to max_length); padding is masked."""
        return tokenization.encode(self.tokenizer, [str(text) for text in x])

    def compact(self, x: np.ndarray) -> np.ndarray:
        return self.encode(x)

    def state(self) -> str | None:
        return self.tokenizer_json

    def serving_metadata(self) -> dict[str, Any] | None:
        return {
            "kind": "text",
            "input": INPUT_NAME,
            "max_length": self.max_length,
            "tokenizer_sha256": tokenization.sha256(self.tokenizer_json),
            "tokenizer": self.tokenizer_json,
        }


def vocab_size(model: ModelConfig) -> int:
    value = model.hparams.get("vocab_size", DEFAULT_VOCAB_SIZE)
    if isinstance(value, bool) or not isinstance(value, int) or value < 100:
        raise ConfigError(f"model.hparams.vocab_size is {value!r}; give an integer >= 100")
    return value


def fit_text_encoder(train: Examples, model: ModelConfig) -> TextEncoder:
    """A tokenizer trained on the training split's texts (never the test split's)."""
    tokenizer = tokenization.train_tokenizer(train.x, vocab_size(model), max_tokens(model))
    return TextEncoder(tokenization.to_json(tokenizer), max_tokens(model))


def restore_text_encoder(state: str | None, model: ModelConfig) -> TextEncoder:
    if state is None:
        raise ArtifactError("the checkpoint has no tokenizer: train again")
    try:
        return TextEncoder(state, max_tokens(model))
    except tokenization.TokenizerError as error:
        raise ArtifactError(f"the checkpoint's tokenizer {error}: train again") from None

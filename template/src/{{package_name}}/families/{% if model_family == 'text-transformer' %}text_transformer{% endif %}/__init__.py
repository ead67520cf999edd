"""The text-transformer family: a BERT-style encoder classifier over raw text, tokenized
by a BPE tokenizer trained on the training split (the server takes strings)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ... import tokenization
from ...drift import InputSummary
from ..interface import Examples, Family, InputEncoder, ModelInput, PublicDataset
from .encoder import INPUT_NAME, TextEncoder, fit_text_encoder, restore_text_encoder
from .layout import max_tokens, prepare_array
from .public_datasets import download_imdb, download_sst2
from .synthetic import synthetic_examples
from .text_table import load_text_table

if TYPE_CHECKING:
    from ...config import ModelConfig
    from .model import TextTransformer


def build_model(
    model: ModelConfig, encoder: InputEncoder, train_examples: Examples | None = None
) -> TextTransformer:
    # Imported here so that loading data never imports torch.
    from .model import build_model as build

    assert isinstance(encoder, TextEncoder)
    return build(model, encoder)


def model_input(model: ModelConfig, encoder: InputEncoder) -> ModelInput:
    assert isinstance(encoder, TextEncoder)
    vocab = encoder.vocab_size

    def random(batch: int, length: int | None, generator: np.random.Generator) -> np.ndarray:
        """[CLS] and random tokens, each row padded after a random length (masking is
        part of what the parity check covers)."""
        length = length or 1
        ids = generator.integers(len(tokenization.SPECIAL_TOKENS), vocab, size=(batch, length))
        ids[:, 0] = tokenization.CLS_ID
        real = generator.integers(1, length + 1, size=batch)
        ids[np.arange(length)[None, :] >= real[:, None]] = tokenization.PAD_ID
        return ids.astype(np.int64)

    return ModelInput(INPUT_NAME, "int64", (None,), random, max_length=max_tokens(model))


def input_summary(encoder: InputEncoder) -> InputSummary:
    return InputSummary("tokens", pad_id=tokenization.PAD_ID, unknown_id=tokenization.UNKNOWN_ID)


FAMILY = Family(
    name="text-transformer",
    native_source="text-table",
    synthetic_examples=synthetic_examples,
    load_native=load_text_table,
    prepare_array=prepare_array,
    fit_encoder=fit_text_encoder,
    restore_encoder=restore_text_encoder,
    model_input=model_input,
    build_model=build_model,
    input_summary=input_summary,
    public_datasets=(
        PublicDataset(
            "sst2",
            "data/sst2.tsv",
            "SST-2 (68221 labelled movie-review sentences, 2 classes; 7 MiB) as a text table",
            download_sst2,
        ),
        PublicDataset(
            "imdb",
            "data/imdb.tsv",
            "IMDB (50000 labelled movie reviews, 2 classes; 84 MiB) as a text table",
            download_imdb,
        ),
    ),
)

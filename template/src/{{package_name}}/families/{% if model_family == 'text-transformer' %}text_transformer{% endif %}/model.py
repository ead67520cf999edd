"""The text-transformer family's network: a BERT-style encoder classifier.

Token embeddings plus learned position embeddings (as many as `model.input_shape`'s max
tokens), `layers` pre-norm `nn.TransformerEncoderLayer`s with GELU, and a pooled head: the
mean of the final states over the real tokens (padding is masked out of attention and
out of the mean, so padding never changes a row's logits), layer norm, dropout, linear.
The size comes from `model.hparams`: the smoke profile's is tiny, the default profile's
is BERT-mini-like (4 layers, 256 wide, 4 heads).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...config import ConfigError, ModelConfig
from ...tokenization import PAD_ID
from ..hparams import dropout_rate, positive_int, with_defaults
from .encoder import DEFAULT_VOCAB_SIZE, TextEncoder
from .layout import max_tokens

DEFAULT_HPARAMS: dict[str, Any] = {
    # The tokenizer's target size (encoder.py checks it); the embedding table takes the
    # size the tokenizer reached.
    "vocab_size": DEFAULT_VOCAB_SIZE,
    "width": 128,
    "heads": 2,
    "layers": 2,
    "feedforward": 512,
    "dropout": 0.1,
}


class TextTransformer(nn.Module):
    def __init__(
        self,
        vocab: int,
        max_length: int,
        num_classes: int,
        width: int,
        heads: int,
        layers: int,
        feedforward: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, width, padding_idx=PAD_ID)
        self.positions = nn.Embedding(max_length, width)
        layer = nn.TransformerEncoderLayer(
            width,
            heads,
            feedforward,
            dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        # No nested tensors: they speed up padded batches on GPU, but take another code
        # path than the ONNX export traces.
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        padding = ids == PAD_ID
        positions = torch.arange(ids.shape[1], device=ids.device)
        states = self.encoder(
            self.tokens(ids) + self.positions(positions), src_key_padding_mask=padding
        )
        real = (~padding).unsqueeze(-1).to(states.dtype)
        pooled = (states * real).sum(dim=1) / real.sum(dim=1).clamp(min=1.0)
        return self.classifier(self.dropout(self.norm(pooled)))


def build_model(model: ModelConfig, encoder: TextEncoder) -> TextTransformer:
    hparams = _check_hparams(model)
    del hparams["vocab_size"]
    return TextTransformer(encoder.vocab_size, max_tokens(model), model.num_classes, **hparams)


def _check_hparams(model: ModelConfig) -> dict[str, Any]:
    arch = model.arch or "encoder"
    if arch != "encoder":
        raise ConfigError(f"model.arch is {arch!r}; the text-transformer family has encoder")
    hparams = with_defaults(model, DEFAULT_HPARAMS, "the text-transformer family")
    for name in ("width", "heads", "layers", "feedforward"):
        positive_int(hparams, name)
    if hparams["width"] % hparams["heads"]:
        raise ConfigError(
            f"model.hparams.width {hparams['width']} must be a multiple of heads "
            f"{hparams['heads']} (each head takes an equal slice)"
        )
    return {**hparams, "dropout": dropout_rate(hparams)}

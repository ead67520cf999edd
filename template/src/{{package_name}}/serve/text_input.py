"""Raw text in, token ids out: the server side of a text model (tokenization.py).

A text model's ONNX file carries its tokenizer in the `input_encoder` metadata (export.py).
The server then takes strings: its one input is `text`, `BYTES` of shape [batch], and
each request's strings are tokenized on the inference worker, padded to the longest of
the batch (the model masks padding, so a row's logits do not depend on its neighbours),
and run. Tokenization needs `tokenizers`, never torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import StageError
from .protocol import BYTES, Signature, TensorSpec

if TYPE_CHECKING:
    from tokenizers import Tokenizer

TEXT_INPUT = "text"
# Strings per request: each costs a row of up to max_length token ids and attention over
# them, so the count bounds a request's memory and compute. Larger jobs send several
# requests (and adaptive batching, when on, runs them together).
MAX_TEXTS_PER_REQUEST = 64


class TextInputError(StageError):
    """The model's `input_encoder` metadata does not describe a usable tokenizer."""


@dataclass(frozen=True)
class TextInput:
    model_input: str  # the ONNX input the token ids go to
    tokenizer: Tokenizer
    max_length: int
    tokenizer_sha256: str

    @classmethod
    def from_metadata(cls, text: str, model_signature: Signature) -> TextInput:
        """Raises TextInputError saying what is wrong."""
        from .. import tokenization

        try:
            value: dict[str, Any] = json.loads(text)
            kind, model_input = value["kind"], value["input"]
            tokenizer_json, max_length = value["tokenizer"], int(value["max_length"])
        except (ValueError, TypeError, KeyError) as error:
            raise TextInputError(f"is not a text input encoder ({error!r})") from None
        if kind != "text":
            raise TextInputError(f"has kind {kind!r}; this server knows 'text'")
        spec = model_signature.inputs.get(model_input)
        if spec is None or spec.datatype != "INT64" or len(spec.shape) != 2:
            raise TextInputError(
                f"feeds input {model_input!r}, but the model's inputs are "
                f"{[(s.name, s.datatype, list(s.shape)) for s in model_signature.inputs.values()]}"
            )
        try:
            tokenizer = tokenization.load_tokenizer(tokenizer_json, max_length)
        except (tokenization.TokenizerError, ValueError) as error:
            raise TextInputError(f"has a tokenizer that {error}") from None
        return cls(model_input, tokenizer, max_length, tokenization.sha256(tokenizer_json))

    def spec(self) -> TensorSpec:
        """The input clients send: one string per row."""
        return TensorSpec(TEXT_INPUT, BYTES, (-1,), max_elements=MAX_TEXTS_PER_REQUEST)

    def parameters(self) -> dict[str, Any]:
        """What the model metadata says about it."""
        return {
            "tokenizer": "BPE",
            "tokenizer_sha256": self.tokenizer_sha256,
            "max_tokens": self.max_length,
        }

    def prepare(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Token ids for the strings of a request (or a coalesced batch of them)."""
        from ..tokenization import encode

        return {self.model_input: encode(self.tokenizer, inputs[TEXT_INPUT].tolist())}

"""Text to token ids: the tokenizer is part of a text model's contract.

A byte-pair-encoding tokenizer (the `tokenizers` library) is trained on the training split
and travels inside the checkpoint and inside the ONNX file's metadata, so that training,
evaluation, the parity check and the server all turn a string into exactly the same ids,
and no server can pair a model with another tokenizer. Export also writes the same bytes
as `tokenizer.json` beside the model, and the serving image carries it: for clients and
tools that tokenize on their side (`tokenizers.Tokenizer.from_file`). BPE, not WordPiece:
its training is deterministic (the same texts give the same vocabulary, byte for byte),
WordPiece's is not.

Every sequence is `[CLS] tokens... [SEP]`, truncated to `max_length` ids and padded with
`[PAD]` (id 0). The model masks padding, so padding a batch to its longest sequence does
not change any row's logits. Needs `tokenizers` and numpy only: the server imports it
without torch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

PAD, UNKNOWN, CLS, SEP = "[PAD]", "[UNK]", "[CLS]", "[SEP]"
SPECIAL_TOKENS = (PAD, UNKNOWN, CLS, SEP)
PAD_ID, UNKNOWN_ID, CLS_ID, SEP_ID = range(len(SPECIAL_TOKENS))
# [CLS] and [SEP] take two of the ids a sequence may have.
MIN_MAX_LENGTH = 3
# The ONNX metadata key that carries a text model's tokenizer and how to use it (the
# encoder's `serving_metadata`): export writes it, the server reads it.
METADATA_KEY = "input_encoder"


class TokenizerError(ValueError):
    """A tokenizer that is not one this package trained (wrong special tokens, unreadable)."""


def train_tokenizer(texts: Iterable[str], vocab_size: int, max_length: int) -> Tokenizer:
    """A BPE tokenizer with BERT's normalisation (lower case, accents stripped, Chinese
    characters split) and pre-tokenisation (whitespace and punctuation), trained on
    `texts`."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token=UNKNOWN))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer)
    _configure(tokenizer, max_length)
    return tokenizer


def load_tokenizer(text: str, max_length: int) -> Tokenizer:
    """The tokenizer saved as `text` (tokenizer.json); raises TokenizerError."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_str(text)
    except Exception as error:  # the Rust side raises plain Exception subclasses
        raise TokenizerError(f"is not a tokenizer.json ({error})") from None
    for token_id, token in enumerate(SPECIAL_TOKENS):
        if tokenizer.token_to_id(token) != token_id:
            raise TokenizerError(
                f"maps {token} to id {tokenizer.token_to_id(token)}, expected {token_id}"
            )
    _configure(tokenizer, max_length)
    return tokenizer


def _configure(tokenizer: Tokenizer, max_length: int) -> None:
    from tokenizers import processors

    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{CLS} $A {SEP}", special_tokens=[(CLS, CLS_ID), (SEP, SEP_ID)]
    )
    tokenizer.enable_truncation(max_length)
    tokenizer.no_padding()


def encode(tokenizer: Tokenizer, texts: Sequence[str], pad_to: int | None = None) -> np.ndarray:
    """int64 ids (len(texts), length): `pad_to`, or the longest sequence of the batch."""
    encodings = tokenizer.encode_batch(list(texts))
    length = pad_to or max((len(encoding.ids) for encoding in encodings), default=0)
    ids = np.full((len(encodings), length), PAD_ID, dtype=np.int64)
    for row, encoding in enumerate(encodings):
        ids[row, : len(encoding.ids)] = encoding.ids
    return ids


def to_json(tokenizer: Tokenizer) -> str:
    """tokenizer.json's text, with sorted keys: the same tokenizer is the same text."""
    return json.dumps(json.loads(tokenizer.to_str()), sort_keys=True, ensure_ascii=False)


def write_tokenizer_file(input_encoder: Mapping[str, Any] | None, path: Path) -> bool:
    """Write a text model's tokenizer (its `serving_metadata`, as export.json and the ONNX
    metadata record it) to `path`; False, and nothing written, for a model without one."""
    if input_encoder is None or input_encoder.get("kind") != "text":
        return False
    path.write_text(input_encoder["tokenizer"], encoding="utf-8")
    return True


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

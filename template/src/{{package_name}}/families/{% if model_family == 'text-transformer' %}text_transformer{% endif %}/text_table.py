"""Read labelled texts from a table: `data.source: text-table`.

A UTF-8 file with a header row naming (at least) the columns `text` and `label`; `.tsv`
files are tab-separated, anything else is read as CSV (quoted fields may hold commas and
line breaks). Labels are class names; when all of them are integers they are sorted as
numbers. The download commands (`data download-sst2`, `download-imdb`) write this format.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

from ...config import ModelConfig
from ...errors import DatasetError
from ..interface import Examples
from ..labels import sorted_class_names
from .layout import as_texts, max_tokens

REQUIRED_COLUMNS = ("text", "label")


def load_text_table(path: Path, model: ModelConfig) -> Examples:
    max_tokens(model)
    if not path.is_file():
        raise DatasetError(
            f"text table {path} not found: expected a TSV or CSV with columns text and label "
            "(set data.path, or fetch one with `data download-sst2` / `data download-imdb`)"
        )
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    texts: list[str] = []
    labels: list[str] = []
    # Reviews can be long; the default field limit (128 KiB) is about spreadsheets.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        with path.open(newline="", encoding="utf-8") as file:
            reader = csv.DictReader(file, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DatasetError(
                    f"{path} has columns {reader.fieldnames}; it lacks {', '.join(missing)}"
                )
            for line, row in enumerate(reader, start=2):
                text, label = row["text"], row["label"]
                if text is None or label is None or not label.strip():
                    raise DatasetError(f"{path}:{line} lacks a text or a label")
                texts.append(text)
                labels.append(label.strip())
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"cannot read {path} as a UTF-8 table: {error}") from error
    if not texts:
        raise DatasetError(f"{path} holds no examples")
    found = set(labels)
    if len(found) != model.num_classes:
        raise DatasetError(
            f"{path} has {len(found)} distinct labels ({', '.join(sorted(found)[:10])}), but "
            f"model.num_classes is {model.num_classes}"
        )
    class_names = sorted_class_names(found)
    index = {name: position for position, name in enumerate(class_names)}
    y = np.array([index[label] for label in labels], dtype=np.int64)
    return Examples(as_texts(texts), y, class_names)

"""The dataset of a run: load it from the configured source and split it, seeded.

Sources (`data.source`):
- `synthetic`: the family's seeded synthetic dataset (smoke runs and tests);
- `npz`: a NumPy `.npz` with `x` (N, ...) and `y` (N,) integer labels, and an optional
  `class_names` array (see the family's `prepare_array` for accepted layouts);
- the family's native format: `image-folder` (one sub-folder of images per class),
  `sensor-csv` (one row per time step of labelled windows), `text-table` (a TSV or CSV
  with `text` and `label` columns).
The same seed and data always give the same train/validation/test split. Every run
records the sha256 of the data it read (`content_sha256`): the file, the folder's files,
or the synthetic arrays, so a changed dataset shows in metrics.json, in the ONNX metadata
and in the champion it is gated against. Files tracked by DVC come through `datasets.py`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from pathlib import Path

import numpy as np

from . import provenance
from .config import Config
from .errors import DatasetError
from .families import Examples, get_family


@dataclasses.dataclass(frozen=True)
class Splits:
    train: Examples
    validation: Examples
    test: Examples
    # "sha256:<hex>" of the data the splits were cut from (`content_sha256`).
    data_sha256: str = ""


def load_splits(config: Config) -> Splits:
    """Load the configured dataset and split it by the configured fractions and seed."""
    examples = load_examples(config)
    splits = split_examples(
        examples, config.data.validation_fraction, config.data.test_fraction, config.seed
    )
    return dataclasses.replace(splits, data_sha256=content_sha256(config, examples))


def content_sha256(config: Config, examples: Examples) -> str:
    """What identifies the data: the sha256 of the file read; of a folder's files (each
    path and content, in sorted order); or of the synthetic arrays."""
    if config.data.source != "synthetic":
        path = Path(str(config.data.path))
        if path.is_file():
            return "sha256:" + provenance.file_sha256(path)
        return "sha256:" + provenance.tree_sha256(path)
    digest = hashlib.sha256()
    if examples.x.dtype == object:  # texts
        for text in examples.x:
            digest.update(str(text).encode("utf-8") + b"\0")
    else:
        digest.update(np.ascontiguousarray(examples.x).tobytes())
    digest.update(np.ascontiguousarray(examples.y, dtype="<i8").tobytes())
    return "sha256:" + digest.hexdigest()


def load_examples(config: Config) -> Examples:
    """The whole dataset of the configured source, checked against `model.*`."""
    family = get_family(config.model.family)
    source = config.data.source
    if source == "synthetic":
        examples = family.synthetic_examples(config.model, config.data, config.seed)
    elif source == "npz":
        examples = load_npz(Path(str(config.data.path)), config)
    elif source == family.native_source:
        examples = family.load_native(Path(str(config.data.path)), config.model)
    else:
        raise DatasetError(
            f"data.source is {source!r}, which the {family.name} family cannot read: "
            f"use synthetic, npz or {family.native_source}"
        )
    _check_labels(examples.y, config.model.num_classes, where=f"{source} dataset")
    return examples


def load_npz(path: Path, config: Config) -> Examples:
    """Read `x`, `y` and optional `class_names` from an .npz file and check them."""
    if not path.is_file():
        raise DatasetError(
            f"dataset file {path} not found: set data.path to an .npz with arrays x and y, "
            f"or make one with `python -m {__package__} data synthesize` (or `data "
            "download-cifar10`)"
        )
    try:
        # allow_pickle=False: a dataset file must never be able to run code.
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as error:
        raise DatasetError(f"{path} is not a readable .npz file: {error}") from error
    missing = [name for name in ("x", "y") if name not in arrays]
    if missing:
        raise DatasetError(
            f"{path} has arrays {sorted(arrays)}, but lacks {' and '.join(missing)}: "
            "expected x (examples) and y (integer labels)"
        )
    family = get_family(config.model.family)
    x = family.prepare_array(arrays["x"], config.model, str(path))
    y = arrays["y"]
    if y.ndim != 1 or len(y) != len(x):
        raise DatasetError(
            f"{path}: y has shape {list(y.shape)}; expected ({len(x)},), one label per example in x"
        )
    _check_labels(y, config.model.num_classes, where=str(path))
    class_names = _class_names(arrays.get("class_names"), config.model.num_classes, path)
    return Examples(x, y.astype(np.int64), class_names)


def _class_names(names: np.ndarray | None, num_classes: int, path: Path) -> tuple[str, ...]:
    if names is None:
        return tuple(f"class_{index}" for index in range(num_classes))
    if names.ndim != 1 or len(names) != num_classes:
        raise DatasetError(
            f"{path}: class_names has shape {list(names.shape)}; expected ({num_classes},), "
            "one name per class (model.num_classes)"
        )
    return tuple(str(name) for name in names)


def _check_labels(y: np.ndarray, num_classes: int, where: str) -> None:
    if len(y) == 0:
        raise DatasetError(f"{where} holds no examples")
    if not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"{where}: labels have dtype {y.dtype}; expected integers")
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= num_classes:
        raise DatasetError(
            f"{where}: labels range over [{low}, {high}], but model.num_classes is "
            f"{num_classes}: labels must be in [0, {num_classes - 1}]"
        )


def split_sizes(count: int, validation_fraction: float, test_fraction: float) -> tuple[int, ...]:
    """(train, validation, test) sizes for `count` examples."""
    test = int(round(count * test_fraction))
    validation = int(round(count * validation_fraction))
    return count - validation - test, validation, test


def split_examples(
    examples: Examples, validation_fraction: float, test_fraction: float, seed: int
) -> Splits:
    """Shuffle with `seed` and cut into train, validation and test (each non-empty)."""
    count = len(examples)
    train, validation, test = split_sizes(count, validation_fraction, test_fraction)
    if min(train, validation, test) < 1:
        needed = next(
            n
            for n in itertools.count(3)
            if min(split_sizes(n, validation_fraction, test_fraction)) >= 1
        )
        raise DatasetError(
            f"the dataset has {count} example(s): too few for validation_fraction "
            f"{validation_fraction} and test_fraction {test_fraction} (train/validation/test "
            f"would get {train}/{validation}/{test}); every split needs at least one, so "
            f"provide at least {needed} examples"
        )
    # A stream of its own: the split must not change when the data generator draws more.
    order = np.random.default_rng([seed, 1]).permutation(count)
    return Splits(
        train=examples.subset(order[validation + test :]),
        validation=examples.subset(order[test : test + validation]),
        test=examples.subset(order[:test]),
    )


def write_synthetic(config: Config, out: str | Path) -> Path:
    """Write the configured synthetic dataset to an .npz that `data.source: npz` reads."""
    family = get_family(config.model.family)
    examples = family.synthetic_examples(config.model, config.data, config.seed)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Texts are saved as a fixed-width unicode array: .npz files are read without pickle.
    x = examples.x.astype(str) if examples.x.dtype == object else examples.x
    np.savez_compressed(out, x=x, y=examples.y, class_names=np.array(examples.class_names))
    print(f"wrote {len(examples)} synthetic examples {list(examples.x.shape[1:])} to {out}")
    return out

"""Read labelled windows of a multivariate series from a CSV, one row per time step.

Layout (`data.source: sensor-csv`): a header row with the columns `window` (an id shared by
the rows of one example), `label` (its class) and one column per feature (any names; the
order of the columns is the order of the features). The rows of a window are its time
steps in order; every window has `model.input_shape[0]` of them. Labels are class names;
when all of them are integers they are sorted as numbers. For example, for 3 features:

    window,label,acc_x,acc_y,acc_z
    0,walking,0.12,-0.98,0.05
    0,walking,0.15,-0.97,0.04
    ...
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ...config import ModelConfig
from ...errors import DatasetError
from ..interface import Examples
from ..labels import sorted_class_names
from .layout import prepare_array, series_shape

KEY_COLUMNS = ("window", "label")


def load_sensor_csv(path: Path, model: ModelConfig) -> Examples:
    steps, features = series_shape(model)
    if not path.is_file():
        raise DatasetError(
            f"sensor CSV {path} not found: expected a CSV with columns window, label and "
            f"{features} feature columns (set data.path)"
        )
    windows: dict[str, list[list[str]]] = {}
    labels: dict[str, str] = {}
    try:
        with path.open(newline="", encoding="utf-8") as file:
            reader = csv.reader(file)
            header = next(reader, None)
            if header is None or header[:2] != list(KEY_COLUMNS):
                raise DatasetError(
                    f"{path}: the header is {header}; it must start with window,label and "
                    f"name {features} feature columns"
                )
            if len(header) - 2 != features:
                raise DatasetError(
                    f"{path} has {len(header) - 2} feature columns, but model.input_shape "
                    f"says {features} features"
                )
            for line, row in enumerate(reader, start=2):
                if len(row) != len(header):
                    raise DatasetError(
                        f"{path}:{line} has {len(row)} fields, expected {len(header)}"
                    )
                window, label, *values = row
                if labels.setdefault(window, label) != label:
                    raise DatasetError(
                        f"{path}:{line}: window {window} is labelled both "
                        f"{labels[window]!r} and {label!r}"
                    )
                windows.setdefault(window, []).append(values)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"cannot read {path} as a UTF-8 CSV: {error}") from error
    for window, rows in windows.items():
        if len(rows) != steps:
            raise DatasetError(
                f"{path}: window {window} has {len(rows)} time steps, but model.input_shape "
                f"says {steps}: cut the series into windows of {steps} rows"
            )
    try:
        x = np.array(list(windows.values()), dtype=np.float64)
    except ValueError as error:
        raise DatasetError(f"{path} has a value that is not a number: {error}") from error
    found = set(labels.values())
    if len(found) != model.num_classes:
        raise DatasetError(
            f"{path} has {len(found)} distinct labels, but model.num_classes is {model.num_classes}"
        )
    class_names = sorted_class_names(found)
    index = {name: position for position, name in enumerate(class_names)}
    y = np.array([index[labels[window]] for window in windows], dtype=np.int64)
    return Examples(prepare_array(x, model, str(path)), y, class_names)

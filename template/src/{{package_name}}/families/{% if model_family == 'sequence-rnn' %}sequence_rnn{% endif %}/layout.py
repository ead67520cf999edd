"""Series array layout: the checks the .npz and CSV loaders share."""

from __future__ import annotations

import numpy as np

from ...config import ConfigError, ModelConfig
from ...errors import DatasetError


def series_shape(model: ModelConfig) -> tuple[int, int]:
    """`model.input_shape` as (time steps, features); series models need both."""
    if len(model.input_shape) != 2:
        raise ConfigError(
            f"model.input_shape is {list(model.input_shape)}; the sequence-rnn family needs "
            "[time steps, features], for example [128, 9]"
        )
    steps, features = model.input_shape
    return steps, features


def prepare_array(x: np.ndarray, model: ModelConfig, where: str) -> np.ndarray:
    """Check windows of a multivariate series: (N, time steps, features), finite floats."""
    steps, features = series_shape(model)
    if x.ndim != 3 or x.shape[1:] != (steps, features):
        raise DatasetError(
            f"{where}: x has shape {list(x.shape)}, but model.input_shape is "
            f"{[steps, features]}: expected (N, {steps}, {features}), one window of "
            f"{steps} time steps of {features} features per example"
        )
    if len(x) == 0:
        raise DatasetError(f"{where}: x holds no examples")
    if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
        raise DatasetError(f"{where}: x has dtype {x.dtype}; store sensor values as numbers")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise DatasetError(
            f"{where}: x holds NaN or infinity (or values beyond float32): fill or drop "
            "the gaps before training"
        )
    return x

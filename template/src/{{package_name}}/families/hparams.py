"""`model.hparams` checks the families share: a misspelt or out-of-range hyperparameter is
a ConfigError naming it, never a silent default."""

from __future__ import annotations

from typing import Any

from ..config import ConfigError, ModelConfig


def with_defaults(model: ModelConfig, defaults: dict[str, Any], owner: str) -> dict[str, Any]:
    """`defaults` updated with `model.hparams`; unknown keys are refused. `owner` names
    what takes them ("the sequence-rnn family", "arch cnn of the image-cnn family")."""
    unknown = sorted(set(model.hparams) - set(defaults))
    if unknown:
        raise ConfigError(
            f"model.hparams has unknown key(s) {', '.join(unknown)}; {owner} takes "
            f"{', '.join(defaults)}"
        )
    return {**defaults, **model.hparams}


def positive_int(hparams: dict[str, Any], name: str) -> int:
    value = hparams[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"model.hparams.{name} is {value!r}; give a positive integer")
    return value


def dropout_rate(hparams: dict[str, Any]) -> float:
    value = hparams["dropout"]
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ConfigError(f"model.hparams.dropout is {value!r}; give a number in [0, 1)")
    return float(value)

"""Typed configuration loaded from `configs/<profile>.yaml`.

Every stage reads the same file, so a laptop run and a CI job with the same profile do
the same thing. Unknown keys and wrong types are errors: a misspelt threshold must not
silently fall back to a default.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any

from .champion import champion_file
from .errors import StageError


class ConfigError(StageError):
    """The configuration file is missing, malformed or has a value out of range."""


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    family: str
    # Without the batch axis: image-cnn [channels, height, width]; sequence-rnn
    # [time steps, features] (the window length data comes in; the model takes any);
    # text-transformer [max tokens].
    input_shape: tuple[int, ...]
    num_classes: int
    # The family's architecture (image-cnn: cnn | resnet18; sequence-rnn: lstm | gru;
    # text-transformer: encoder); None: the family's default.
    arch: str | None = None
    hparams: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    source: str = "synthetic"
    path: str | None = None
    synthetic_samples: int = 1600
    synthetic_noise: float = 0.35
    synthetic_label_noise: float = 0.0
    validation_fraction: float = 0.15
    test_fraction: float = 0.15


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    epochs: int = 3
    batch_size: int = 64
    learning_rate: float = 0.003
    weight_decay: float = 0.0
    device: str = "auto"
    # local: this process (or torchrun's). cluster: a Kubeflow Trainer TrainJob with the
    # `cluster` section's size, whose output comes back into the artifacts folder.
    launcher: str = "local"


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    """The TrainJob `train` launches when `train.launcher` is `cluster`."""

    num_nodes: int = 1
    procs_per_node: int = 1
    gpus_per_node: int = 0
    cpu: str = "2"
    memory: str = "8Gi"
    timeout_minutes: int = 120
    # The training image by digest (REPOSITORY@sha256:...); null reads TRAINING_IMAGE.
    image: str | None = None


@dataclasses.dataclass(frozen=True)
class GateConfig:
    min_accuracy: float = 0.8
    max_regression: float = 0.01
    # The champion this profile's runs are gated against; None: deploy/champions/<profile>.json,
    # which a promotion to the last environment writes (champion.py).
    champion_metrics: str | None = None


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    opset: int = 18


@dataclasses.dataclass(frozen=True)
class VerifyConfig:
    batch_sizes: tuple[int, ...] = (1, 7, 64)
    # Sequence lengths checked at every batch size, for families whose input has a
    # dynamic sequence axis (sequence-rnn, text-transformer); images have none.
    sequence_lengths: tuple[int, ...] = (1, 16, 64)
    atol: float = 1e-4
    rtol: float = 1e-3


@dataclasses.dataclass(frozen=True)
class Config:
    model: ModelConfig
    data: DataConfig
    train: TrainConfig
    gate: GateConfig
    export: ExportConfig
    verify: VerifyConfig
    cluster: ClusterConfig = ClusterConfig()
    seed: int = 1234
    artifacts_dir: str = "artifacts"
    # Where the file was read from; relative paths in it resolve against the repo root
    # (the current directory), the way CI runs every stage.
    source: str = "<defaults>"
    # The `--set` overrides applied on top of the file, in order: a cluster job is given
    # the same file and the same overrides, so that it trains what this run would.
    overrides: tuple[str, ...] = ()

    @property
    def artifacts(self) -> Path:
        return Path(self.artifacts_dir)

    @property
    def profile(self) -> str:
        """The profile's name: its file's stem (configs/smoke.yaml -> smoke)."""
        return Path(self.source).stem

    @property
    def champion_path(self) -> Path:
        if self.gate.champion_metrics is not None:
            return Path(self.gate.champion_metrics)
        return champion_file(self.profile)


# Every family reads these; each also reads its own native format (families/).
COMMON_DATA_SOURCES = ("synthetic", "npz")
DEVICES = ("auto", "cpu", "cuda")
LAUNCHERS = ("local", "cluster")
# A Kubernetes resource quantity (2, 500m, 8Gi, 1.5) and an image pinned by digest.
_QUANTITY = re.compile(r"\A[0-9]+(\.[0-9]+)?(m|[KMGTPE]i?)?\Z")
_PINNED_IMAGE = re.compile(r"\A[^\s@]+@sha256:[0-9a-f]{64}\Z")


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a profile, apply `section.key=value` overrides, validate, return it typed."""
    # Imported here: the image and GitOps jobs build the command line without PyYAML.
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path} (profiles live in configs/*.yaml)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of sections, not {type(raw).__name__}")
    for override in overrides or []:
        _apply_override(raw, override)
    config = _build(
        Config,
        {**raw, "source": str(path), "overrides": list(overrides or [])},
        where=str(path),
    )
    _check_ranges(config)
    return config


def _apply_override(raw: dict[str, Any], override: str) -> None:
    key, sep, value = override.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {override!r} must look like section.key=value")
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {override!r}: {part} is not a section")
    import yaml

    # YAML parsing gives numbers, booleans, lists and null their natural types.
    node[leaf] = yaml.safe_load(value)


def _build(cls: type, values: Any, where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {values!r}")
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(fields)}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}: {name}")
    try:
        return cls(**kwargs)
    except TypeError as error:  # a required key is missing
        raise ConfigError(f"{where}: {error}") from error


def _coerce(hint: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _coerce(inner, value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return tuple(_coerce(args[0], item, where) for item in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return dict(value)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is Any or (isinstance(value, hint) and not (hint is int and isinstance(value, bool))):
        return value
    raise ConfigError(f"{where} must be {hint.__name__}, got {value!r}")


def _check_ranges(config: Config) -> None:
    where = config.source
    problems = []
    from .families import get_family  # here: families import this module

    sources = (*COMMON_DATA_SOURCES, get_family(config.model.family).native_source)
    if config.data.source not in sources:
        problems.append(
            f"data.source is {config.data.source!r}; the {config.model.family} family reads "
            f"{', '.join(sources)}"
        )
    if config.data.source != "synthetic" and not config.data.path:
        problems.append(f"data.path is required when data.source is {config.data.source!r}")
    for name in ("validation_fraction", "test_fraction"):
        value = getattr(config.data, name)
        # Training reports validation metrics each epoch; the gate needs a held-out test set.
        if not 0 < value < 1:
            problems.append(f"data.{name} is {value}; give a fraction in (0, 1)")
    if not 0 <= config.data.synthetic_label_noise < 1:
        problems.append(
            f"data.synthetic_label_noise is {config.data.synthetic_label_noise}; "
            "give a fraction in [0, 1)"
        )
    if config.data.synthetic_samples < 1:
        problems.append("data.synthetic_samples must be at least 1")
    if config.data.synthetic_noise < 0:
        problems.append("data.synthetic_noise must not be negative")
    if config.data.validation_fraction + config.data.test_fraction >= 0.9:
        problems.append("data.validation_fraction + data.test_fraction leave under 10% to train on")
    if config.train.device not in DEVICES:
        problems.append(f"train.device is {config.train.device!r}; choose one of {DEVICES}")
    for name in ("epochs", "batch_size"):
        if getattr(config.train, name) < 1:
            problems.append(f"train.{name} must be at least 1")
    if config.train.launcher not in LAUNCHERS:
        problems.append(f"train.launcher is {config.train.launcher!r}; choose one of {LAUNCHERS}")
    problems += _cluster_problems(config.cluster)
    if config.train.learning_rate <= 0 or config.train.weight_decay < 0:
        problems.append("train.learning_rate must be positive and train.weight_decay not negative")
    if config.export.opset < 18:
        problems.append(
            f"export.opset is {config.export.opset}; the dynamo ONNX exporter needs 18 or newer"
        )
    if config.verify.atol < 0 or config.verify.rtol < 0:
        problems.append("verify.atol and verify.rtol must not be negative")
    for name in ("min_accuracy", "max_regression"):
        value = getattr(config.gate, name)
        if not 0 <= value <= 1:
            problems.append(f"gate.{name} is {value}; give a fraction between 0 and 1")
    if config.model.num_classes < 2:
        problems.append("model.num_classes must be at least 2")
    if any(dim < 1 for dim in config.model.input_shape):
        problems.append(
            f"model.input_shape {list(config.model.input_shape)} has a non-positive size"
        )
    if not config.verify.batch_sizes or min(config.verify.batch_sizes) < 1:
        problems.append("verify.batch_sizes must list positive batch sizes")
    if not config.verify.sequence_lengths or min(config.verify.sequence_lengths) < 1:
        problems.append("verify.sequence_lengths must list positive lengths")
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems))


def _cluster_problems(cluster: ClusterConfig) -> list[str]:
    problems = []
    for name in ("num_nodes", "procs_per_node", "timeout_minutes"):
        if getattr(cluster, name) < 1:
            problems.append(f"cluster.{name} must be at least 1")
    if cluster.gpus_per_node < 0:
        problems.append("cluster.gpus_per_node must not be negative")
    elif 0 < cluster.gpus_per_node < cluster.procs_per_node:
        # NCCL gives every rank a GPU of its own.
        problems.append(
            f"cluster.procs_per_node is {cluster.procs_per_node} but a node has "
            f"{cluster.gpus_per_node} GPU(s): use at most one process per GPU"
        )
    for name in ("cpu", "memory"):
        if not _QUANTITY.match(getattr(cluster, name)):
            problems.append(
                f"cluster.{name} is {getattr(cluster, name)!r}, not a Kubernetes quantity "
                "(for example 4, 500m, 16Gi)"
            )
    if cluster.image is not None and not _PINNED_IMAGE.match(cluster.image):
        problems.append(
            f"cluster.image is {cluster.image!r}: pin it by digest, REPOSITORY@sha256:<64 hex>"
        )
    return problems

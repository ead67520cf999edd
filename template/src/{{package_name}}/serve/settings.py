"""Server settings: environment variables (how a container is configured), command line
flags overriding them (how a person on a laptop configures it).

One typed class read from the environment with pydantic-settings (`env_prefix="SERVER_"`,
as MLServer's settings do): SERVER_PORT sets `port`. Flags keep their own short names
(`--model`) and win over the environment. Every value, from either, goes through the
field's parser below, so a bad value is a one-line error naming the variable or flag and
what is wrong, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from .. import MODEL_NAME
from ..errors import StageError

LOG_LEVELS = ("debug", "info", "warning", "error")


def usable_cpus() -> int:
    """The cores this process may use: the cgroup's CPU limit (a pod's limits.cpu),
    rounded up, else the CPUs it is pinned to."""
    cores = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text(encoding="ascii").split()
    except (OSError, ValueError):
        return cores
    if quota == "max":
        return cores
    return max(1, min(cores, math.ceil(int(quota) / int(period))))


class SettingsError(StageError):
    """An environment variable or flag has a value the server cannot use."""


ENV_PREFIX = "SERVER_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    host: str = "0.0.0.0"
    port: int = 8080
    model_path: Path = Path("artifacts/model.onnx")
    model_name: str = MODEL_NAME
    # One thread per inference keeps latency predictable and lets replicas, not threads,
    # scale throughput; raise it for large models on dedicated cores.
    intra_op_threads: int = 1
    # Inferences running at once, on threads of their own. One per core the container
    # may use: more only time-slice the cores and stretch the tail.
    inference_workers: int = Field(default_factory=lambda: usable_cpus())
    # Complete requests waiting for a worker, first in first out; beyond it: 503.
    max_queue: int = 64
    # Adaptive batching (batching.py), opt-in: queued requests coalesced into one run of
    # up to this many rows; 1 runs every request on its own.
    max_batch_size: int = 1
    # How long a worker that found requests waiting may wait for more to fill a batch.
    # 0: take what is queued and never wait; on 2 cores a wait of 0.5-2 ms cost a small
    # model up to 45% of its throughput at concurrency 16 (README.md, "Batching").
    max_batch_delay_seconds: float = 0.0
    # None: derived from the memory limit (memory.py). Set, they can only be lowered.
    max_json_body_bytes: int | None = None
    max_binary_body_bytes: int | None = None
    # The container's memory limit (the Deployment passes resources.limits.memory);
    # None: read from the cgroup.
    memory_limit_bytes: int | None = None
    request_timeout_seconds: float = 10.0
    drain_seconds: float = 15.0
    keepalive_seconds: float = 5.0
    max_connections: int = 1024
    log_level: str = "info"
    log_sample_rate: float = 0.0

    @field_validator("*", mode="before")
    @classmethod
    def _parse_text(cls, value: Any, info: Any) -> Any:
        """Text (an environment variable, a flag) through the field's parser; values
        given in code are taken as they are."""
        if isinstance(value, str):
            return PARSERS[info.field_name](value)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # `load_settings` reads the environment it is given (the process's, or a test's)
        # through `_environment_values`; constructing Settings reads only its arguments.
        return (init_settings,)


@dataclasses.dataclass(frozen=True)
class _Option:
    field: str
    flag: str
    parse: Callable[[str], object]
    metavar: str
    help: str

    @property
    def env(self) -> str:
        """The variable pydantic-settings reads the field from."""
        return ENV_PREFIX + self.field.upper()


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError("is not an integer") from None


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("must be a finite number")
    return value


def _non_negative_int(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise ValueError("must be at least 0")
    return value


def _positive_int(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _port(text: str) -> int:
    value = _integer(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be between 0 and 65535 (0 picks a free port)")
    return value


def _non_negative_seconds(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise ValueError("must be a number of seconds >= 0")
    return value


def _positive_seconds(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise ValueError("must be a number of seconds > 0")
    return value


def _fraction(text: str) -> float:
    value = _number(text)
    if not 0 <= value <= 1:
        raise ValueError("must be a fraction between 0 and 1")
    return value


def _log_level(text: str) -> str:
    value = text.strip().lower()
    if value not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return value


def _non_empty(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text.strip()


OPTIONS: tuple[_Option, ...] = (
    _Option("host", "--host", _non_empty, "ADDRESS", "address to listen on"),
    _Option("port", "--port", _port, "PORT", "TCP port (0 picks a free one)"),
    _Option("model_path", "--model", Path, "PATH", "ONNX model file"),
    _Option(
        "model_name",
        "--model-name",
        _non_empty,
        "NAME",
        "name in /v2/models/NAME",
    ),
    _Option(
        "intra_op_threads",
        "--intra-op-threads",
        _positive_int,
        "N",
        "onnxruntime threads per inference",
    ),
    _Option(
        "inference_workers",
        "--inference-workers",
        _positive_int,
        "N",
        "inferences running at once (default: the usable CPU cores)",
    ),
    _Option(
        "max_queue",
        "--max-queue",
        _non_negative_int,
        "N",
        "complete requests waiting for a worker; more get 503",
    ),
    _Option(
        "max_batch_size",
        "--max-batch-size",
        _positive_int,
        "ROWS",
        "coalesce queued requests into batches of up to this many rows (1: off)",
    ),
    _Option(
        "max_batch_delay_seconds",
        "--max-batch-delay-seconds",
        _non_negative_seconds,
        "SECONDS",
        "wait at most this long for a batch to fill, only while requests are queued",
    ),
    _Option(
        "max_json_body_bytes",
        "--max-json-body-bytes",
        _positive_int,
        "BYTES",
        "largest JSON request body (default: derived from the memory limit)",
    ),
    _Option(
        "max_binary_body_bytes",
        "--max-binary-body-bytes",
        _positive_int,
        "BYTES",
        "largest binary-tensor request body (default: derived from the memory limit)",
    ),
    _Option(
        "memory_limit_bytes",
        "--memory-limit-bytes",
        _positive_int,
        "BYTES",
        "the container's memory limit (default: the cgroup's)",
    ),
    _Option(
        "request_timeout_seconds",
        "--request-timeout-seconds",
        _positive_seconds,
        "SECONDS",
        "a request's headers and body must arrive within this (else 408)",
    ),
    _Option(
        "drain_seconds",
        "--drain-seconds",
        _non_negative_seconds,
        "SECONDS",
        "on SIGTERM, how long in-flight requests may take to finish",
    ),
    _Option(
        "keepalive_seconds",
        "--keepalive-seconds",
        _positive_seconds,
        "SECONDS",
        "idle keep-alive connections are closed after this long",
    ),
    _Option(
        "max_connections",
        "--max-connections",
        _positive_int,
        "N",
        "open connections served at once (more get one answer, then close)",
    ),
    _Option(
        "log_level",
        "--log-level",
        _log_level,
        "LEVEL",
        "debug, info, warning or error; debug logs every request",
    ),
    _Option(
        "log_sample_rate",
        "--log-sample-rate",
        _fraction,
        "FRACTION",
        "share of successful requests logged at info (failures always are)",
    ),
)

PARSERS: dict[str, Callable[[str], object]] = {option.field: option.parse for option in OPTIONS}
OPTION_OF_FIELD: dict[str, _Option] = {option.field: option for option in OPTIONS}

# Settings that were renamed: a deployment that still sets them gets told, not ignored.
RENAMED = {
    "SERVER_HTTP_THREADS": "SERVER_INFERENCE_WORKERS (the transport no longer has a "
    "thread per connection)",
    "SERVER_MAX_BODY_BYTES": "SERVER_MAX_JSON_BODY_BYTES and SERVER_MAX_BINARY_BODY_BYTES "
    "(derived from the memory limit when unset)",
}


def _environment_values(environ: Mapping[str, str]) -> dict[str, Any]:
    """The SERVER_* variables of `environ`, by field, as pydantic-settings maps them."""
    for old, new in RENAMED.items():
        if old in environ:
            raise SettingsError(f"{old} is no longer read: use {new}")
    # pydantic-settings matches names without regard to case (its default): it lower-cases
    # the variables it loads, as done here for the mapping given.
    source = EnvSettingsSource(Settings, env_prefix=ENV_PREFIX)
    source.env_vars = {name.lower(): value for name, value in environ.items()}
    return {name: value for name, value in source().items() if name in Settings.model_fields}


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve the ONNX model over the Open Inference Protocol v2 (REST). "
        "Every flag can also be set by the environment variable shown; the flag wins.",
    )
    for option in OPTIONS:
        default = getattr(Settings(), option.field)
        default = "unset" if default is None else default
        parser.add_argument(
            option.flag,
            dest=option.field,
            default=None,
            metavar=option.metavar,
            help=f"{option.help} [{option.env}, default: {default}]",
        )
    return parser


def load_settings(argv: Sequence[str], environ: Mapping[str, str], prog: str = "serve") -> Settings:
    """Defaults, overridden by environment variables, overridden by flags."""
    values = _environment_values(environ)
    sources = {name: OPTION_OF_FIELD[name].env for name in values}
    flags = vars(_parser(prog).parse_args(list(argv)))
    for option in OPTIONS:
        if flags[option.field] is not None:
            values[option.field] = flags[option.field]
            sources[option.field] = option.flag
    try:
        return Settings(**values)
    except ValidationError as error:
        # The first problem, in the words of the field's parser, naming where it came from.
        (field, *_), message = error.errors()[0]["loc"], error.errors()[0]["msg"]
        text = values.get(str(field))
        raise SettingsError(
            f"{sources.get(str(field), field)}={text!r} {message.removeprefix('Value error, ')}"
        ) from None

"""Server settings: environment variables (how a container is configured), command line
flags overriding them (how a person on a laptop configures it).

A bad value is a one-line error naming the variable or flag, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

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


@dataclasses.dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 8080
    model_path: Path = Path("artifacts/model.onnx")
    model_name: str = MODEL_NAME
    # One thread per inference keeps latency predictable and lets replicas, not threads,
    # scale throughput; raise it for large models on dedicated cores.
    intra_op_threads: int = 1
    # Inferences running at once, on threads of their own. One per core the container
    # may use: more only time-slice the cores and stretch the tail.
    inference_workers: int = dataclasses.field(default_factory=lambda: usable_cpus())
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


@dataclasses.dataclass(frozen=True)
class _Option:
    field: str
    env: str
    flag: str
    parse: Callable[[str], object]
    metavar: str
    help: str


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
    _Option("host", "SERVER_HOST", "--host", _non_empty, "ADDRESS", "address to listen on"),
    _Option("port", "SERVER_PORT", "--port", _port, "PORT", "TCP port (0 picks a free one)"),
    _Option("model_path", "SERVER_MODEL_PATH", "--model", Path, "PATH", "ONNX model file"),
    _Option(
        "model_name",
        "SERVER_MODEL_NAME",
        "--model-name",
        _non_empty,
        "NAME",
        "name in /v2/models/NAME",
    ),
    _Option(
        "intra_op_threads",
        "SERVER_INTRA_OP_THREADS",
        "--intra-op-threads",
        _positive_int,
        "N",
        "onnxruntime threads per inference",
    ),
    _Option(
        "inference_workers",
        "SERVER_INFERENCE_WORKERS",
        "--inference-workers",
        _positive_int,
        "N",
        "inferences running at once (default: the usable CPU cores)",
    ),
    _Option(
        "max_queue",
        "SERVER_MAX_QUEUE",
        "--max-queue",
        _non_negative_int,
        "N",
        "complete requests waiting for a worker; more get 503",
    ),
    _Option(
        "max_batch_size",
        "SERVER_MAX_BATCH_SIZE",
        "--max-batch-size",
        _positive_int,
        "ROWS",
        "coalesce queued requests into batches of up to this many rows (1: off)",
    ),
    _Option(
        "max_batch_delay_seconds",
        "SERVER_MAX_BATCH_DELAY_SECONDS",
        "--max-batch-delay-seconds",
        _non_negative_seconds,
        "SECONDS",
        "wait at most this long for a batch to fill, only while requests are queued",
    ),
    _Option(
        "max_json_body_bytes",
        "SERVER_MAX_JSON_BODY_BYTES",
        "--max-json-body-bytes",
        _positive_int,
        "BYTES",
        "largest JSON request body (default: derived from the memory limit)",
    ),
    _Option(
        "max_binary_body_bytes",
        "SERVER_MAX_BINARY_BODY_BYTES",
        "--max-binary-body-bytes",
        _positive_int,
        "BYTES",
        "largest binary-tensor request body (default: derived from the memory limit)",
    ),
    _Option(
        "memory_limit_bytes",
        "SERVER_MEMORY_LIMIT_BYTES",
        "--memory-limit-bytes",
        _positive_int,
        "BYTES",
        "the container's memory limit (default: the cgroup's)",
    ),
    _Option(
        "request_timeout_seconds",
        "SERVER_REQUEST_TIMEOUT_SECONDS",
        "--request-timeout-seconds",
        _positive_seconds,
        "SECONDS",
        "a request's headers and body must arrive within this (else 408)",
    ),
    _Option(
        "drain_seconds",
        "SERVER_DRAIN_SECONDS",
        "--drain-seconds",
        _non_negative_seconds,
        "SECONDS",
        "on SIGTERM, how long in-flight requests may take to finish",
    ),
    _Option(
        "keepalive_seconds",
        "SERVER_KEEPALIVE_SECONDS",
        "--keepalive-seconds",
        _positive_seconds,
        "SECONDS",
        "idle keep-alive connections are closed after this long",
    ),
    _Option(
        "max_connections",
        "SERVER_MAX_CONNECTIONS",
        "--max-connections",
        _positive_int,
        "N",
        "open connections served at once (more get one answer, then close)",
    ),
    _Option(
        "log_level",
        "SERVER_LOG_LEVEL",
        "--log-level",
        _log_level,
        "LEVEL",
        "debug, info, warning or error; debug logs every request",
    ),
    _Option(
        "log_sample_rate",
        "SERVER_LOG_SAMPLE_RATE",
        "--log-sample-rate",
        _fraction,
        "FRACTION",
        "share of successful requests logged at info (failures always are)",
    ),
)

# Settings that were renamed: a deployment that still sets them gets told, not ignored.
RENAMED = {
    "SERVER_HTTP_THREADS": "SERVER_INFERENCE_WORKERS (the transport no longer has a "
    "thread per connection)",
    "SERVER_MAX_BODY_BYTES": "SERVER_MAX_JSON_BODY_BYTES and SERVER_MAX_BINARY_BODY_BYTES "
    "(derived from the memory limit when unset)",
}


def _parse(option: _Option, text: str, source: str) -> object:
    try:
        return option.parse(text)
    except ValueError as error:
        raise SettingsError(f"{source}={text!r} {error}") from None


def _from_environment(environ: Mapping[str, str]) -> dict[str, object]:
    for old, new in RENAMED.items():
        if old in environ:
            raise SettingsError(f"{old} is no longer read: use {new}")
    values: dict[str, object] = {}
    for option in OPTIONS:
        if option.env in environ:
            values[option.field] = _parse(option, environ[option.env], option.env)
    return values


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
    values = _from_environment(environ)
    flags = vars(_parser(prog).parse_args(list(argv)))
    for option in OPTIONS:
        text = flags[option.field]
        if text is not None:
            values[option.field] = _parse(option, text, option.flag)
    return Settings(**values)  # type: ignore[arg-type]

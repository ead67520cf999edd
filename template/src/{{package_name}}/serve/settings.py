"""Server settings: environment variables (how a container is configured), command line
flags overriding them (how a person on a laptop configures it).

A bad value is a one-line error naming the variable or flag, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .. import MODEL_NAME
from ..errors import StageError

LOG_LEVELS = ("debug", "info", "warning", "error")


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
    # How many requests run an inference at once (each connection has its own thread;
    # the rest wait for a slot). Also bounds memory: at most this many bodies are held.
    http_threads: int = 4
    max_body_bytes: int = 64 * 1024 * 1024
    drain_seconds: float = 15.0
    keepalive_seconds: float = 5.0
    max_connections: int = 256
    log_level: str = "info"


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
        "http_threads",
        "SERVER_HTTP_THREADS",
        "--http-threads",
        _positive_int,
        "N",
        "inferences running at once",
    ),
    _Option(
        "max_body_bytes",
        "SERVER_MAX_BODY_BYTES",
        "--max-body-bytes",
        _positive_int,
        "BYTES",
        "largest request body accepted (larger: 413)",
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
        "open connections accepted at once (more are closed)",
    ),
    _Option(
        "log_level",
        "SERVER_LOG_LEVEL",
        "--log-level",
        _log_level,
        "LEVEL",
        "debug, info, warning or error; debug logs every request",
    ),
)


def _parse(option: _Option, text: str, source: str) -> object:
    try:
        return option.parse(text)
    except ValueError as error:
        raise SettingsError(f"{source}={text!r} {error}") from None


def _from_environment(environ: Mapping[str, str]) -> dict[str, object]:
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

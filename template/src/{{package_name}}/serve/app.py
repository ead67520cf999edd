"""Endpoints: route a parsed HTTP request and build its response. No sockets - the
transport (`server.py`) reads requests and writes what this returns, and tests can call
it directly.

Endpoints (Open Inference Protocol v2, REST):
  GET  /v2                               server metadata
  GET  /v2/health/live                   200 while the process runs
  GET  /v2/health/ready                  200 when the model is loaded; 503 loading, draining
                                         or saturated (the inference queue is full)
  GET  /v2/models/<name>                 model metadata (inputs, outputs, versions)
  GET  /v2/models/<name>/ready           model readiness
  POST /v2/models/<name>/infer           inference (JSON or binary tensors)
  GET  /metrics                          Prometheus
The model paths also answer under /v2/models/<name>/versions/<version>/..., as Triton's
clients send them when a version is given.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import orjson

from . import protocol
from .batching import Batch, plan_batches, run_batch
from .logs import log_event
from .metrics import ServerMetrics
from .monitoring import Monitor
from .protocol import HEADER_LENGTH_HEADER, JSON_CONTENT_TYPE, ProtocolError
from .runtime import InferenceError, ModelRuntime

# Endpoint names label the metrics; "unknown" collects every path that matches no endpoint.
ENDPOINTS = (
    "server_metadata",
    "health_live",
    "health_ready",
    "model_metadata",
    "model_ready",
    "infer",
    "metrics",
    "unknown",
)
SERVER_NAME = "modelyard-onnxruntime"


class Headers(Protocol):
    def get(self, name: str, default: None = None) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = JSON_CONTENT_TYPE
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[bytes, Headers], Response]


@dataclass(frozen=True, slots=True)
class Route:
    endpoint: str
    method: str  # the one method it answers; "" for the catch-all 404
    handler: Handler

    def allows(self, method: str) -> bool:
        return not self.method or method == self.method


_LIVE = Response(200, orjson.dumps({"live": True}))
_READY = Response(200, orjson.dumps({"ready": True}))
_NOT_READY = Response(503, orjson.dumps({"ready": False}))


class InferenceApp:
    def __init__(
        self,
        model_name: str,
        server_version: str,
        metrics: ServerMetrics,
        logger: logging.Logger,
    ) -> None:
        self.model_name = model_name
        self._metrics = metrics
        self._logger = logger
        self._runtime: ModelRuntime | None = None
        self._monitor: Monitor | None = None
        self._draining = False
        self._saturated: str | None = None
        self._server_metadata = Response(200, protocol.server_metadata(SERVER_NAME, server_version))
        self._model_metadata = error_response(503, "the model is still loading")
        self._routes = self._build_routes(version=None)

    @property
    def ready(self) -> bool:
        return self._runtime is not None and not self._draining

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def runtime(self) -> ModelRuntime | None:
        return self._runtime

    def set_runtime(self, runtime: ModelRuntime) -> None:
        """Serve `runtime` from now on: readiness turns 200 unless draining."""
        info = runtime.info
        parameters = {
            "model_name": info.name,
            "git_commit": info.git_commit,
            "metrics_digest": info.metrics_digest,
            "data_sha256": info.data_sha256,
            "class_names": list(info.class_names),
            # A text model says how it tokenizes what clients send.
            **(runtime.text.parameters() if runtime.text is not None else {}),
        }
        self._model_metadata = Response(
            200,
            protocol.model_metadata(self.model_name, info.version, runtime.signature, parameters),
        )
        self._routes = self._build_routes(version=info.version)
        self._monitor = Monitor(runtime.model_signature, info.class_names, info.reference)
        self._metrics.drift.monitor = self._monitor
        self._runtime = runtime
        self._metrics.model_loaded(
            {
                "served_as": self.model_name,
                "name": info.name,
                "version": info.version,
                "git_commit": info.git_commit,
                "metrics_digest": info.metrics_digest,
            },
            runtime.load_seconds,
        )
        self._metrics.set_ready(self.ready)

    def set_saturated(self, reason: str | None) -> None:
        """While `reason` is set, readiness answers 503 with it: the inference queue is
        full, and Kubernetes should route new requests to other replicas."""
        self._saturated = reason

    def start_draining(self) -> None:
        """Readiness turns 503 so that load balancers stop sending; requests still work."""
        self._draining = True
        self._metrics.set_ready(False)

    def route(self, path: str) -> Route:
        route = self._routes.get(path.partition("?")[0])
        if route is not None:
            return route
        message = self._not_found_message(path.partition("?")[0])
        return Route("unknown", "", lambda body, headers: error_response(404, message))

    def method_not_allowed(self, route: Route, method: str, path: str) -> Response:
        return Response(
            405,
            protocol.error_body(f"{method} is not allowed on {clip(path)}: use {route.method}"),
            headers=(("Allow", route.method),),
        )

    def handle(
        self, route: Route, method: str, path: str, body: bytes, headers: Headers
    ) -> Response:
        """The endpoint's response; the caller has checked `route.allows(method)`."""
        try:
            return route.handler(body, headers)
        except Exception as error:
            return self._error_response(error, method, path)

    def infer(
        self, requests: Sequence[tuple[bytes, Headers]], max_batch_size: int = 1
    ) -> list[Response]:
        """Answer inference requests that waited together, in order. Each is decoded and
        answered on its own; with `max_batch_size` > 1, neighbours whose inputs fit run
        as one batch (`batching.py`)."""
        runtime = self._runtime
        answers: list[Response | None] = [None] * len(requests)
        decoded: list[protocol.InferRequest] = []
        positions: list[int] = []
        for position, (body, headers) in enumerate(requests):
            try:
                decoded.append(self._decode(runtime, body, headers))
                positions.append(position)
            except Exception as error:
                answers[position] = self._error_response(error, "POST", "infer")
        assert runtime is not None or not decoded  # _decode refuses while loading
        for batch in plan_batches(decoded, max_batch_size):
            for member, answer in zip(
                batch.positions, self._run(runtime, batch, decoded), strict=True
            ):
                answers[positions[member]] = answer
        return answers  # type: ignore[return-value]  # every position was answered

    def _decode(
        self, runtime: ModelRuntime | None, body: bytes, headers: Headers
    ) -> protocol.InferRequest:
        if runtime is None:
            raise ProtocolError(
                "the model is still loading: retry when /v2/health/ready answers 200", 503
            )
        header_length = protocol.parse_header_length(headers.get(HEADER_LENGTH_HEADER))
        return protocol.decode_infer_request(body, header_length, runtime.signature)

    def _run(
        self, runtime: ModelRuntime, batch: Batch, decoded: list[protocol.InferRequest]
    ) -> list[Response]:
        monitor = self._monitor

        def predict(inputs: dict[str, np.ndarray], names: list[str]) -> list[np.ndarray]:
            started = time.perf_counter()
            model_inputs = runtime.prepare(inputs)
            results = runtime.predict(model_inputs, names)
            rows = next(iter(inputs.values())).shape[0]
            self._metrics.inference_finished(time.perf_counter() - started, rows)
            if monitor is not None:
                monitor.observe(model_inputs, dict(zip(names, results, strict=True)))
            return results

        try:
            outputs = run_batch(batch, decoded, predict)
        except InferenceError as error:
            if len(batch.positions) > 1:
                # One request's inputs may be what onnxruntime refuses: run each alone,
                # so that the others are still answered.
                return [
                    answer
                    for position, rows in zip(batch.positions, batch.rows, strict=True)
                    for answer in self._run(runtime, Batch((position,), (rows,)), decoded)
                ]
            return [self._error_response(error, "POST", "infer")]
        except Exception as error:
            return [self._error_response(error, "POST", "infer")] * len(batch.positions)
        answers = []
        for position, named in zip(batch.positions, outputs, strict=True):
            request = decoded[position]
            results = ((output, named[output.name]) for output in request.outputs)
            payload, json_length = protocol.encode_infer_response(
                self.model_name, runtime.info.version, request.id, results
            )
            if json_length is None:
                answers.append(Response(200, payload))
            else:
                answers.append(
                    Response(
                        200,
                        payload,
                        protocol.BINARY_CONTENT_TYPE,
                        ((HEADER_LENGTH_HEADER, str(json_length)),),
                    )
                )
        return answers

    def _error_response(self, error: Exception, method: str, path: str) -> Response:
        if isinstance(error, ProtocolError):
            return error_response(error.status, str(error))
        if isinstance(error, InferenceError):
            log_event(self._logger, logging.ERROR, "inference_failed", error=str(error))
            return error_response(500, f"inference failed: {error}")
        self._logger.error(
            "internal_error",
            exc_info=error,
            extra={"fields": {"path": clip(path), "method": method}},
        )
        return error_response(500, f"internal error: {type(error).__name__}")

    def _build_routes(self, version: str | None) -> dict[str, Route]:
        routes = {
            "/v2": Route("server_metadata", "GET", lambda body, headers: self._server_metadata),
            "/v2/health/live": Route("health_live", "GET", lambda body, headers: _LIVE),
            "/v2/health/ready": Route("health_ready", "GET", self._health_ready),
            "/metrics": Route("metrics", "GET", self._metrics_text),
        }
        prefixes = [f"/v2/models/{self.model_name}"]
        if version is not None:
            prefixes.append(f"/v2/models/{self.model_name}/versions/{version}")
        for prefix in prefixes:
            routes[prefix] = Route("model_metadata", "GET", lambda body, h: self._model_metadata)
            routes[f"{prefix}/ready"] = Route("model_ready", "GET", self._model_ready)
            routes[f"{prefix}/infer"] = Route("infer", "POST", self._infer)
        return routes

    def _health_ready(self, body: bytes, headers: Headers) -> Response:
        if not self.ready:
            return _NOT_READY
        if self._saturated is not None:
            return Response(503, orjson.dumps({"ready": False, "saturated": self._saturated}))
        return _READY

    def _model_ready(self, body: bytes, headers: Headers) -> Response:
        ready = self.ready
        return Response(
            200 if ready else 503, orjson.dumps({"name": self.model_name, "ready": ready})
        )

    def _metrics_text(self, body: bytes, headers: Headers) -> Response:
        text, content_type = self._metrics.exposition(headers.get("Accept"))
        return Response(200, text, content_type)

    def _infer(self, body: bytes, headers: Headers) -> Response:
        return self.infer([(body, headers)])[0]

    def _not_found_message(self, path: str) -> str:
        models_prefix = "/v2/models/"
        if path.startswith(models_prefix):
            requested, _, rest = path[len(models_prefix) :].partition("/")
            if requested != self.model_name:
                return (
                    f"model '{clip(requested)}' is not served here: this server serves "
                    f"'{self.model_name}'"
                )
            runtime = self._runtime
            if rest.startswith("versions/") and runtime is not None:
                version = rest[len("versions/") :].partition("/")[0]
                if version != runtime.info.version:
                    return (
                        f"model '{self.model_name}' has no version '{clip(version)}': the "
                        f"served version is '{runtime.info.version}'"
                    )
            if rest.startswith("versions/") and runtime is None:
                return f"model '{self.model_name}' is still loading: its version is not known yet"
            return (
                f"no endpoint at {clip(path)}: model '{self.model_name}' answers "
                f"GET {models_prefix}{self.model_name}, GET .../ready and POST .../infer"
            )
        return (
            f"no endpoint at {clip(path)}: see GET /v2, /v2/health/live, /v2/health/ready, "
            f"/v2/models/{self.model_name}, POST /v2/models/{self.model_name}/infer, GET /metrics"
        )


def error_response(status: int, message: str, *, retry_after: bool = False) -> Response:
    """`{"error": message}` with `status`; `retry_after` adds Retry-After: 1 (503s that
    a client should retry soon)."""
    headers = (("Retry-After", "1"),) if retry_after else ()
    return Response(status, protocol.error_body(message), headers=headers)


def clip(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."

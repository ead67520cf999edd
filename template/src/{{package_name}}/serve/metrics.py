"""Prometheus metrics of the server, in a registry of its own (so that several servers in
one test process do not collide in prometheus_client's global registry).

Per-request cost is a few microseconds (a dictionary lookup and a handful of locked adds):
labelled children are looked up once and cached, never rebuilt per request.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder

from .monitoring import DriftCollector

NAMESPACE = "modelserver"

# From 100 us (a tiny model answering over loopback) to 10 s (a big batch on a busy node).
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

# Why a request failed, by HTTP status: stable label values for alerts.
_ERROR_REASONS = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    431: "headers_too_large",
    500: "internal",
    503: "unavailable",
}


class ServerMetrics:
    def __init__(self, endpoints: tuple[str, ...]) -> None:
        # `*_created` timestamps double the exposition and no dashboard reads them.
        disable_created_metrics()
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._requests = Counter(
            "requests",
            "HTTP requests answered, by endpoint and status code",
            ["endpoint", "code"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self._errors = Counter(
            "errors",
            "HTTP requests answered with an error status (readiness 503s excluded), by reason",
            ["endpoint", "reason"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        latency = Histogram(
            "request_duration_seconds",
            "Time from reading the request line to writing the response",
            ["endpoint"],
            namespace=NAMESPACE,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "requests_in_flight",
            "HTTP requests being handled now",
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self._inference_seconds = Histogram(
            "inference_duration_seconds",
            "Time spent in onnxruntime per session.run: one request, or a coalesced batch",
            namespace=NAMESPACE,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # A counter, not a batch-size histogram: one add per run instead of two, and
        # rate(samples) / rate(inference_duration_seconds_count) is the mean batch size.
        self._samples = Counter(
            "inference_samples",
            "Samples inferred (the batch sizes of inference requests, summed)",
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self._rejected_connections = Counter(
            "rejected_connections",
            "Connections over SERVER_MAX_CONNECTIONS: answered once (503 unless a probe), "
            "then closed",
            namespace=NAMESPACE,
            registry=self.registry,
        )
        shed = Counter(
            "shed_requests",
            "Requests refused to protect the server, by reason: queue (SERVER_MAX_QUEUE "
            "full), memory (the memory budget held by requests in flight), timeout "
            "(SERVER_REQUEST_TIMEOUT_SECONDS passed before the request was complete)",
            ["reason"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self._shed = {reason: shed.labels(reason) for reason in ("queue", "memory", "timeout")}
        self.inference_queue = Gauge(
            "inference_queue",
            "Complete inference requests running or waiting for a worker",
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self._ready = Gauge(
            "ready",
            "1 when the model is loaded and the server is not draining",
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self._model = Info(
            "model",
            "The served model, from the ONNX metadata written by the export stage",
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self._model_load_seconds = Gauge(
            "model_load_seconds",
            "Time to load the ONNX model and run one warm-up inference",
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.drift = DriftCollector()
        self.registry.register(self.drift)
        self._latency = {endpoint: latency.labels(endpoint) for endpoint in endpoints}
        self._request_counters: dict[tuple[str, int], object] = {}

    def request_finished(self, endpoint: str, status: int, seconds: float) -> None:
        counter = self._request_counters.get((endpoint, status))
        if counter is None:
            counter = self._requests.labels(endpoint, str(status))
            self._request_counters[(endpoint, status)] = counter
        counter.inc()  # type: ignore[attr-defined]
        self._latency[endpoint].observe(seconds)
        if status >= 400 and not (status == 503 and endpoint.endswith("ready")):
            self._errors.labels(endpoint, _ERROR_REASONS.get(status, str(status))).inc()

    def inference_finished(self, seconds: float, batch_size: int) -> None:
        self._inference_seconds.observe(seconds)
        self._samples.inc(batch_size)

    def connection_rejected(self) -> None:
        self._rejected_connections.inc()

    def request_shed(self, reason: str) -> None:
        self._shed[reason].inc()

    def model_loaded(self, labels: dict[str, str], load_seconds: float) -> None:
        self._model.info(labels)
        self._model_load_seconds.set(load_seconds)

    def set_ready(self, ready: bool) -> None:
        self._ready.set(1 if ready else 0)

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The text format Prometheus asked for (Accept header) and its content type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

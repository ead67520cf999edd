"""The HTTP transport and `main()` of `python -m <package> serve`.

HTTP/1.1 with keep-alive on an asyncio event loop (uvloop when installed), requests parsed
by httptools (llhttp, the parser of Node.js and uvicorn). Inferences run on a pool of
SERVER_INFERENCE_WORKERS threads fed first-in first-out; everything else (probes,
metadata, metrics, reading and writing) runs on the loop, so that what a client does
with its connection never costs inference capacity:

- one deadline (SERVER_REQUEST_TIMEOUT_SECONDS) covers a request's headers and body: a
  client that sends a byte every few seconds gets a 408, not a worker;
- a request joins the inference queue only once its whole body is in, and the queue is
  bounded (SERVER_MAX_QUEUE): beyond it the answer is 503 with Retry-After, and readiness
  says the server is saturated, so that Kubernetes routes elsewhere;
- every body reserves what decoding it can cost before it is read (`memory.py`), so the
  requests in flight stay under the container's memory limit;
- probes and /metrics are answered on the loop, past a full queue and past the
  connection cap; connections over SERVER_MAX_CONNECTIONS get one answer (probes
  normally, anything else a 503) and are closed;
- every response is written with one `send` (status line, headers and body together), on
  a connection with TCP_NODELAY (asyncio sets it).

Measured against a thread-per-connection transport, uvicorn and granian: README.md, "Serving".

Graceful shutdown, for Kubernetes and for PID 1 in a container: on SIGTERM (or SIGINT)
readiness turns 503, the listener closes, idle keep-alive connections are closed, requests
in flight finish (their connections then close), and the process exits 0 - or 1 when
requests were still running after SERVER_DRAIN_SECONDS.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import logging
import os
import random
import resource
import secrets
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Sequence
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING

import httptools
import orjson

from .. import __version__
from ..errors import StageError
from .app import ENDPOINTS, InferenceApp, Response, Route, clip, error_response
from .batching import InferenceQueue, check_batchable
from .logs import configure_logging, log_event
from .memory import (
    TRIM_AFTER_BYTES,
    BodyLimits,
    MemoryBudgetError,
    Reservations,
    container_memory_limit,
    derive_body_limits,
    release_freed,
    resident_bytes,
)
from .metrics import ServerMetrics
from .protocol import HEADER_LENGTH_HEADER
from .settings import Settings, load_settings

try:
    import uvloop
except ImportError:  # the serve extra installs it; plain asyncio works too, slower
    uvloop = None

if TYPE_CHECKING:
    from .runtime import ModelRuntime

PACKAGE = __package__.rpartition(".")[0]
MAX_URL_BYTES = 65536
MAX_HEADER_BYTES = 65536  # all header lines together
MAX_HEADERS = 100
# After refusing a body (413, a malformed request), keep reading and dropping what the
# client still sends for up to this long before closing: closing a socket with unread
# input makes the kernel send a reset, and the client would lose the error response.
LINGER_SECONDS = 2.0
# Endpoints answered on the event loop, also past the connection cap: what Kubernetes
# and Prometheus call must never wait behind inferences.
_ALWAYS_ANSWERED = frozenset({"health_live", "health_ready", "metrics"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_REASONS = {status.value: status.phrase for status in HTTPStatus}
_HEADER_LENGTH = HEADER_LENGTH_HEADER.lower()
_REQUEST_ID_CHARS = 128


class ServeError(StageError):
    """The server cannot start (for example: the port is taken)."""


class RequestHeaders(dict[str, str]):
    """Request headers by lower-cased name; `get` takes any case, as HTTP wants."""

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return dict.get(self, name.lower(), default)


class _Request:
    __slots__ = (
        "method",
        "path",
        "version",
        "headers",
        "route",
        "body",
        "received",
        "keep_alive",
        "request_id",
        "reserved",
        "started",
        "refusal",
    )

    def __init__(self, started: float) -> None:
        self.method = ""
        self.path = ""
        self.version = "1.1"
        self.headers = RequestHeaders()
        self.route: Route | None = None
        self.body: bytearray | None = None
        self.received = 0
        self.keep_alive = True
        self.request_id = ""
        self.reserved = 0
        self.started = started
        # A response decided before the body was read (413, 503...): sent once the
        # request is complete, or right away when the body is not going to be read.
        self.refusal: Response | None = None


class _Transport:
    """What every connection shares: settings, app, metrics, the inference pool, the
    queue and memory accounting. Touched from the event loop's thread only."""

    def __init__(
        self,
        settings: Settings,
        app: InferenceApp,
        metrics: ServerMetrics,
        logger: logging.Logger,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.settings = settings
        self.app = app
        self.metrics = metrics
        self.logger = logger
        self.loop = loop
        self.pool = concurrent.futures.ThreadPoolExecutor(
            settings.inference_workers, thread_name_prefix="inference"
        )
        # Of (connection, request) pairs.
        self.queue = InferenceQueue(settings.max_batch_size, settings.max_batch_delay_seconds)
        self.inferences = 0  # running plus queued
        self.capacity = settings.inference_workers + settings.max_queue
        self.limits = derive_body_limits(
            None,
            0,
            settings.inference_workers,
            settings.max_json_body_bytes,
            settings.max_binary_body_bytes,
        )
        self.reservations = Reservations(None)
        self.connections: set[_Connection] = set()
        self.draining = False
        self.all_closed = threading.Event()

    def set_limits(self, limits: BodyLimits) -> None:
        self.limits = limits
        self.reservations = Reservations(limits.body_budget_bytes)

    def saturation_changed(self) -> None:
        self.metrics.inference_queue.set(self.inferences)
        queued = max(0, self.inferences - self.settings.inference_workers)
        saturated = self.inferences >= self.capacity
        self.app.set_saturated(
            f"{queued} inferences queued (SERVER_MAX_QUEUE={self.settings.max_queue})"
            if saturated
            else None
        )

    def connection_closed(self, connection: _Connection) -> None:
        self.connections.discard(connection)
        if self.draining and not self.connections:
            self.all_closed.set()


class _Connection(asyncio.Protocol):
    """One client connection: parses requests, answers them one at a time, in order."""

    def __init__(self, shared: _Transport) -> None:
        self.shared = shared
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.client = ""
        self.request: _Request | None = None  # being received
        self.pending: deque[_Request] = deque()  # received, waiting for their turn
        self.busy = False  # a response is being produced
        self.closing = False
        self.over_capacity = False
        self.refused = False  # a request was refused mid-way: nothing after it is parsed
        self.served = 0
        self.header_bytes = 0
        self.url = bytearray()
        self.timer: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        shared = self.shared
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.client = peer[0] if peer else ""
        if len(shared.connections) >= shared.settings.max_connections:
            self.over_capacity = True
            shared.metrics.connection_rejected()
            log_event(
                shared.logger,
                logging.WARNING,
                "connection_over_capacity",
                reason=f"{shared.settings.max_connections} connections open "
                "(SERVER_MAX_CONNECTIONS): one answer, then close",
                client=self.client,
            )
        shared.connections.add(self)
        self._arm(shared.settings.keepalive_seconds, self._idle_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self._disarm()
        in_flight = self.shared.metrics.in_flight
        request, self.request = self.request, None
        if request is not None:
            self._release(request)
            in_flight.dec()
        if self.busy and self.pending:
            self.pending.popleft()  # its inference is running: _inference_done counts it
        while self.pending:
            self._release(self.pending.popleft())
            in_flight.dec()
        self.shared.connection_closed(self)

    def data_received(self, data: bytes) -> None:
        if self.closing or self.refused:
            return  # lingering after a refusal: drop what still arrives
        if self.request is None and not self.pending and not self.busy:
            self._disarm()  # the keep-alive wait is over; the request deadline starts
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse_now(400, "protocol upgrades are not supported: use HTTP/1.1")
        except httptools.HttpParserError as error:
            self._refuse_now(400, _parser_message(error))

    # --- httptools callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.refused:
            return
        self.request = _Request(time.perf_counter())
        self.shared.metrics.in_flight.inc()
        self.header_bytes = 0
        self.url.clear()
        if self.timer is None:
            self._arm(self.shared.settings.request_timeout_seconds, self._request_timeout)

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > MAX_URL_BYTES:
            self._refuse_now(414, f"the request target is longer than {MAX_URL_BYTES} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        request = self.request
        assert request is not None
        self.header_bytes += len(name) + len(value) + 4
        if self.header_bytes > MAX_HEADER_BYTES:
            self._refuse_now(431, f"the request headers are longer than {MAX_HEADER_BYTES} bytes")
            return
        if len(request.headers) >= MAX_HEADERS:
            self._refuse_now(431, f"the request has more than {MAX_HEADERS} header lines")
            return
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        previous = dict.get(request.headers, key)
        request.headers[key] = text if previous is None else f"{previous}, {text}"

    def on_headers_complete(self) -> None:
        request = self.request
        if request is None or self.closing:
            return
        parser = self.parser
        version = parser.get_http_version()
        request.method = parser.get_method().decode("latin-1")
        request.path = self.url.decode("latin-1")
        if version not in ("1.1", "1.0"):
            if version == "0.9":
                self._refuse_now(
                    400, f"malformed request line: no HTTP version after {clip(request.path)!r}"
                )
            else:
                self._refuse_now(505, f"HTTP version {version!r} is not supported: use HTTP/1.1")
            return
        request.version = version
        request.keep_alive = parser.should_keep_alive()
        headers = request.headers
        request.request_id = _request_id(headers.get("x-request-id"))
        route = self.shared.app.route(request.path)
        request.route = route
        if not route.allows(request.method):
            request.refusal = self.shared.app.method_not_allowed(
                route, request.method, request.path
            )
            if headers.get("content-length", "0") != "0" or "transfer-encoding" in headers:
                self._refuse_now(response=request.refusal)
            return
        if "transfer-encoding" in headers:
            self._refuse_now(411, "chunked request bodies are not supported: send Content-Length")
            return
        declared = headers.get("content-length")
        if declared is None:
            if request.method in _BODY_METHODS:
                self._refuse_now(411, f"{request.method} needs a Content-Length header")
            return
        length = int(declared)  # llhttp has checked it is a byte count
        if route.endpoint != "infer":
            if length > MAX_HEADER_BYTES:
                self._refuse_now(413, f"{route.endpoint} takes no request body of {length} bytes")
            return
        self._admit_body(request, length)

    def on_body(self, body: bytes) -> None:
        request = self.request
        if request is None or request.body is None:
            return  # a body nobody reads (a GET's, a refused request's)
        end = request.received + len(body)
        request.body[request.received : end] = body
        request.received = end

    def on_message_complete(self) -> None:
        request, self.request = self.request, None
        if request is None or self.closing:
            return
        self._disarm()
        self.pending.append(request)
        if not self.busy:
            self._next()
        if self.pending and self.transport is not None:
            # Pipelined requests wait here: read no more until they are answered.
            self.transport.pause_reading()

    # --- admission ----------------------------------------------------------------------

    def _admit_body(self, request: _Request, length: int) -> None:
        shared = self.shared
        app = shared.app
        if app.runtime is None:
            self._refuse_now(
                503,
                "the model is still loading: retry when /v2/health/ready answers 200",
                retry_after=True,
            )
            return
        binary = _HEADER_LENGTH in request.headers
        limit = shared.limits.max_binary_body_bytes if binary else shared.limits.max_json_body_bytes
        if length > limit:
            kind, setting = (
                ("binary", "SERVER_MAX_BINARY_BODY_BYTES")
                if binary
                else ("JSON", "SERVER_MAX_JSON_BODY_BYTES")
            )
            self._refuse_now(
                413,
                f"the request body is {length} bytes; the limit for {kind} requests is "
                f"{limit} ({setting}, derived from the memory limit unless set)",
            )
            return
        if not shared.reservations.try_reserve(length):
            shared.metrics.request_shed("memory")
            self._refuse_now(
                503,
                f"the requests in flight hold the memory budget for request bodies "
                f"({shared.reservations.budget} bytes): retry shortly",
                retry_after=True,
            )
            return
        request.reserved = length
        request.body = bytearray(length)
        if request.headers.get("expect", "").lower() == "100-continue" and self.transport:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    # --- answering ---------------------------------------------------------------------

    def _next(self) -> None:
        """Answer the oldest received request."""
        if not self.pending or self.closing:
            return
        request = self.pending[0]
        self.busy = True
        shared = self.shared
        route = request.route
        if request.refusal is not None or route is None:
            self._respond(request, request.refusal or error_response(400, "bad request"))
            return
        if self.over_capacity and route.endpoint not in _ALWAYS_ANSWERED:
            request.keep_alive = False
            self._respond(
                request,
                error_response(
                    503,
                    f"{shared.settings.max_connections} connections are open "
                    "(SERVER_MAX_CONNECTIONS): retry on a new connection",
                    retry_after=True,
                ),
            )
            return
        if route.endpoint != "infer":
            self._respond(
                request,
                shared.app.handle(route, request.method, request.path, b"", request.headers),
            )
            return
        if shared.inferences >= shared.capacity:
            shared.metrics.request_shed("queue")
            self._respond(
                request,
                error_response(
                    503,
                    f"{shared.settings.inference_workers} inferences are running and "
                    f"{shared.settings.max_queue} waiting (SERVER_MAX_QUEUE): retry shortly",
                    retry_after=True,
                ),
            )
            return
        shared.inferences += 1
        shared.saturation_changed()
        shared.queue.put((self, request))
        shared.pool.submit(_run_inferences, shared)

    def inference_done(self, request: _Request, response: Response) -> None:
        shared = self.shared
        shared.inferences -= 1
        shared.saturation_changed()
        if self.closing:  # the client left while its inference ran
            shared.metrics.in_flight.dec()
            return
        self._respond(request, response)

    def _respond(self, request: _Request, response: Response) -> None:
        shared = self.shared
        if self.pending and self.pending[0] is request:
            self.pending.popleft()
        keep_alive = request.keep_alive and not shared.draining and not self.over_capacity
        keep_alive = keep_alive and not self.closing
        self._write(request, response, keep_alive)
        shared.metrics.in_flight.dec()
        seconds = time.perf_counter() - request.started
        endpoint = request.route.endpoint if request.route else "unknown"
        shared.metrics.request_finished(endpoint, response.status, seconds)
        _log_request(
            shared.logger,
            shared.settings.log_sample_rate,
            request,
            response,
            endpoint,
            seconds,
            self.client,
        )
        self._release(request)
        self.served += 1
        self.busy = False
        if not keep_alive:
            self._close(linger=request.refusal is not None and response.status >= 400)
        elif self.pending:
            self._next()  # a pipelined request: reading resumes once it is answered
        else:
            if self.transport is not None:
                self.transport.resume_reading()
            if self.request is None:
                self._arm(shared.settings.keepalive_seconds, self._idle_timeout)

    def _write(self, request: _Request, response: Response, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        body = response.body
        if body.startswith(b'{"error":') and body.endswith(b"}"):
            # An error body (protocol.error_body): name the request too.
            body = body[:-1] + b',"request_id":' + orjson.dumps(request.request_id) + b"}"
        lines = [
            f"HTTP/1.1 {response.status} {_REASONS.get(response.status, '')}\r\n"
            f"Date: {_http_date()}\r\n"
            f"Content-Type: {response.content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
        ]
        lines.extend(f"{name}: {value}\r\n" for name, value in response.headers)
        if request.request_id:
            lines.append(f"X-Request-Id: {request.request_id}\r\n")
        traceparent = request.headers.get("traceparent")
        if traceparent is not None and len(traceparent) <= _REQUEST_ID_CHARS:
            lines.append(f"traceparent: {traceparent}\r\n")
        if not keep_alive:
            lines.append("Connection: close\r\n")
        elif request.version == "1.0":
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        if request.method == "HEAD":
            transport.write(head)
        else:
            transport.write(head + body if len(body) <= 65536 else head)
            if len(body) > 65536:
                transport.write(body)

    def _refuse_now(
        self,
        status: int = 400,
        message: str = "",
        *,
        retry_after: bool = False,
        response: Response | None = None,
    ) -> None:
        """Answer before the request is complete (or when it cannot be parsed), then close:
        the connection's input is in an unknown state (unread body, broken framing)."""
        if self.closing:
            return
        request = self.request
        if request is None:  # nothing of it was parsed (the parser refused the first bytes)
            request = _Request(time.perf_counter())
            self.shared.metrics.in_flight.inc()
        self.request = None
        self.refused = True
        if request.route is None:
            request.route = self.shared.app.route(request.path) if request.path else None
        request.refusal = response or error_response(status, message, retry_after=retry_after)
        request.keep_alive = False
        if self.busy or self.pending:
            # Earlier requests on this connection are still being answered: answer them
            # first, in order; this one closes the connection after its answer.
            self.pending.append(request)
            if self.transport is not None:
                self.transport.pause_reading()
            return
        self.pending.append(request)
        self.busy = True
        self._respond(request, request.refusal)

    def _release(self, request: _Request) -> None:
        if request.reserved:
            self.shared.reservations.release(request.reserved)
            request.reserved = 0
        request.body = None

    # --- timers and closing --------------------------------------------------------------

    def _arm(self, seconds: float, callback) -> None:  # type: ignore[no-untyped-def]
        self._disarm()
        self.timer = self.shared.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _idle_timeout(self) -> None:
        self.timer = None
        if self.request is None and not self.busy and not self.pending:
            self._close(linger=False)

    def _request_timeout(self) -> None:
        self.timer = None
        if self.request is None:
            return
        request = self.request
        received = "headers" if request.route is None else f"{request.received} body bytes"
        self.shared.metrics.request_shed("timeout")
        seconds = self.shared.settings.request_timeout_seconds
        self._refuse_now(
            408,
            f"the request was not complete after {seconds:g} s "
            f"(SERVER_REQUEST_TIMEOUT_SECONDS; received: {received})",
        )

    def close_if_idle(self) -> None:
        if self.request is None and not self.busy and not self.pending and self.served:
            self._close(linger=False)

    def _close(self, linger: bool) -> None:
        transport = self.transport
        self.closing = True
        self._disarm()
        if transport is None or transport.is_closing():
            return
        if linger and transport.can_write_eof():
            # Half-close: the answer goes out, what the client still sends is read and
            # dropped (data_received ignores it) until it stops or the linger ends.
            transport.write_eof()
            self.timer = self.shared.loop.call_later(LINGER_SECONDS, transport.close)
            transport.resume_reading()
        else:
            transport.close()


def _run_inferences(shared: _Transport) -> None:
    """On an inference worker: the oldest queued requests (several when batching),
    decoded, run and encoded; each answer goes back to its connection on the loop."""
    jobs = shared.queue.take()
    if not jobs:  # an earlier worker took this submission's request into its batch
        return
    bodies: list[tuple[bytes, RequestHeaders]] = []
    for _, request in jobs:
        bodies.append((request.body if request.body is not None else bytearray(), request.headers))
        request.body = None  # `bodies` holds the only references: freed before the trim
    try:
        responses = shared.app.infer(bodies, shared.settings.max_batch_size)
    except Exception as error:  # InferenceApp.infer answers its own errors: this is a bug
        shared.logger.error("internal_error", exc_info=error)
        responses = [error_response(500, f"internal error: {type(error).__name__}")] * len(jobs)
    large = any(len(body) >= TRIM_AFTER_BYTES for body, _ in bodies)
    del bodies
    if large:
        release_freed()
    for (connection, request), response in zip(jobs, responses, strict=True):
        shared.loop.call_soon_threadsafe(connection.inference_done, request, response)
    if shared.queue.max_batch_size > 1:
        # Batching: hand the CPU to the event loop before taking the next batch, so that
        # it writes these answers and reads what arrived meanwhile into the queue, which
        # fills the next batch. Measured at concurrency 16 on one core: 9-15% more binary
        # and 3-4% more JSON requests per second. Without batching the same switch, even
        # at most once per ms, costs 13-15% (README, "Serving"): not done there.
        os.sched_yield()


class InferenceServer:
    """The listener, its event loop (in a thread of its own), the inference pool and the
    app. `main()` drives it from signals; tests drive it directly (`start`, `load_model`,
    `drain`)."""

    def __init__(self, settings: Settings, logger: logging.Logger) -> None:
        self.settings = settings
        self.logger = logger
        self.metrics = ServerMetrics(ENDPOINTS)
        self.app = InferenceApp(settings.model_name, __version__, self.metrics, logger)
        self._loop = uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()
        self._shared = _Transport(settings, self.app, self.metrics, logger, self._loop)
        _raise_open_files_limit(settings.max_connections)
        try:
            self._socket = _listen(settings.host, settings.port)
        except OSError as error:
            self._loop.close()
            raise ServeError(
                f"cannot listen on {settings.host}:{settings.port}: {error.strerror or error}"
            ) from None
        self._port = self._socket.getsockname()[1]
        self._listener: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._run_loop, name="http", daemon=True)

    @property
    def port(self) -> int:
        return self._port

    @property
    def limits(self) -> BodyLimits:
        """The body limits in force: derived from the memory left once the model loaded."""
        return self._shared.limits

    @property
    def open_connections(self) -> int:
        return len(self._shared.connections)

    def start(self) -> None:
        async def listen() -> None:
            self._listener = await self._loop.create_server(
                lambda: _Connection(self._shared), sock=self._socket, backlog=1024
            )

        self._thread.start()
        asyncio.run_coroutine_threadsafe(listen(), self._loop).result(timeout=10)

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def load_model(self) -> ModelRuntime:
        """Load and warm up the model, derive the body limits from the memory left, and
        turn ready."""
        from .runtime import ModelRuntime

        runtime = ModelRuntime.load(self.settings.model_path, self.settings.intra_op_threads)
        unbatchable = check_batchable(runtime.signature)
        if self.settings.max_batch_size > 1 and unbatchable is not None:
            raise ServeError(
                f"SERVER_MAX_BATCH_SIZE={self.settings.max_batch_size} asks for batching, but "
                f"{unbatchable}: export it with a dynamic batch axis, or set "
                "SERVER_MAX_BATCH_SIZE=1"
            )
        memory_limit = self.settings.memory_limit_bytes or container_memory_limit()
        try:
            limits = derive_body_limits(
                memory_limit,
                resident_bytes(),
                self.settings.inference_workers,
                self.settings.max_json_body_bytes,
                self.settings.max_binary_body_bytes,
            )
        except MemoryBudgetError as error:
            raise ServeError(str(error)) from None
        self._call_on_loop(lambda: self._shared.set_limits(limits))
        self.app.set_runtime(runtime)
        return runtime

    def connection_sockets(self) -> list[socket.socket]:
        """The open connections' sockets (for tests and debugging)."""
        return self._call_on_loop(
            lambda: [c.transport.get_extra_info("socket") for c in self._shared.connections]
        )

    def receiving_requests(self) -> int:
        """Connections in the middle of receiving a request."""
        return self._call_on_loop(
            lambda: sum(c.request is not None for c in self._shared.connections)
        )

    def _call_on_loop(self, function):  # type: ignore[no-untyped-def]
        """`function()`, run on the event loop's thread (where the connections live)."""
        if not self._thread.is_alive():
            return function()
        done: concurrent.futures.Future = concurrent.futures.Future()

        def call() -> None:
            try:
                done.set_result(function())
            except Exception as error:
                done.set_exception(error)

        self._loop.call_soon_threadsafe(call)
        return done.result(timeout=10)

    def drain(self, timeout: float) -> bool:
        """Stop taking work and wait up to `timeout` s for in-flight requests; True when
        every connection closed in time. The server is stopped afterwards."""
        self.app.start_draining()
        shared = self._shared
        if not self._thread.is_alive():
            self._socket.close()
            return True

        def begin() -> None:
            shared.draining = True
            if self._listener is not None:
                self._listener.close()
            log_event(self.logger, logging.INFO, "listener_closed", port=self.port)
            for connection in list(shared.connections):
                connection.close_if_idle()
            if not shared.connections:
                shared.all_closed.set()

        self._call_on_loop(begin)
        drained = shared.all_closed.wait(timeout)
        self._stop()
        return drained

    def _stop(self) -> None:
        def close_all() -> None:
            for connection in list(self._shared.connections):
                if connection.transport is not None:
                    connection.transport.abort()

        with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
            self._call_on_loop(close_all)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._shared.pool.shutdown(wait=False, cancel_futures=True)
        self._socket.close()


def main(argv: Sequence[str] | None = None) -> int:
    started = time.perf_counter()
    settings = load_settings(list(argv or []), os.environ, prog=f"python -m {PACKAGE} serve")
    logger = configure_logging(settings.log_level)
    # SIGTERM and SIGINT get a handler (as PID 1 in a container a signal left at its
    # default is ignored) that does nothing but let Python write the signal number to a
    # socket, which the main thread reads once the server is up: no shutdown work runs
    # inside a signal handler, and a signal that arrives while the model loads waits there.
    signal_reader, signal_writer = socket.socketpair()
    signal_writer.setblocking(False)
    previous_handlers = {sig: signal.signal(sig, _record_signal) for sig in _STOP_SIGNALS}
    previous_wakeup = signal.set_wakeup_fd(signal_writer.fileno(), warn_on_full_buffer=False)
    try:
        server = InferenceServer(settings, logger)
        server.start()
        log_event(
            logger,
            logging.INFO,
            "listening",
            host=settings.host,
            port=server.port,
            model_file=str(settings.model_path),
        )
        try:
            runtime = server.load_model()
        except StageError as error:
            log_event(logger, logging.ERROR, "model_load_failed", error=str(error))
            server.drain(0)
            raise
        # Everything allocated so far (modules, the session) lives as long as the process:
        # keep the garbage collector from walking it again on every full collection.
        gc.freeze()
        limits = server.limits
        log_event(
            logger,
            logging.INFO,
            "ready",
            model=settings.model_name,
            version=runtime.info.version,
            onnx_model_name=runtime.info.name,
            git_commit=runtime.info.git_commit,
            model_file=str(settings.model_path),
            port=server.port,
            load_seconds=round(runtime.load_seconds, 4),
            startup_seconds=round(time.perf_counter() - started, 4),
            intra_op_threads=settings.intra_op_threads,
            inference_workers=settings.inference_workers,
            max_queue=settings.max_queue,
            max_batch_size=settings.max_batch_size,
            resident_bytes=resident_bytes(),
            memory_budget_bytes=limits.budget_bytes,
            body_budget_bytes=limits.body_budget_bytes,
            max_json_body_bytes=limits.max_json_body_bytes,
            max_binary_body_bytes=limits.max_binary_body_bytes,
        )
        received = signal_reader.recv(1)[0]
        log_event(
            logger,
            logging.INFO,
            "draining",
            signal=signal.Signals(received).name,
            drain_seconds=settings.drain_seconds,
            open_connections=server.open_connections,
        )
        drained = server.drain(settings.drain_seconds)
        log_event(
            logger,
            logging.INFO if drained else logging.WARNING,
            "stopped",
            drained=drained,
            open_connections=server.open_connections,
        )
        return 0 if drained else 1
    finally:
        signal.set_wakeup_fd(previous_wakeup)
        for sig, handler in previous_handlers.items():
            if handler is not None:  # None: a handler installed outside Python; leave ours
                signal.signal(sig, handler)
        signal_reader.close()
        signal_writer.close()


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _record_signal(signum: int, frame: object) -> None:
    """Nothing to do: Python has already written `signum` to the wake-up socket."""


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(1024)
        listener.setblocking(False)
    except OSError:
        listener.close()
        raise
    return listener


def _raise_open_files_limit(max_connections: int) -> None:
    # Each connection is a file descriptor; many images start with a soft limit of 1024.
    # The hard limit is ours to take.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _request_id(sent: str | None) -> str:
    """The client's X-Request-Id when it is a sane token, else a new one."""
    if sent and len(sent) <= _REQUEST_ID_CHARS and sent.isprintable() and sent.isascii():
        return sent
    return secrets.token_hex(8)


def _parser_message(error: Exception) -> str:
    # llhttp's reasons, in the words of the headers a client sent.
    text = str(error)
    if "Content-Length" in text and "Duplicate" in text:
        return "the request has conflicting Content-Length headers"
    if "Content-Length" in text and "Transfer-Encoding" in text:
        return "the request has both Content-Length and Transfer-Encoding"
    if "Content-Length" in text:
        return "Content-Length is not a byte count"
    if "header" in text.lower() or "whitespace" in text.lower():
        return f"malformed header line ({text})"
    return f"malformed request ({text})"


def _log_request(
    logger: logging.Logger,
    sample_rate: float,
    request: _Request,
    response: Response,
    endpoint: str,
    seconds: float,
    client: str,
) -> None:
    # Failures are always worth a line (503s from loading or draining are expected and
    # said once by the startup and drain lines: info). Successes are logged at info for
    # a sample of requests (SERVER_LOG_SAMPLE_RATE); probes only at debug.
    status = response.status
    if status >= 500 and status != 503:
        level = logging.ERROR
    elif status >= 400 and status != 503:
        level = logging.WARNING
    elif endpoint in _ALWAYS_ANSWERED or status == 503:
        level = logging.DEBUG if status < 400 else logging.INFO
    elif random.random() < sample_rate:
        level = logging.INFO
    else:
        level = logging.DEBUG
    if not logger.isEnabledFor(level):
        return
    fields: dict[str, object] = {
        "method": request.method,
        "path": clip(request.path, 200),
        "endpoint": endpoint,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
        "client": client,
        "request_id": request.request_id,
    }
    traceparent = request.headers.get("traceparent")
    if traceparent:
        fields["traceparent"] = traceparent[:_REQUEST_ID_CHARS]
    if status >= 400:
        with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
            fields["error"] = orjson.loads(response.body).get("error")
    log_event(logger, level, "request", **fields)


_cached_date: tuple[int, str] = (0, "")


def _http_date() -> str:
    # Formatting the Date header costs more than the rest of the head; it changes once a second.
    global _cached_date
    now = int(time.time())
    if _cached_date[0] != now:
        _cached_date = (now, formatdate(now, usegmt=True))
    return _cached_date[1]

"""The HTTP transport and `main()` of `python -m <package> serve`.

HTTP/1.1 with keep-alive on the standard library's `http.server`: one thread per
connection, at most SERVER_HTTP_THREADS of them running an inference at once. Built for
small models, where the HTTP layer costs more than the model:
- TCP_NODELAY on every connection: without it Nagle's algorithm and delayed ACKs hold a
  response back for ~40 ms when it leaves in more than one segment;
- each response is written with one `send` (status line, headers and body together);
- request headers are split by a small parser of our own: http.server's (the `email`
  package) costs ~40 us a request, as much as the rest of the transport together;
- bodies are read once, into one buffer; binary tensors are numpy views on it.

Graceful shutdown, for Kubernetes and for PID 1 in a container: on SIGTERM (or SIGINT)
readiness turns 503, the listener closes, idle keep-alive connections are closed, requests
in flight finish (their connections then close), and the process exits 0 - or 1 when
requests were still running after SERVER_DRAIN_SECONDS.
"""

from __future__ import annotations

import contextlib
import gc
import http.server
import logging
import os
import queue
import signal
import socket
import socketserver
import threading
import time
from collections.abc import Sequence
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING

import orjson

from .. import __version__
from ..errors import StageError
from .app import ENDPOINTS, InferenceApp, Response
from .logs import configure_logging, log_event
from .metrics import ServerMetrics
from .protocol import error_body
from .settings import Settings, load_settings

if TYPE_CHECKING:
    from .runtime import ModelRuntime

PACKAGE = __package__.rpartition(".")[0]
MAX_REQUEST_LINE = 65536
MAX_HEADER_LINE = 65536
MAX_HEADERS = 100
# After refusing a body (413, 411, malformed request), read and drop what the client is
# still sending for up to this long before closing: closing a socket with unread input
# makes the kernel send a reset, and the client would lose the error response.
LINGER_SECONDS = 2.0
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_REASONS = {status.value: status.phrase for status in HTTPStatus}
_NO_LIMIT = contextlib.nullcontext()


class ServeError(StageError):
    """The server cannot start (for example: the port is taken)."""


class RequestHeaders(dict[str, str]):
    """Request headers by lower-cased name. `get` takes any case, as HTTP wants; the
    transport itself looks names up in lower case (`"transfer-encoding" in headers`)."""

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return dict.get(self, name.lower(), default)


class _Connections:
    """Every open connection and whether it is new, idle (between keep-alive requests),
    busy (handling a request) or closing: the drain closes idle ones and waits for busy ones.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._states: dict[socket.socket, str] = {}

    def __len__(self) -> int:
        return len(self._states)

    def opened(self, connection: socket.socket) -> None:
        with self._changed:
            self._states[connection] = "new"

    def request_started(self, connection: socket.socket) -> bool:
        """False when the drain already closed this connection."""
        with self._changed:
            if self._states.get(connection) == "closing":
                return False
            self._states[connection] = "busy"
            return True

    def request_finished(self, connection: socket.socket) -> None:
        with self._changed:
            if self._states.get(connection) == "busy":
                self._states[connection] = "idle"

    def closed(self, connection: socket.socket) -> None:
        with self._changed:
            self._states.pop(connection, None)
            self._changed.notify_all()

    def close_idle(self) -> None:
        # A "new" connection is left alone: its first request may be on the wire already.
        # It gets one answer (with Connection: close) or times out after the keep-alive.
        with self._changed:
            for connection, state in self._states.items():
                if state == "idle":
                    self._states[connection] = "closing"
                    with contextlib.suppress(OSError):
                        connection.shutdown(socket.SHUT_RDWR)

    def wait_closed(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: not self._states, timeout)


class _Slots:
    """A counting semaphore on a C-implemented queue of tokens: `threading.Semaphore` is
    Python code, ~10x slower per request."""

    def __init__(self, count: int) -> None:
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()
        for _ in range(count):
            self._tokens.put(None)

    def __enter__(self) -> None:
        self._tokens.get()

    def __exit__(self, *exc_info: object) -> None:
        self._tokens.put(None)


class _HTTPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, settings: Settings, app: InferenceApp, metrics: ServerMetrics, logger: logging.Logger
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.logger = logger
        self.max_body_bytes = settings.max_body_bytes
        self.keepalive_seconds = settings.keepalive_seconds
        self.max_connections = settings.max_connections
        self.inference_slots = _Slots(settings.http_threads)
        self.connections = _Connections()
        if ":" in settings.host:
            self.address_family = socket.AF_INET6
        # socketserver.TCPServer, not http.server.HTTPServer: the latter's server_bind does
        # a reverse DNS lookup of the host, which can stall a container's start for seconds.
        super().__init__((settings.host, settings.port), _RequestHandler)

    def verify_request(self, request, client_address) -> bool:  # type: ignore[override]
        if len(self.connections) < self.max_connections:
            return True
        self.metrics.connection_rejected()
        log_event(
            self.logger,
            logging.WARNING,
            "connection_rejected",
            reason=f"{self.max_connections} connections open (SERVER_MAX_CONNECTIONS)",
            client=client_address[0],
        )
        return False

    def process_request(self, request, client_address) -> None:  # type: ignore[override]
        self.connections.opened(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:  # type: ignore[override]
        super().shutdown_request(request)
        self.connections.closed(request)

    def handle_error(self, request, client_address) -> None:  # type: ignore[override]
        self.logger.exception("connection_error", extra={"fields": {"client": client_address[0]}})


class _RequestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # TCP_NODELAY, see the module docstring
    server: _HTTPServer

    def setup(self) -> None:
        # The socket timeout doubles as the keep-alive idle timeout.
        self.timeout = self.server.keepalive_seconds
        super().setup()
        self._linger = False
        self._status = 0
        self._error = b""

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
        except OSError:  # idle timeout, a reset, or the drain closed this idle connection
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        started = time.perf_counter()
        connections = self.server.connections
        if not connections.request_started(self.connection):
            self.close_connection = True
            return
        try:
            self._serve(started)
        finally:
            connections.request_finished(self.connection)

    def _serve(self, started: float) -> None:
        metrics = self.server.metrics
        metrics.in_flight.inc()
        endpoint = "unknown"
        self._status = 0
        try:
            if len(self.raw_requestline) > MAX_REQUEST_LINE:
                self.command, self.path, self.request_version = "", "", "HTTP/1.1"
                self.send_error(414, f"the request line is longer than {MAX_REQUEST_LINE} bytes")
            elif self.parse_request():  # on failure it has answered through send_error
                endpoint = self._dispatch()
            elif self.path:
                endpoint = self.server.app.route(self.path).endpoint
        except OSError:  # the client went away mid-request: nobody to answer
            self.close_connection = True
        finally:
            metrics.in_flight.dec()
            if self._status:
                seconds = time.perf_counter() - started
                metrics.request_finished(endpoint, self._status, seconds)
                self._log_request(endpoint, seconds)

    def _dispatch(self) -> str:
        app = self.server.app
        route = app.route(self.path)
        if not route.allows(self.command):
            if (
                self.headers.get("content-length", "0") != "0"
                or "transfer-encoding" in self.headers
            ):
                # The body stays unread: answer, then close the connection.
                self.close_connection = True
                self._linger = True
            self._send(app.method_not_allowed(route, self.command, self.path))
            return route.endpoint
        # An inference slot is taken before the body is read: it bounds both the
        # concurrent inferences and the memory held by request bodies.
        slot = self.server.inference_slots if route.endpoint == "infer" else _NO_LIMIT
        with slot:
            body = self._read_body()
            if body is not None:
                self._send(app.handle(route, self.command, self.path, body, self.headers))
        return route.endpoint

    def _read_body(self) -> bytes | None:
        """The request body; None when the request was refused (the answer is sent)."""
        headers = self.headers
        if "transfer-encoding" in headers:
            self._refuse(411, "chunked request bodies are not supported: send Content-Length")
            return None
        declared = headers.get("content-length")
        if declared is None:
            if self.command in _BODY_METHODS:
                self._refuse(411, f"{self.command} needs a Content-Length header")
                return None
            return b""
        length = _byte_count(declared)
        if length is None:
            self._refuse(400, f"Content-Length {declared[:40]!r} is not a byte count")
            return None
        if length > self.server.max_body_bytes:
            self._refuse(
                413,
                f"the request body is {length} bytes; the limit is "
                f"{self.server.max_body_bytes} (SERVER_MAX_BODY_BYTES)",
            )
            return None
        body = self.rfile.read(length) if length else b""
        if len(body) != length:  # the client closed mid-body
            self.close_connection = True
            return None
        return body

    def parse_request(self) -> bool:
        """Request line and headers; on a malformed request, answer it and return False.

        Replaces http.server's version (see the module docstring), keeping its rules:
        HTTP/1.0 and 1.1, at most 100 header lines of at most 64 KiB, keep-alive by default
        on 1.1, `Expect: 100-continue` honoured.
        """
        self.command = ""
        self.path = ""
        self.request_version = "HTTP/1.1"
        self.close_connection = True
        self.headers = RequestHeaders()  # type: ignore[assignment]
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3:
            self.send_error(400, f"malformed request line {self.requestline[:100]!r}")
            return False
        command, path, version = words
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            status = 505 if version.startswith("HTTP/") else 400
            self.send_error(status, f"HTTP version {version[:20]!r} is not supported: use HTTP/1.1")
            return False
        self.command, self.path, self.request_version = command, path, version
        headers = self._read_headers()
        if headers is None:
            return False
        self.headers = headers  # type: ignore[assignment]
        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.1":
            self.close_connection = "close" in connection
        else:
            self.close_connection = "keep-alive" not in connection
        if headers.get("expect", "").lower() == "100-continue" and version == "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def _read_headers(self) -> RequestHeaders | None:
        headers = RequestHeaders()
        readline = self.rfile.readline
        for _ in range(MAX_HEADERS + 1):
            line = readline(MAX_HEADER_LINE + 1)
            if len(line) > MAX_HEADER_LINE:
                self.send_error(431, f"a header line is longer than {MAX_HEADER_LINE} bytes")
                return None
            if line in (b"\r\n", b"\n"):
                return headers
            if not line.endswith(b"\n"):  # the client closed mid-headers: nobody to answer
                self.close_connection = True
                return None
            name, colon, value = str(line, "iso-8859-1").partition(":")
            if not colon or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
                # No colon, space before it, or an obsolete folded line: all invalid
                # (RFC 9112), and ambiguous framing is how requests get smuggled.
                self.send_error(400, f"malformed header line {line[:100]!r}")
                return None
            name = name.lower()
            value = value.strip()
            previous = dict.get(headers, name)
            if previous is None:
                headers[name] = value
            elif name == "content-length":
                if previous != value:
                    self.send_error(400, "the request has conflicting Content-Length headers")
                    return None
            else:
                headers[name] = f"{previous}, {value}"
        self.send_error(431, f"the request has more than {MAX_HEADERS} header lines")
        return None

    def handle_expect_100(self) -> bool:
        # Refuse an oversized body before the client sends it: curl, for one, sends
        # `Expect: 100-continue` for large bodies and waits for this answer.
        length = _byte_count(self.headers.get("content-length", ""))
        if length is not None and length > self.server.max_body_bytes:
            self._refuse(
                413,
                f"the request body would be {length} bytes; the limit is "
                f"{self.server.max_body_bytes} (SERVER_MAX_BODY_BYTES)",
            )
            return False
        return super().handle_expect_100()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None):
        """Malformed requests, as `parse_request` reports them: a JSON error, then close."""
        self._refuse(code, message or _REASONS.get(code, "bad request"))

    def _refuse(self, status: int, message: str) -> None:
        # The connection's input is in an unknown state (unread body, broken framing):
        # answer, then close it.
        self.close_connection = True
        self._linger = True
        self._send(Response(status, error_body(message)))

    def _send(self, response: Response) -> None:
        if self.server.app.draining:
            self.close_connection = True
        body = response.body
        lines = [
            f"HTTP/1.1 {response.status} {_REASONS.get(response.status, '')}\r\n"
            f"Date: {_http_date()}\r\n"
            f"Content-Type: {response.content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
        ]
        lines.extend(f"{name}: {value}\r\n" for name, value in response.headers)
        if self.close_connection:
            lines.append("Connection: close\r\n")
        elif self.request_version == "HTTP/1.0":
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        self._status = response.status
        if response.status >= 400:
            self._error = body
        if self.command == "HEAD":
            self.wfile.write(head)
        elif len(body) <= 65536:
            self.wfile.write(head + body)  # one send: one segment for small responses
        else:
            self.wfile.write(head)
            self.wfile.write(body)

    def _log_request(self, endpoint: str, seconds: float) -> None:
        # Failures are worth a line; 503s are not (the model is loading or the server is
        # draining: expected, and already said once by the startup and drain lines).
        status = self._status
        failed = status >= 400 and status != 503
        level = logging.WARNING if failed else logging.DEBUG
        if status >= 500 and failed:
            level = logging.ERROR
        logger = self.server.logger
        if not logger.isEnabledFor(level):
            return
        fields = {
            "method": self.command,
            "path": (self.path or "")[:200],
            "endpoint": endpoint,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "client": self.client_address[0],
        }
        if status >= 400:
            with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
                fields["error"] = orjson.loads(self._error).get("error")
        log_event(logger, level, "request", **fields)

    def finish(self) -> None:
        super().finish()
        if self._linger:
            _discard_input(self.connection)

    def log_message(self, format: str, *args: object) -> None:
        # http.server's own stderr lines; every request is already logged as JSON.
        log_event(self.server.logger, logging.DEBUG, "http_server", message=format % args)


class InferenceServer:
    """The listener, its connection threads and the app. `main()` drives it from signals;
    tests drive it directly (`start`, `load_model`, `drain`)."""

    def __init__(self, settings: Settings, logger: logging.Logger) -> None:
        self.settings = settings
        self.logger = logger
        self.metrics = ServerMetrics(ENDPOINTS)
        self.app = InferenceApp(settings.model_name, __version__, self.metrics, logger)
        try:
            self._http = _HTTPServer(settings, self.app, self.metrics, logger)
        except OSError as error:
            raise ServeError(
                f"cannot listen on {settings.host}:{settings.port}: {error.strerror or error}"
            ) from None
        self._accept_thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.1},  # how soon the drain stops the accept loop
            name="accept",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return self._http.server_address[1]

    @property
    def open_connections(self) -> int:
        return len(self._http.connections)

    def start(self) -> None:
        self._accept_thread.start()

    def load_model(self) -> ModelRuntime:
        from .runtime import ModelRuntime

        runtime = ModelRuntime.load(self.settings.model_path, self.settings.intra_op_threads)
        self.app.set_runtime(runtime)
        return runtime

    def drain(self, timeout: float) -> bool:
        """Stop taking work and wait up to `timeout` s for in-flight requests; True when
        every connection is closed."""
        self.app.start_draining()
        if self._accept_thread.is_alive():
            self._http.shutdown()
        self._http.server_close()
        log_event(self.logger, logging.INFO, "listener_closed", port=self.port)
        self._http.connections.close_idle()
        return self._http.connections.wait_closed(timeout)


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
            http_threads=settings.http_threads,
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


def _byte_count(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() and text.isascii() else None


_cached_date: tuple[int, str] = (0, "")


def _http_date() -> str:
    # Formatting the Date header costs more than the rest of the head; it changes once a second.
    global _cached_date
    now = int(time.time())
    if _cached_date[0] != now:
        _cached_date = (now, formatdate(now, usegmt=True))
    return _cached_date[1]


def _discard_input(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + LINGER_SECONDS
        while (remaining := deadline - time.monotonic()) > 0:
            connection.settimeout(remaining)
            if not connection.recv(65536):
                break

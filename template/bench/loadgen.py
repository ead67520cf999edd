"""A closed-loop HTTP/1.1 load generator for the serving benchmarks.

`concurrency` keep-alive connections each send one request, wait for the whole answer,
then send the next, until `requests` have been answered. Responses are framed by
httptools (llhttp, the parser uvicorn uses), so a malformed answer is an error, never a
silent partial read. Runs on asyncio (uvloop when installed): one Python thread drives
16 connections at well over 10,000 requests a second, so the client is not what is
measured.
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass, field

import httptools

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is in the serve extra
    uvloop = None


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    last_body: bytes = b""

    @property
    def errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status != 200)

    @property
    def requests_per_second(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0


def encode_request(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    """The request's bytes, built once and sent as they are on every round."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _ResponseReader:
    """Collects the responses of one connection, one at a time, from what the socket
    delivers: one parser per connection, as a real client keeps."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.body = bytearray()
        self.done = False

    def expect(self) -> None:
        """Get ready for the next response."""
        self.body = bytearray()
        self.done = False

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.done = True


async def _connection_loop(
    port: int, request: bytes, deadline_count: list[int], result: LoadResult
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    clock = time.perf_counter_ns
    response = _ResponseReader()
    try:
        while deadline_count[0] > 0:
            deadline_count[0] -= 1
            response.expect()
            started = clock()
            writer.write(request)
            while not response.done:
                data = await reader.read(262144)
                if not data:
                    raise ConnectionError("the server closed the connection mid-run")
                response.parser.feed_data(data)
            result.latencies_ms.append((clock() - started) / 1e6)
            status = response.parser.get_status_code()
            result.statuses[status] = result.statuses.get(status, 0) + 1
            result.last_body = bytes(response.body)
            if not response.parser.should_keep_alive():
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                response = _ResponseReader()
    finally:
        writer.close()


def run_load(port: int, request: bytes, requests: int, concurrency: int) -> LoadResult:
    """Send `requests` copies of `request` over `concurrency` connections."""
    result = LoadResult()
    remaining = [requests]

    async def run() -> None:
        started = time.perf_counter()
        await asyncio.gather(
            *(_connection_loop(port, request, remaining, result) for _ in range(concurrency))
        )
        result.seconds = time.perf_counter() - started

    # A collection of this process's whole heap (it holds numpy and onnxruntime) stalls
    # every connection at once for milliseconds, which would be counted as the server's
    # latency: no cyclic garbage collection while measuring (the loop makes little).
    collecting = gc.isenabled()
    gc.disable()
    try:
        if uvloop is not None:
            uvloop.run(run())
        else:
            asyncio.run(run())
    finally:
        if collecting:
            gc.enable()
    return result

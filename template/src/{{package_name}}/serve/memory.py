"""How much memory request bodies may take, derived from the container's memory limit.

One value decides it: the pod's `resources.limits.memory`, passed in by the Deployment as
SERVER_MEMORY_LIMIT_BYTES (the downward API), or read from the cgroup when unset. The
budget for requests is that limit minus what the process holds once the model is loaded
and warm, minus a headroom for the interpreter's own churn. Half of it is for decoding:
each worker decoding a request of the largest size at once (which sets the largest
sizes). The other half is for raw bodies: every request reserves its body's size before
reading it and gives it back when its answer is sent. So valid requests in any number
stay under the limit: a burst gets 503s with Retry-After instead of an OOM kill.

What a body costs, measured on the serving test model (`bench/` and the tests check it):
- JSON: the body, plus one Python float (24 bytes) and one list slot (8 bytes) per number:
  up to ~15x the body for "0.0,"-style data in nested lists; 20x leaves room for the
  response and the allocator's slack.
- binary: the body, plus numpy views on it and the output tensors: 3x.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
from dataclasses import dataclass
from pathlib import Path

JSON_COST_FACTOR = 20
BINARY_COST_FACTOR = 3
# Left free under the limit for what the budget does not count: parsing, metrics, logging.
HEADROOM_BYTES = 32 * 1024 * 1024
# Decoding JSON holds the GIL, during which the event loop answers nothing, probes
# included: simdjson takes ~4 ms for 4 MiB of tensor data on one core (orjson and numpy
# took 9-13 ms), and the budget above counts ~20x the body while a request is in flight.
# Larger tensors belong in the binary extension. A larger SERVER_MAX_JSON_BODY_BYTES is
# honoured (up to what the memory allows).
DEFAULT_MAX_JSON_BODY_BYTES = 4 * 1024 * 1024
# Without a memory limit (a laptop, a test): the largest binary body accepted.
UNBOUNDED_MAX_BINARY_BODY_BYTES = 64 * 1024 * 1024
# After a request this large, hand freed memory back to the kernel (see `release_freed`).
TRIM_AFTER_BYTES = 1024 * 1024

_CGROUP_LIMIT_FILES = (
    Path("/sys/fs/cgroup/memory.max"),  # cgroup v2
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),  # cgroup v1
)
# cgroup v1 reports "no limit" as a huge page-aligned number rather than "max".
_NO_LIMIT_ABOVE = 1 << 60


def container_memory_limit() -> int | None:
    """The cgroup's memory limit in bytes, or None when there is none."""
    for path in _CGROUP_LIMIT_FILES:
        with contextlib.suppress(OSError, ValueError):
            text = path.read_text().strip()
            if text == "max":
                return None
            value = int(text)
            return None if value >= _NO_LIMIT_ABOVE else value
    return None


def resident_bytes() -> int:
    """This process's resident set size (VmRSS)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise OSError("/proc/self/status has no VmRSS line")


@dataclass(frozen=True)
class BodyLimits:
    """What the transport enforces: per-request body sizes, and how many body bytes may
    be held at once (received, queued or running)."""

    max_json_body_bytes: int
    max_binary_body_bytes: int
    budget_bytes: int | None  # None: no memory limit, nothing to share
    body_budget_bytes: int | None
    workers: int

    def decoding_bytes(self) -> int:
        """The most the workers' decoding can take at once, on top of the bodies."""
        return self.workers * max(
            self.max_json_body_bytes * (JSON_COST_FACTOR - 1),
            self.max_binary_body_bytes * (BINARY_COST_FACTOR - 1),
        )


def derive_body_limits(
    memory_limit: int | None,
    baseline: int,
    workers: int,
    max_json_body_bytes: int | None,
    max_binary_body_bytes: int | None,
) -> BodyLimits:
    """Split the budget in two halves: one for what the workers' decoding may take at
    once (each worker decoding a request of the largest size), one for the raw bodies
    being received or waiting in the queue. Explicit limits win, but never above what
    the budget allows."""
    if memory_limit is None:
        return BodyLimits(
            max_json_body_bytes or DEFAULT_MAX_JSON_BODY_BYTES,
            max_binary_body_bytes or UNBOUNDED_MAX_BINARY_BODY_BYTES,
            None,
            None,
            workers,
        )
    budget = memory_limit - baseline - HEADROOM_BYTES
    if budget <= 0:
        raise MemoryBudgetError(
            f"the memory limit ({memory_limit // 2**20} MiB) leaves nothing for requests: "
            f"the loaded model already holds {baseline // 2**20} MiB (plus "
            f"{HEADROOM_BYTES // 2**20} MiB headroom). Raise resources.limits.memory"
        )
    per_worker = budget // 2 // workers
    json_fit = per_worker // (JSON_COST_FACTOR - 1)
    binary_fit = per_worker // (BINARY_COST_FACTOR - 1)
    limits = BodyLimits(
        min(max_json_body_bytes or DEFAULT_MAX_JSON_BODY_BYTES, json_fit),
        min(max_binary_body_bytes or binary_fit, binary_fit),
        budget,
        0,
        workers,
    )
    return dataclasses.replace(limits, body_budget_bytes=budget - limits.decoding_bytes())


class MemoryBudgetError(ValueError):
    """The memory limit is too small for the model."""


class Reservations:
    """The body bytes held by requests in flight, against the body budget. A quarter of
    it is kept for small requests (at most 1/16 of that each), so that a burst of the
    largest ones cannot starve ordinary traffic. Used from the event loop's thread
    only: no lock."""

    def __init__(self, budget: int | None) -> None:
        self.budget = budget
        self.reserved = 0
        self.small_share = 0 if budget is None else budget // 4
        self.small_cost = self.small_share // 16

    def try_reserve(self, cost: int) -> bool:
        if self.budget is not None:
            free = self.budget - self.reserved
            if cost > self.small_cost:
                free -= self.small_share
            if cost > free:
                return False
        self.reserved += cost
        return True

    def release(self, cost: int) -> None:
        self.reserved -= cost


def _load_malloc_trim():  # type: ignore[no-untyped-def]
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL(name).malloc_trim
    return None


_malloc_trim = _load_malloc_trim()


def release_freed() -> None:
    """Give memory that Python and numpy freed back to the kernel.

    glibc keeps freed heap pages mapped for reuse, so RSS stays at a burst's peak for
    good; malloc_trim returns them (a few hundred microseconds, so only after large
    requests). MALLOC_ARENA_MAX=2 (Dockerfile) bounds how many heaps there are to trim.
    """
    if _malloc_trim is not None:
        _malloc_trim(0)

"""Adaptive batching: inference requests that wait in the queue at the same moment run as
one `session.run`, and the outputs are split back per request.

Opt-in per model (SERVER_MAX_BATCH_SIZE > 1), because it pays only where the model's
compute per row falls with the batch (convolutions, attention, matrix products); a model
whose batch axis is fixed cannot be batched at all, and the server refuses to start
(`check_batchable`).

The queue is first in first out with or without batching. A worker that frees up takes
the oldest request and, when batching, what else is queued up to SERVER_MAX_BATCH_SIZE
requests. It waits for more (at most SERVER_MAX_BATCH_DELAY_SECONDS) only when it found
other requests already waiting: with an empty queue a request runs at once, so that at
concurrency 1 batching adds no latency.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .protocol import InferRequest, Signature


class InferenceQueue:
    """Complete requests waiting for an inference worker (any objects: the transport
    queues its connection and request). `put` from any thread; `take` on a worker."""

    def __init__(self, max_batch_size: int, max_batch_delay_seconds: float) -> None:
        self.max_batch_size = max_batch_size
        self.max_batch_delay_seconds = max_batch_delay_seconds
        self._jobs: deque[Any] = deque()
        self._arrived = threading.Condition()

    def put(self, job: Any) -> None:
        with self._arrived:
            self._jobs.append(job)
            self._arrived.notify()

    def take(self) -> list[Any]:
        """The oldest job and, when batching, those queued behind it; [] when another
        worker has taken them all (each put is followed by one take, so none is left)."""
        with self._arrived:
            if not self._jobs:
                return []
            taken = [self._jobs.popleft()]
            if self.max_batch_size == 1 or not self._jobs:
                return taken
            deadline = time.monotonic() + self.max_batch_delay_seconds
            while len(taken) < self.max_batch_size:
                if self._jobs:
                    taken.append(self._jobs.popleft())
                    continue
                left = deadline - time.monotonic()
                if left <= 0 or not self._arrived.wait(left):
                    break
            return taken


@dataclass(frozen=True, slots=True)
class Batch:
    """Consecutive requests whose inputs concatenate along the batch axis."""

    positions: tuple[int, ...]  # into the decoded requests
    rows: tuple[int, ...]  # each request's batch size, in the same order


def check_batchable(signature: Signature) -> str | None:
    """Why the model cannot be batched (a fixed batch axis), or None when it can."""
    for kind, specs in (("input", signature.inputs), ("output", signature.outputs)):
        for spec in specs.values():
            if not spec.shape or spec.shape[0] != -1:
                return (
                    f"the model's {kind} '{spec.name}' has shape {list(spec.shape)}, "
                    "without a dynamic first (batch) axis"
                )
    return None


def plan_batches(requests: Sequence[InferRequest], max_batch_size: int) -> list[Batch]:
    """Group neighbouring requests, in order, into batches of at most `max_batch_size`
    rows whose inputs agree on everything but the batch axis. A request that is larger
    than `max_batch_size` on its own runs alone, as it would without batching."""
    batches: list[Batch] = []
    positions: list[int] = []
    rows: list[int] = []
    key: object = None
    for position, request in enumerate(requests):
        request_rows, request_key = _rows_and_key(request)
        fits = positions and request_key == key and sum(rows) + request_rows <= max_batch_size
        if positions and not fits:
            batches.append(Batch(tuple(positions), tuple(rows)))
            positions, rows = [], []
        positions.append(position)
        rows.append(request_rows)
        key = request_key
    if positions:
        batches.append(Batch(tuple(positions), tuple(rows)))
    return batches


def run_batch(
    batch: Batch,
    requests: Sequence[InferRequest],
    predict: Callable[[dict[str, np.ndarray], list[str]], list[np.ndarray]],
) -> list[dict[str, np.ndarray]]:
    """Run one batch and give each request its own outputs, by name."""
    members = [requests[position] for position in batch.positions]
    names = list(dict.fromkeys(out.name for request in members for out in request.outputs))
    if len(members) == 1:
        inputs = members[0].inputs
    else:
        inputs = {
            name: np.concatenate([request.inputs[name] for request in members])
            for name in members[0].inputs
        }
    results = predict(inputs, names)
    bounds = np.cumsum(batch.rows)[:-1]
    split = [np.split(result, bounds) for result in results]
    return [
        {name: split[index][member] for index, name in enumerate(names)}
        for member in range(len(members))
    ]


def _rows_and_key(request: InferRequest) -> tuple[int, object]:
    arrays = list(request.inputs.items())
    rows = {array.shape[0] if array.ndim else -1 for _, array in arrays}
    if len(rows) != 1 or -1 in rows:
        # Inputs that disagree on the batch size: onnxruntime rejects them; run them
        # alone so that the error is this request's only.
        return 0, object()
    key = tuple((name, array.dtype.str, array.shape[1:]) for name, array in sorted(arrays))
    return rows.pop(), key

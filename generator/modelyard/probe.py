"""Talk to a generated repository's server: wait for readiness, send one JSON inference.

The demo and the tests (a local process, a container) probe servers the same way; the
Open Inference Protocol endpoints are the contract, whatever runs behind them.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


class ProbeError(Exception):
    """The server did not become ready, or did not answer an inference."""


def status_of(url: str) -> int | None:
    """The HTTP status of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def wait_until_ready(base_url: str, still_running: Callable[[], bool], seconds: float = 60) -> None:
    """Poll /v2/health/ready until it answers 200; fail early if the server died."""
    deadline = time.monotonic() + seconds
    while status_of(f"{base_url}/v2/health/ready") != 200:
        if not still_running():
            raise ProbeError(f"the server behind {base_url} exited before it was ready")
        if time.monotonic() > deadline:
            raise ProbeError(f"{base_url} was not ready after {seconds:.0f} s")
        time.sleep(0.1)


def infer_json(
    base_url: str,
    model_name: str,
    shape: list[int],
    data: list[float],
    input_name: str = "input",
    request_id: str | None = None,
) -> dict[str, Any]:
    """POST one FP32 tensor as Open Inference Protocol JSON; return the decoded answer."""
    body: dict[str, Any] = {
        "inputs": [{"name": input_name, "shape": shape, "datatype": "FP32", "data": data}]
    }
    if request_id is not None:
        body["id"] = request_id
    request = urllib.request.Request(
        f"{base_url}/v2/models/{model_name}/infer",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.load(reply)
    except urllib.error.HTTPError as error:
        raise ProbeError(f"inference answered {error.code}: {error.read().decode()}") from error


def output_named(answer: dict[str, Any], name: str = "logits") -> dict[str, Any]:
    (output,) = [candidate for candidate in answer["outputs"] if candidate["name"] == name]
    return output


# Runs in the generated repository's own environment (it has onnxruntime; the caller may
# not): seeded inputs and what onnxruntime computes for them in-process.
_REFERENCE_SCRIPT = """
import json, sys
import numpy as np, onnxruntime as ort
batch, seed = int(sys.argv[1]), int(sys.argv[2])
session = ort.InferenceSession("artifacts/model.onnx", providers=["CPUExecutionProvider"])
shape = [batch] + list(session.get_inputs()[0].shape[1:])
x = np.random.default_rng(seed).random(shape, dtype=np.float32)
(logits,) = session.run(["logits"], {"input": x})
print(json.dumps({"shape": shape, "data": x.ravel().tolist(), "logits": logits.tolist()}))
"""


def onnxruntime_reference(python: Path, repo: Path, batch: int, seed: int) -> dict[str, Any]:
    """{shape, data, logits}: seeded inputs and repo/artifacts/model.onnx's answer to them."""
    result = subprocess.run(
        [str(python), "-c", _REFERENCE_SCRIPT, str(batch), str(seed)],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ProbeError(f"onnxruntime in {repo} failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def local_server(python: Path, repo: Path, package: str, model: str) -> Iterator[str]:
    """Run `python -m <package> serve` on a free loopback port until the block ends.

    Yields the base URL once the server is ready; afterwards SIGTERM must make it drain
    and exit 0, or ProbeError says how it ended.
    """
    port = free_port()
    command = [
        str(python),
        "-m",
        package,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--model",
        model,
    ]
    server = subprocess.Popen(
        command, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base_url, lambda: server.poll() is None)
        yield base_url
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=60)
    if server.returncode != 0:
        raise ProbeError(f"the server exited with {server.returncode}:\n{output}")

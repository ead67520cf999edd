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


def fp32_tensor(shape: list[int], data: list[float], name: str = "input") -> dict[str, Any]:
    """One FP32 input tensor of an Open Inference Protocol JSON request."""
    return {"name": name, "shape": shape, "datatype": "FP32", "data": data}


def infer_json(
    base_url: str,
    model_name: str,
    tensor: dict[str, Any],
    request_id: str | None = None,
) -> dict[str, Any]:
    """POST one input tensor ({name, shape, datatype, data}) as Open Inference Protocol
    JSON; return the decoded answer."""
    body: dict[str, Any] = {"inputs": [tensor]}
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


# Runs in the generated repository's own environment (it has onnxruntime and the package;
# the caller may have neither): a seeded request of the kind the model's server takes, and
# what onnxruntime computes for it in-process. Images and series are FP32 tensors (a
# dynamic sequence axis gets 20 steps); a text model takes strings, which the reference
# tokenizes with the tokenizer the model carries, as the server does.
_REFERENCE_SCRIPT = """
import importlib, json, sys
import numpy as np, onnxruntime as ort
batch, seed, package = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
session = ort.InferenceSession("artifacts/model.onnx", providers=["CPUExecutionProvider"])
model_input = session.get_inputs()[0]
metadata = session.get_modelmeta().custom_metadata_map
rng = np.random.default_rng(seed)
if "input_encoder" in metadata:
    tokenization = importlib.import_module(package + ".tokenization")
    encoder = json.loads(metadata["input_encoder"])
    tokenizer = tokenization.load_tokenizer(encoder["tokenizer"], encoder["max_length"])
    words = ["the", "film", "was", "good", "bad", "plot", "kalo", "mine", "rusa", "vota"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(2, 12)))) for _ in range(batch)]
    logits = np.concatenate([
        session.run(["logits"], {model_input.name: tokenization.encode(tokenizer, [text])})[0]
        for text in texts
    ])
    tensor = {"name": "text", "shape": [batch], "datatype": "BYTES", "data": texts}
else:
    shape = [batch] + [size if isinstance(size, int) else 20 for size in model_input.shape[1:]]
    x = rng.random(shape, dtype=np.float32)
    (logits,) = session.run(["logits"], {model_input.name: x})
    data = x.ravel().tolist()
    tensor = {"name": model_input.name, "shape": shape, "datatype": "FP32", "data": data}
print(json.dumps({"tensor": tensor, "logits": logits.tolist()}))
"""


def onnxruntime_reference(
    python: Path, repo: Path, package: str, batch: int, seed: int
) -> dict[str, Any]:
    """{tensor, logits}: a seeded request tensor for the server of repo/artifacts/model.onnx
    and what onnxruntime computes for it in-process."""
    result = subprocess.run(
        [str(python), "-c", _REFERENCE_SCRIPT, str(batch), str(seed), package],
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

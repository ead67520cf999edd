"""`modelyard demo`: generate a repo with defaults and run its whole local pipeline.

This is the first thing a new user runs: it proves, on their machine, that the template
gives a repository that trains, passes its gate, exports, verifies parity, passes its own
tests and answers an inference over HTTP, without any CI system.
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from .new import generate
from .probe import ProbeError, infer_json, output_named, wait_until_ready
from .venv import install_repo, venv_python


class DemoError(Exception):
    """A step of the demo failed; the message names the step."""


def _step(title: str, command: Sequence[str], cwd: Path) -> float:
    print(f"==> {title}: {' '.join(command)}", flush=True)
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise DemoError(f"{title} failed with exit code {result.returncode}")
    print(f"    {title} took {elapsed:.1f} s", flush=True)
    return elapsed


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _infer_over_http(python: Path, repo: Path, package: str, model_name: str) -> dict[str, Any]:
    """Start the server, send one JSON inference, stop it; return the response."""
    port = _free_port()
    server = subprocess.Popen(
        [
            str(python),
            "-m",
            package,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--model",
            "artifacts/model.onnx",
        ],
        cwd=repo,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, lambda: server.poll() is None, seconds=30)
        with urllib.request.urlopen(f"{base}/v2/models/{model_name}", timeout=5) as reply:
            metadata = json.load(reply)
        shape = [1, *metadata["inputs"][0]["shape"][1:]]
        return infer_json(base, model_name, shape, [0.5] * math.prod(shape))
    except ProbeError as error:
        raise DemoError(str(error)) from error
    finally:
        server.terminate()
        server.wait(timeout=30)


def run_demo(destination: Path, answers: Mapping[str, Any], template: str | None = None) -> None:
    destination = destination.resolve()
    if (destination / ".copier-answers.yml").is_file():
        print(f"==> reusing the repository generated earlier in {destination}")
    else:
        print(f"==> generating {destination}")
        generate(destination, answers, template=template, vcs_ref=None)
    generated = yaml.safe_load((destination / ".copier-answers.yml").read_text())
    package = generated["package_name"]
    venv_dir = destination / ".venv"
    if venv_python(venv_dir).is_file():
        python = venv_python(venv_dir)
    else:
        print(f"==> installing {destination.name} into {venv_dir} (torch, onnx, onnxruntime)")
        python = install_repo(destination, venv_dir)
    env_python = str(python)
    _step(
        "pipeline",
        [env_python, "-m", package, "pipeline", "--config", "configs/smoke.yaml"],
        destination,
    )
    _step("tests", [env_python, "-m", "pytest", "-q"], destination)
    reply = _infer_over_http(python, destination, package, generated["repo_slug"])
    logits = output_named(reply)["data"]
    print(f"==> HTTP inference answered: {len(logits)} logits, argmax {logits.index(max(logits))}")
    evaluation = json.loads((destination / "artifacts" / "evaluation.json").read_text())
    print(
        f"==> done: held-out accuracy {evaluation['metrics']['accuracy']:.3f}; artifacts in "
        f"{destination / 'artifacts'}"
    )
    print(f"    serve it: cd {destination} && .venv/bin/python -m {package} serve")

"""A generated repository installs into a fresh venv and works there on its own.

One case per model family: its own tests pass, its smoke pipeline writes every artifact
and a passing parity report, an impossible quality gate blocks, and its server answers
over HTTP on 127.0.0.1 with the numbers onnxruntime gives in-process (raw strings in, for
the text family).

Which cases install a venv: one per family and no more. A venv install plus the repo's own
suite and smoke pipeline costs about two minutes on 2 cores, and `.ci/run` must stay
under 30 minutes, so the free-text variations ride along with a family (the non-default
answers with the text family) instead of adding cases; the render matrix covers every
other combination without installing. Every case answers Python 3.11: the venvs are made
by this interpreter, and a repository for 3.12 requires 3.12.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelyard.probe import infer_json, local_server, onnxruntime_reference, output_named
from modelyard.venv import install_repo

from conftest import render
from matrix import NON_DEFAULT_TEXT, for_family

pytestmark = pytest.mark.venv

CASES = {
    "image-cnn": {},
    "text-transformer": for_family(
        {**NON_DEFAULT_TEXT, "model_family": "text-transformer", "python_version": "3.11"},
        "text-transformer",
    ),
    "sequence-rnn": {"model_family": "sequence-rnn"},
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Installed:
    repo: Path
    python: Path
    package: str
    model_name: str

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), *args],
            cwd=self.repo,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def stage(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("-m", self.package, *args)


@pytest.fixture(scope="module", params=list(CASES), ids=list(CASES))
def installed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    answers: dict[str, Any] = CASES[request.param]
    repo = render(tmp_path_factory.mktemp(request.param) / "repo", answers)
    python = install_repo(repo, repo / ".venv")
    package = answers.get("package_name", "fraud_detector")
    return Installed(repo, python, package, answers.get("repo_slug", "fraud-detector"))


@pytest.fixture(scope="module")
def pipeline(installed: Installed) -> subprocess.CompletedProcess[str]:
    started = time.perf_counter()
    result = installed.stage("pipeline", "--config", "configs/smoke.yaml")
    print(f"\nsmoke pipeline of {installed.package}: {time.perf_counter() - started:.1f} s")
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_own_test_suite_passes(installed: Installed) -> None:
    result = installed.run("-m", "pytest", "-q", "-p", "no:cacheprovider")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed and int(passed.group(1)) >= 10, result.stdout[-2000:]
    assert "skipped" not in result.stdout.splitlines()[-1]


def test_smoke_pipeline_writes_every_artifact(installed: Installed, pipeline) -> None:
    artifacts = installed.repo / "artifacts"
    metrics = json.loads((artifacts / "metrics.json").read_text())
    assert metrics, "metrics.json is empty"
    for plot in ("loss", "accuracy", "confusion_matrix"):
        assert (artifacts / "plots" / f"{plot}.png").read_bytes()[:8] == PNG_SIGNATURE
    assert (artifacts / "model.onnx").stat().st_size > 1000
    parity = json.loads((artifacts / "parity.json").read_text())
    assert parity["passed"] is True
    export = json.loads((artifacts / "export.json").read_text())
    assert export["model_name"] == installed.model_name
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", export["metrics_digest"])


def test_impossible_quality_gate_blocks_with_a_reason(
    installed: Installed, pipeline, tmp_path: Path
) -> None:
    # A failed gate discards the later stages' outputs; work on a copy so the other tests
    # still see the exported model.
    artifacts = tmp_path / "artifacts"
    shutil.copytree(installed.repo / "artifacts", artifacts)
    result = installed.stage(
        "evaluate",
        "--config",
        "configs/smoke.yaml",
        "--set",
        f"artifacts_dir={artifacts}",
        "--set",
        "gate.min_accuracy=1.0",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "quality gate failed" in result.stderr, result.stderr
    assert "below gate.min_accuracy 1.0000" in result.stderr, result.stderr
    assert not (artifacts / "model.onnx").exists()


def test_server_answers_like_onnxruntime_in_process(installed: Installed, pipeline) -> None:
    reference = onnxruntime_reference(
        installed.python, installed.repo, installed.package, batch=3, seed=7
    )
    with local_server(
        installed.python, installed.repo, installed.package, "artifacts/model.onnx"
    ) as base:
        answer = infer_json(base, installed.model_name, reference["tensor"], request_id="parity-1")
        assert answer["model_name"] == installed.model_name
        assert answer["id"] == "parity-1"
        output = output_named(answer)
        expected = reference["logits"]
        assert output["shape"] == [len(expected), len(expected[0])]
        flat_expected = [value for row in expected for value in row]
        assert output["data"] == pytest.approx(flat_expected, rel=1e-6, abs=1e-6)
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as reply:
            assert "infer" in reply.read().decode()


def test_the_image_and_gitops_jobs_run_on_the_deploy_extra_alone(tmp_path: Path) -> None:
    """What ci/pipeline.yml's `install_extras: [deploy]` promises: no torch in those jobs."""
    repo = render(tmp_path / "repo")
    python = install_repo(repo, tmp_path / "deploy-venv", extras=("deploy",))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(python), *args], cwd=repo, capture_output=True, text=True, timeout=120
        )

    assert run("-c", "import torch").returncode != 0
    assert run("-c", "import onnxruntime").returncode != 0
    # Every module the build, push, deploy and promote commands load imports.
    imported = run("-c", "import fraud_detector.image, fraud_detector.gitops, fraud_detector.cli")
    assert imported.returncode == 0, imported.stderr
    digest = "sha256:" + "d" * 64
    for environment, step in (("dev", "set-image"), ("staging", "promote")):
        if step == "set-image":
            arguments = ["--env", environment, "--image", f"registry.example.com/m@{digest}",
                         "--model-version", "1.0.0", "--metrics-digest", digest]  # fmt: skip
        else:
            arguments = ["--from", "dev", "--to", environment]
        result = run("-m", "fraud_detector", "gitops", step, *arguments)
        assert result.returncode == 0, result.stdout + result.stderr
    shown = run("-m", "fraud_detector", "gitops", "show")
    assert shown.returncode == 0 and shown.stdout.count(digest) >= 2, shown.stdout
    no_artifacts = run("-m", "fraud_detector", "build-image")
    # It gets as far as looking for a builder or the exported model: the imports held.
    expected = ("artifacts/model.onnx is missing", "no image builder found")
    assert any(reason in no_artifacts.stderr for reason in expected), no_artifacts.stderr

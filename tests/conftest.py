"""Shared fixtures: render the template, and install a rendered repository in a venv."""

from __future__ import annotations

import subprocess
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import k8s
import pytest

from modelyard.new import generate
from modelyard.paths import REPO_ROOT

import podman_state
from ci_tools import tool
from registry import Registry, running_registry

PODMAN_BEFORE = pytest.StashKey[podman_state.PodmanState | None]()


def _controls_the_session(config: pytest.Config) -> bool:
    """True in a plain run and in pytest-xdist's controller, False in its workers."""
    return not hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    if _controls_the_session(session.config):
        session.config.stash[PODMAN_BEFORE] = podman_state.record()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Remove the images, containers and volumes the session added (tests/podman_state.py)."""
    before = session.config.stash.get(PODMAN_BEFORE, None)
    if before is None:
        return
    leftovers = podman_state.remove_added_since(before)
    if leftovers:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"podman: could not remove {len(leftovers)} added objects: {leftovers[:5]}"
            )


DEFAULT_ANSWERS: dict[str, Any] = {"project_name": "Fraud Detector"}
# Tests commit as themselves, whatever the machine's git configuration says.
GIT_IDENTITY = ["-c", "user.name=modelyard tests", "-c", "user.email=tests@example.invalid"]


def git(*args: str, cwd: Path) -> str:
    """Run git in `cwd`; fail with its stderr; return its stripped stdout."""
    result = subprocess.run(
        [tool("git"), *GIT_IDENTITY, *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}: {result.stderr}")
    return result.stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    """Stage and commit everything in `repo` (a git repository); return the commit."""
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", message, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo)


def render(destination: Path, answers: Mapping[str, Any] | None = None) -> Path:
    """Render the working tree of the template (uncommitted changes included)."""
    with warnings.catch_warnings():
        # Copier warns that the tree is dirty; rendering the working tree is the point.
        warnings.simplefilter("ignore")
        return generate(
            destination,
            {**DEFAULT_ANSWERS, **(answers or {})},
            template=str(REPO_ROOT),
            vcs_ref="HEAD",
        )


@pytest.fixture
def render_repo(tmp_path: Path) -> Callable[..., Path]:
    """Render with the given answers into a fresh folder under tmp_path."""
    counter = iter(range(1000))

    def _render(answers: Mapping[str, Any] | None = None) -> Path:
        return render(tmp_path / f"repo{next(counter)}", answers)

    return _render


@pytest.fixture(scope="session")
def default_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template rendered with default answers, shared read-only by many tests."""
    return render(tmp_path_factory.mktemp("default") / "fraud-detector")


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry on 127.0.0.1 for the whole session, stopped when the session ends."""
    with running_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="session")
def crd_validators() -> k8s.CrdValidators:
    """The real CRD schemas (Argo CD, Prometheus Operator, Kubeflow Trainer), strict."""
    return k8s.load_crd_validators()

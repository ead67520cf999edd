"""Shared fixtures: render the template, and install a rendered repository in a venv."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from modelyard.new import generate
from modelyard.paths import REPO_ROOT

DEFAULT_ANSWERS: dict[str, Any] = {"project_name": "Fraud Detector"}


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

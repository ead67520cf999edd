"""Install a generated repository into a fresh virtual environment of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from collections.abc import Sequence
from pathlib import Path

# torch's default wheel on PyPI pulls several GB of CUDA libraries; CPU work wants the
# CPU build. Override with MODELYARD_TORCH (e.g. "torch==2.13.0" plus
# PIP_INDEX_URL=https://download.pytorch.org/whl/cpu) where another build is wanted.
DEFAULT_TORCH = "torch==2.13.0"


class InstallError(Exception):
    """pip could not install the generated repository."""


def _pip(python: Path, args: Sequence[str]) -> None:
    command = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise InstallError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")


def venv_python(venv_dir: Path) -> Path:
    return venv_dir / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def install_repo(
    repo: Path,
    venv_dir: Path,
    extras: Sequence[str] = ("train", "serve", "dev"),
) -> Path:
    """Create venv_dir, install the repo (editable) with its extras; return its python."""
    if not (repo / "pyproject.toml").is_file():
        raise InstallError(f"{repo} has no pyproject.toml: is it a generated repository?")
    venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
    python = venv_python(venv_dir)
    if "train" in extras:
        # Installed first so that the repo's `torch>=...` range is already satisfied.
        _pip(python, [os.environ.get("MODELYARD_TORCH", DEFAULT_TORCH)])
    target = f"{repo}[{','.join(extras)}]" if extras else str(repo)
    _pip(python, ["-e", target])
    return python

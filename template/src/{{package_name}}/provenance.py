"""Where a model came from: version, git commit, and digests of metrics and files.

These values go into `export.json` and the ONNX metadata, so a served model can be traced
back to the commit and the evaluation that let it through the gate. No torch here.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import __version__

# CI systems name the commit they build in these variables (GitLab, GitHub, Jenkins); they
# are used when the working tree is not a git checkout (e.g. inside a container build).
COMMIT_ENV_VARS = ("CI_COMMIT_SHA", "GITHUB_SHA", "GIT_COMMIT")
UNKNOWN_COMMIT = "unknown"


def git_commit(cwd: Path | None = None) -> str:
    """`git rev-parse HEAD` of the working tree, else a CI variable, else "unknown"."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        result = None
    if result is not None and result.returncode == 0 and result.stdout.strip():
        return result.stdout.strip()
    for name in COMMIT_ENV_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return UNKNOWN_COMMIT


def model_version(commit: str) -> str:
    """The package version, plus the short commit as a PEP 440 local label when known."""
    if commit == UNKNOWN_COMMIT:
        return __version__
    return f"{__version__}+g{commit[:12]}"


def canonical_json(value: Any) -> str:
    """One byte-exact JSON text per value: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def metrics_digest(metrics: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of the metrics, as "sha256:<hex>"."""
    return "sha256:" + hashlib.sha256(canonical_json(metrics).encode("utf-8")).hexdigest()


def file_sha256(path: Path) -> str:
    return file_hexdigest(path, hashlib.sha256)


def file_hexdigest(path: Path, algorithm: Callable[[], Any]) -> str:
    """The hex digest of a file's content, read in blocks (`hashlib.file_digest`)."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, algorithm).hexdigest()


def tree_sha256(root: Path) -> str:
    """sha256 over every file under `root`: its path relative to `root` and its content's
    sha256, one line each in sorted order (a renamed, added or changed file changes it)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        digest.update(f"{relative}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()

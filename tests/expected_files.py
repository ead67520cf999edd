"""The exact set of files a render must produce for given answers.

Written out by hand on purpose: a file that appears or vanishes by accident (a stray
condition, a missing suffix) fails the render matrix instead of shipping unnoticed.
"""

from __future__ import annotations

from typing import Any


def expected_files(answers: dict[str, Any]) -> set[str]:
    package = answers.get("package_name", "fraud_detector")
    src = f"src/{package}"
    files = {
        ".copier-answers.yml",
        ".gitignore",
        ".yamllint.yaml",
        "README.md",
        "pyproject.toml",
        "configs/default.yaml",
        "configs/smoke.yaml",
        f"{src}/__init__.py",
        f"{src}/__main__.py",
        f"{src}/cli.py",
        f"{src}/config.py",
        f"{src}/errors.py",
    }
    return files

"""Find the CI engines and linters that ci/setup-ci-engines.sh installs.

pip puts them next to the interpreter running the tests (the repo's .venv), npm and apt on
PATH. A missing tool fails the test that needs it, with the command that installs it.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

JAVA_HOME = "/usr/lib/jvm/java-17-openjdk-amd64"


def tool(name: str) -> str:
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(name, path=search)
    if found is None:
        raise AssertionError(f"{name} is not installed: run ci/setup-ci-engines.sh")
    return found


def tool_env() -> dict[str, str]:
    """The environment for running the tools: the venv's scripts first, Java 17 for Groovy."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "JAVA_HOME": os.environ.get("JAVA_HOME", JAVA_HOME)}

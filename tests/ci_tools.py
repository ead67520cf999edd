"""Find the external tools the tests run, only where the set-up puts them.

ci/tools.txt lists every tool with its source: `venv` (pip, the `test` extra, in .venv/bin),
`npm` (.tools/npm/node_modules/.bin) or `apt` (Debian's /usr/bin and friends). A tool is
looked up in its source's folders and nowhere else, so one that a developer installed by
hand elsewhere (npm -g, pip into the system python, /usr/local/bin) is never picked up
by accident: the test fails here as it would on a fresh machine.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from functools import cache
from pathlib import Path

from modelyard.paths import REPO_ROOT

JAVA_HOME = "/usr/lib/jvm/java-17-openjdk-amd64"
MANIFEST = REPO_ROOT / "ci" / "tools.txt"
# The venv running the tests is the one ci/setup.sh made (sys.prefix, not sys.executable,
# whose symlink may point at the base interpreter).
VENV_BIN = Path(sys.prefix) / "bin"
NPM_BIN = REPO_ROOT / ".tools" / "npm" / "node_modules" / ".bin"
APT_DIRS = (Path("/usr/sbin"), Path("/usr/bin"), Path("/sbin"), Path("/bin"))
SOURCE_DIRS = {"venv": (VENV_BIN,), "npm": (NPM_BIN,), "apt": APT_DIRS}
SETUP_HINT = {
    "venv": "ci/setup.sh (pip install -e '.[test]')",
    "npm": "ci/setup-ci-engines.sh",
    "apt": "ci/setup-ci-engines.sh as root",
}


@dataclasses.dataclass(frozen=True)
class Tool:
    name: str
    source: str
    package: str

    @property
    def folders(self) -> tuple[Path, ...]:
        return SOURCE_DIRS[self.source]


@cache
def manifest() -> dict[str, Tool]:
    """The tools of ci/tools.txt that tests run by name (helper packages left out)."""
    tools = {}
    for number, line in enumerate(MANIFEST.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        name, source, package = line.split()
        if source not in SOURCE_DIRS:
            raise ValueError(f"{MANIFEST}:{number}: unknown source {source!r}")
        if name != "-":
            tools[name] = Tool(name, source, package)
    return tools


def tool(name: str) -> str:
    """The absolute path of `name`, from the place ci/tools.txt says it is installed."""
    declared = manifest().get(name)
    if declared is None:
        raise AssertionError(f"{name} is not in {MANIFEST.name}: add it with its source")
    found = shutil.which(name, path=os.pathsep.join(map(str, declared.folders)))
    if found is None:
        raise AssertionError(
            f"{name} is not installed in {', '.join(map(str, declared.folders))}: "
            f"run {SETUP_HINT[declared.source]}"
        )
    return found


def tool_path() -> str:
    """PATH for every process a test starts: the set-up's folders before anything else."""
    return os.pathsep.join([str(VENV_BIN), str(NPM_BIN), os.environ.get("PATH", "")])


def tool_env(**extra: str) -> dict[str, str]:
    """The environment for running the tools and jobs: tool_path(), Java 17 for Groovy."""
    return {
        **os.environ,
        "PATH": tool_path(),
        "JAVA_HOME": os.environ.get("JAVA_HOME", JAVA_HOME),
        **extra,
    }

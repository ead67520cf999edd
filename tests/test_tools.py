"""Every external tool the suite runs resolves inside what the set-up installed.

A tool found on PATH by accident (installed by hand, npm -g, pip into the system python)
passes on a developer's machine and fails on a fresh one. ci/tools.txt names each tool
and its source; these tests check that each resolves there, that nothing else on the PATH
the tests give their processes shadows it, and that no test runs a tool by bare name.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from modelyard.paths import REPO_ROOT

from ci_tools import MANIFEST, NPM_BIN, VENV_BIN, Tool, manifest, tool, tool_env, tool_path

TOOLS = sorted(manifest().values(), key=lambda declared: declared.name)
TEST_DIR = Path(__file__).parent
SUBPROCESS_CALLS = {"run", "Popen", "check_output", "check_call", "call"}
SET_UP_SCRIPTS = [".ci/run", "ci/setup.sh", "ci/setup-ci-engines.sh", "ci/test.sh"]


def _dpkg_owner(path: Path) -> str:
    """The Debian package that installed `path` (merged /usr: dpkg may know it as /bin/X)."""
    real = path.resolve()
    candidates = [real]
    if real.parts[:2] == ("/", "usr"):
        candidates.append(Path("/", *real.parts[2:]))
    for candidate in candidates:
        result = subprocess.run(
            ["dpkg-query", "--search", str(candidate)], capture_output=True, text=True
        )
        if result.returncode == 0:
            return result.stdout.split(":")[0].split(",")[0].strip()
    raise AssertionError(f"{path} ({real}) belongs to no Debian package")


def _test_extra_packages() -> set[str]:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    extra = pyproject["project"]["optional-dependencies"]["test"]
    return {Requirement(line).name.lower() for line in extra}


@pytest.mark.parametrize("declared", TOOLS, ids=[declared.name for declared in TOOLS])
def test_tool_resolves_where_the_set_up_installs_it(declared: Tool) -> None:
    found = Path(tool(declared.name))
    assert found.parent in declared.folders
    # Every process the tests start gets tool_path(): the same binary must win there.
    assert shutil.which(declared.name, path=tool_path()) == str(found), (
        f"{declared.name}: something on PATH shadows {found}"
    )
    if declared.source == "venv":
        assert found.parent == VENV_BIN
        assert declared.package.lower() in _test_extra_packages(), (
            f"{declared.package} is not in pyproject.toml's test extra"
        )
    elif declared.source == "npm":
        name, _, version = declared.package.rpartition("@")
        package = json.loads((NPM_BIN.parent / name / "package.json").read_text())
        assert package["version"] == version
    else:
        assert _dpkg_owner(found) == declared.package.split(":")[0]


def test_ci_test_sh_puts_the_set_up_folders_first_on_path() -> None:
    """Processes that inherit PATH from ci/test.sh (not tool_env()) resolve the same way."""
    script = (REPO_ROOT / "ci" / "test.sh").read_text()
    relative = [str(folder.relative_to(REPO_ROOT)) for folder in (VENV_BIN, NPM_BIN)]
    assert f'PATH="$PWD/{relative[0]}:$PWD/{relative[1]}:$PATH"' in script


def _bare_tool_calls(source: str) -> list[str]:
    """Calls in `source` that run an external tool by bare name: shutil.which("x") or
    subprocess.X(["x", ...]); they must go through ci_tools.tool() instead."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value
        owner_name = owner.id if isinstance(owner, ast.Name) else ""
        first = node.args[0] if node.args else None
        if owner_name == "shutil" and node.func.attr == "which":
            if isinstance(first, ast.Constant):
                found.append(f"line {node.lineno}: shutil.which({first.value!r})")
        elif (
            owner_name == "subprocess"
            and node.func.attr in SUBPROCESS_CALLS
            and isinstance(first, ast.List)
            and first.elts
            and isinstance(head := first.elts[0], ast.Constant)
            and isinstance(head.value, str)
        ):
            found.append(f"line {node.lineno}: subprocess.{node.func.attr}([{head.value!r}")
    return found


def test_no_test_runs_a_tool_by_bare_name() -> None:
    offenders = {
        path.name: calls
        for path in sorted(TEST_DIR.glob("*.py"))
        if path.name not in {"ci_tools.py", Path(__file__).name}
        and (calls := _bare_tool_calls(path.read_text()))
    }
    assert offenders == {}, f"use ci_tools.tool(NAME) and list NAME in {MANIFEST.name}"


def test_the_guard_finds_bare_tool_calls() -> None:
    source = 'import shutil, subprocess\nshutil.which("helm")\nsubprocess.run(["helm", "x"])\n'
    assert _bare_tool_calls(source) == [
        "line 2: shutil.which('helm')",
        "line 3: subprocess.run(['helm'",
    ]


def test_unknown_tool_is_refused_with_the_fix() -> None:
    with pytest.raises(AssertionError, match="helm is not in tools.txt: add it with its source"):
        tool("helm")


@pytest.mark.parametrize("script", SET_UP_SCRIPTS + ["tests/container/setup-podman.sh"])
def test_set_up_scripts_are_shellcheck_clean(script: str) -> None:
    result = subprocess.run(
        [tool("shellcheck"), "-f", "gcc", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=tool_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr

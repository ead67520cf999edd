"""The generator as users install it: a wheel, with no checkout and no network.

- The wheel (built with `python -m build`) carries the template: `modelyard new`, run from
  a fresh venv in a folder far from any checkout, renders the same files as the checkout.
- The repository it generates records the template's public URL and release tag, not a
  path of this machine. A local bare repository stands in for that URL: release N is the
  current tree, release N+1 renames and changes a file with a `_migrations` entry, and
  `modelyard update` on the generated repository pulls N+1 from the URL, keeps the user's
  edit across the rename, and reports a conflicting edit non-zero, naming the file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelyard import __version__
from modelyard.paths import REPO_ROOT
from modelyard.release import TEMPLATE_URL_ENV, release_tag

from conftest import DEFAULT_ANSWERS, commit_all, git, render
from matrix import NON_DEFAULT_TEXT

SMOKE = "configs/smoke.yaml"
RENAMED = "configs/ci-smoke.yaml"
NEXT_RELEASE = "v" + ".".join(
    [*__version__.split(".")[:2], str(int(__version__.split(".")[2]) + 1)]
)
MIGRATION = f"""
_migrations:
  - version: {NEXT_RELEASE}
    when: "{{{{ _stage == 'after' }}}}"
    command:
      - "{{{{ _copier_python }}}}"
      - "{{{{ _copier_conf.src_path }}}}/generator/modelyard/carry_renames.py"
      - "{SMOKE}={RENAMED}"
"""


def _run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # No MODELYARD_* variable leaks in from the developer's shell, and nothing from the
    # checkout is importable: the wheel must stand alone.
    clean = {key: value for key, value in os.environ.items() if not key.startswith("MODELYARD")}
    clean.pop("PYTHONPATH", None)
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, env={**clean, **env}, timeout=600
    )


@pytest.fixture(scope="module")
def wheel_modelyard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`modelyard` installed from a freshly built wheel into a venv of its own."""
    folder = tmp_path_factory.mktemp("wheel")
    build = _run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(folder)],
        cwd=REPO_ROOT,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    [wheel] = folder.glob("modelyard-*.whl")
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = _run(
        [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         str(wheel)],
        cwd=folder,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    return venv / "bin" / "modelyard"


def _files(repo: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(repo)): path.read_bytes()
        for path in sorted(repo.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(repo).parts
    }


def _answers(repo: Path) -> dict[str, Any]:
    return yaml.safe_load((repo / ".copier-answers.yml").read_text())


def _new(modelyard: Path, destination: Path, answers: dict[str, Any], **env: str):
    data = [f"--data={key}={value}" for key, value in answers.items()]
    return _run([str(modelyard), "new", str(destination), "--defaults", *data], destination.parent,
                **env)  # fmt: skip


@pytest.mark.parametrize(
    "answers", [DEFAULT_ANSWERS, NON_DEFAULT_TEXT], ids=["defaults", "non-default"]
)
def test_wheel_renders_the_checkout_template_and_records_the_release(
    wheel_modelyard: Path, tmp_path: Path, answers: dict[str, Any]
) -> None:
    away = tmp_path / "elsewhere"
    away.mkdir()
    result = _new(wheel_modelyard, away / "from-wheel", answers)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No git tags found" not in result.stderr
    from_wheel = away / "from-wheel"
    from_checkout = render(tmp_path / "from-checkout", answers)

    wheel_files, checkout_files = _files(from_wheel), _files(from_checkout)
    wheel_files.pop(".copier-answers.yml")
    checkout_files.pop(".copier-answers.yml")
    assert sorted(wheel_files) == sorted(checkout_files)
    assert wheel_files == checkout_files

    recorded = _answers(from_wheel)
    assert recorded["_src_path"] == "https://github.com/modelyard/modelyard.git"
    assert recorded["_commit"] == release_tag() == f"v{__version__}"
    expected = {key: value for key, value in _answers(from_checkout).items() if key[0] != "_"}
    assert {key: value for key, value in recorded.items() if key[0] != "_"} == expected


def test_wheel_commands_that_maintain_a_checkout_say_so(wheel_modelyard: Path, tmp_path) -> None:
    for command in (["docs"], ["docs", "--check"], ["render-ci", "--check"]):
        result = _run([str(wheel_modelyard), *command], tmp_path)
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"`modelyard {command[0]}` maintains a checkout of the template" in result.stderr
        assert "Traceback" not in result.stderr
    version = _run([str(wheel_modelyard), "--version"], tmp_path)
    assert version.stdout.strip() == (
        f"modelyard {__version__} (template v{__version__} of "
        "https://github.com/modelyard/modelyard.git)"
    )


def test_wheel_refuses_a_non_integer_naming_the_question(wheel_modelyard, tmp_path) -> None:
    result = _new(wheel_modelyard, tmp_path / "repo", {**DEFAULT_ANSWERS, "num_classes": "abc"})
    assert result.returncode == 2
    assert "question 'num_classes': 'abc' is not an integer" in result.stderr
    assert not (tmp_path / "repo").exists()


# --- updates from the template's URL ------------------------------------------------------


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, Path]:
    """(bare repository standing in for the public URL, a clone to make releases in),
    holding release v<version>: this checkout's template as it is now."""
    bare = tmp_path / "modelyard.git"
    work = tmp_path / "template-work"
    for relative in git("ls-files", "copier.yml", "template", "generator", cwd=REPO_ROOT).split(
        "\n"
    ):
        target = work / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / relative, target)
    git("init", "-q", "-b", "main", cwd=work)
    commit_all(work, f"release {release_tag()}")
    git("tag", release_tag(), cwd=work)
    git("init", "-q", "--bare", str(bare), cwd=tmp_path)
    git("push", "-q", "--tags", str(bare), "main", cwd=work)
    return bare, work


def _release_next(work: Path, bare: Path) -> None:
    """Release N+1: the smoke profile is renamed and has more weight decay."""
    old = work / "template" / f"{SMOKE}.jinja"
    text = old.read_text()
    assert "  weight_decay: 0.0001\n" in text
    git("mv", f"template/{SMOKE}.jinja", f"template/{RENAMED}.jinja", cwd=work)
    (work / "template" / f"{RENAMED}.jinja").write_text(
        text.replace("  weight_decay: 0.0001\n", "  weight_decay: 0.0002\n")
    )
    copier_yml = work / "copier.yml"
    copier_yml.write_text(copier_yml.read_text() + MIGRATION)
    commit_all(work, f"release {NEXT_RELEASE}: rename the smoke profile, more weight decay")
    git("tag", NEXT_RELEASE, cwd=work)
    git("push", "-q", "--tags", str(bare), "main", cwd=work)


def _generated(
    wheel_modelyard: Path, published: tuple[Path, Path], folder: Path, edit: tuple[str, str]
) -> Path:
    """A repository generated from the wheel at release N, committed, then edited and
    committed again; then the template publishes release N+1."""
    bare, work = published
    repo = folder / "fraud-detector"
    result = _new(wheel_modelyard, repo, DEFAULT_ANSWERS, **{TEMPLATE_URL_ENV: bare.as_uri()})
    assert result.returncode == 0, result.stdout + result.stderr
    assert _answers(repo)["_src_path"] == published[0].as_uri()
    assert _answers(repo)["_commit"] == release_tag()
    git("init", "-q", "-b", "main", cwd=repo)
    commit_all(repo, "generated")
    smoke = repo / SMOKE
    old, new = edit
    assert old in smoke.read_text()
    smoke.write_text(smoke.read_text().replace(old, new))
    commit_all(repo, "our own smoke profile")
    _release_next(work, bare)
    return repo


def _update(wheel_modelyard: Path, repo: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    # No template URL in the environment: the update follows what the answers file says.
    return _run([str(wheel_modelyard), "update", *flags], repo)


def test_update_follows_the_recorded_url_and_migrates_a_rename(
    wheel_modelyard: Path, published: tuple[Path, Path], tmp_path: Path
) -> None:
    repo = _generated(wheel_modelyard, published, tmp_path, ("seed: 1234\n", "seed: 42  # ours\n"))

    result = _update(wheel_modelyard, repo, "--trust")

    assert result.returncode == 0, result.stdout + result.stderr
    assert not (repo / SMOKE).exists()
    renamed = (repo / RENAMED).read_text()
    assert "seed: 42  # ours\n" in renamed  # the user's edit moved with the file
    assert "  weight_decay: 0.0002\n" in renamed  # and the release's own change arrived
    assert "<<<<<<<" not in renamed
    assert _answers(repo)["_commit"] == NEXT_RELEASE
    assert _answers(repo)["_src_path"] == published[0].as_uri()


def test_update_across_a_migration_needs_trust_and_changes_nothing_without(
    wheel_modelyard: Path, published: tuple[Path, Path], tmp_path: Path
) -> None:
    repo = _generated(wheel_modelyard, published, tmp_path, ("seed: 1234\n", "seed: 42  # ours\n"))
    head = git("rev-parse", "HEAD", cwd=repo)

    result = _update(wheel_modelyard, repo)

    assert result.returncode == 1
    assert "migrations" in result.stderr and "--trust" in result.stderr
    assert git("status", "--porcelain", cwd=repo) == ""
    assert git("rev-parse", "HEAD", cwd=repo) == head


def test_conflicting_edit_across_a_rename_is_reported_naming_the_file(
    wheel_modelyard: Path, published: tuple[Path, Path], tmp_path: Path
) -> None:
    repo = _generated(
        wheel_modelyard,
        published,
        tmp_path,
        ("  weight_decay: 0.0001\n", "  weight_decay: 0.0009\n"),
    )

    result = _update(wheel_modelyard, repo, "--trust")

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"the update conflicts with local edits in: {RENAMED}" in result.stderr
    renamed = (repo / RENAMED).read_text()
    assert "<<<<<<< before updating" in renamed
    assert "  weight_decay: 0.0009\n" in renamed and "  weight_decay: 0.0002\n" in renamed
    # Nothing is lost: the user's version is still committed.
    assert "  weight_decay: 0.0009\n" in git("show", f"HEAD:{SMOKE}", cwd=repo)

"""`copier update` end to end: template changes arrive, user edits survive, conflicts fail."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import copier
import pytest

from modelyard.paths import COPIER_YML, TEMPLATE_DIR
from modelyard.update import UpdateError, update

from conftest import commit_all, git

SMOKE = "configs/smoke.yaml"


@pytest.fixture
def template_repo(tmp_path: Path) -> Path:
    """The template as a git repo with two releases: v1.0.0, then v1.1.0 with more weight decay."""
    repo = tmp_path / "template-repo"
    shutil.copytree(TEMPLATE_DIR, repo / "template")
    shutil.copy(COPIER_YML, repo / "copier.yml")
    git("init", "-q", "-b", "main", cwd=repo)
    commit_all(repo, "v1")
    git("tag", "v1.0.0", cwd=repo)
    smoke = repo / "template" / f"{SMOKE}.jinja"
    text = smoke.read_text()
    assert "  weight_decay: 0.0001\n" in text
    smoke.write_text(text.replace("  weight_decay: 0.0001\n", "  weight_decay: 0.0002\n"))
    commit_all(repo, "v1.1: more smoke weight decay")
    git("tag", "v1.1.0", cwd=repo)
    return repo


def _generate(template_repo: Path, destination: Path, ref: str) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(
            str(template_repo),
            destination,
            data={"project_name": "Fraud Detector"},
            defaults=True,
            vcs_ref=ref,
            quiet=True,
        )
    return destination


def _tree(repo: Path) -> dict[str, str]:
    files = {}
    for path in sorted(repo.rglob("*")):
        relative = path.relative_to(repo)
        if path.is_file() and relative.parts[0] != ".git" and path.name != ".copier-answers.yml":
            files[str(relative)] = path.read_text(encoding="utf-8", errors="replace")
    return files


def _edit(repo: Path, old: str, new: str) -> None:
    path = repo / SMOKE
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_update_brings_template_changes_and_keeps_user_edits(template_repo, tmp_path) -> None:
    repo = _generate(template_repo, tmp_path / "model", "v1.0.0")
    git("init", "-q", "-b", "main", cwd=repo)
    commit_all(repo, "generated")
    _edit(repo, "seed: 1234\n", "seed: 42  # our lucky seed\n")
    commit_all(repo, "another seed")

    update(repo, vcs_ref="v1.1.0")

    smoke = (repo / SMOKE).read_text()
    assert "  weight_decay: 0.0002\n" in smoke
    assert "seed: 42  # our lucky seed\n" in smoke
    # The result is exactly a fresh v1.1.0 render plus the user's edit.
    fresh = _generate(template_repo, tmp_path / "fresh", "v1.1.0")
    _edit(fresh, "seed: 1234\n", "seed: 42  # our lucky seed\n")
    assert _tree(repo) == _tree(fresh)
    assert "_commit: v1.1.0" in (repo / ".copier-answers.yml").read_text()


def test_conflicting_update_fails_naming_the_file_and_loses_nothing(
    template_repo, tmp_path
) -> None:
    repo = _generate(template_repo, tmp_path / "model", "v1.0.0")
    git("init", "-q", "-b", "main", cwd=repo)
    commit_all(repo, "generated")
    _edit(repo, "  weight_decay: 0.0001\n", "  weight_decay: 0.0005\n")
    commit_all(repo, "regularise harder")

    with pytest.raises(UpdateError, match=f"conflicts with local edits in: {SMOKE}"):
        update(repo, vcs_ref="v1.1.0")
    smoke = (repo / SMOKE).read_text()
    assert (
        "<<<<<<<" in smoke
        and "  weight_decay: 0.0005\n" in smoke
        and "  weight_decay: 0.0002\n" in smoke
    )
    # The user's version is still committed; abandoning the update restores it.
    assert "  weight_decay: 0.0005\n" in git("show", f"HEAD:{SMOKE}", cwd=repo)


def test_update_refuses_a_dirty_repository(template_repo, tmp_path) -> None:
    repo = _generate(template_repo, tmp_path / "model", "v1.0.0")
    git("init", "-q", "-b", "main", cwd=repo)
    commit_all(repo, "generated")
    _edit(repo, "  weight_decay: 0.0001\n", "  weight_decay: 0.0006\n")
    with pytest.raises(UpdateError, match="dirty"):
        update(repo, vcs_ref="v1.1.0")
    assert "  weight_decay: 0.0006\n" in (repo / SMOKE).read_text()


def test_update_of_a_folder_not_generated_by_copier_is_refused(tmp_path) -> None:
    with pytest.raises(UpdateError, match="has no .copier-answers.yml"):
        update(tmp_path)


GITLAB_CI = ".gitlab-ci.yml"
USER_JOB = """
notify:
  stage: verify
  needs: [verify]
  script:
    - echo "a stage the user added"
"""


def test_a_stage_added_to_a_ci_file_survives_an_update_that_changes_it(
    template_repo, tmp_path
) -> None:
    """The CI files' header promises this: the file is the template's, edits are merged."""
    name = "{% if 'gitlab' in ci_systems %}.gitlab-ci.yml{% endif %}.jinja"
    ci_template = template_repo / "template" / name
    text = ci_template.read_text()
    assert "  timeout: 15m\n" in text
    ci_template.write_text(text.replace("  timeout: 15m\n", "  timeout: 20m\n", 1))
    commit_all(template_repo, "v1.2: a longer lint timeout")
    git("tag", "v1.2.0", cwd=template_repo)

    repo = _generate(template_repo, tmp_path / "model", "v1.1.0")
    git("init", "-q", "-b", "main", cwd=repo)
    commit_all(repo, "generated")
    with (repo / GITLAB_CI).open("a") as pipeline:
        pipeline.write(USER_JOB)
    commit_all(repo, "notify after verify")
    assert "edits (a three-way merge)" in (repo / GITLAB_CI).read_text()

    update(repo, vcs_ref="v1.2.0")

    # Exactly the new release's file with the user's stage still in it.
    fresh = _generate(template_repo, tmp_path / "fresh", "v1.2.0")
    assert "  timeout: 20m\n" in (fresh / GITLAB_CI).read_text()
    assert (repo / GITLAB_CI).read_text() == (fresh / GITLAB_CI).read_text() + USER_JOB

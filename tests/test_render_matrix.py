"""Every case of the matrix renders the exact file set, with no leftovers, and lints clean."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from modelyard.questions import load_questions

from ci_tools import tool
from conftest import render
from expected_files import expected_files
from matrix import NON_DEFAULT_TEXT, build_cases, case_id

CASES = build_cases()
JINJA_LEFTOVER = re.compile(r"(?<!\$)\{\{|\{%|\{#")


@pytest.fixture(scope="module", params=CASES, ids=case_id)
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    answers = request.param
    return answers, render(tmp_path_factory.mktemp("matrix") / "repo", answers)


def _files(repo: Path) -> set[str]:
    return {str(path.relative_to(repo)) for path in repo.rglob("*") if path.is_file()}


def test_matrix_covers_every_choice_of_every_question() -> None:
    for question in load_questions():
        seen = set()
        for case in CASES:
            value = case.get(question.name, question.default)
            seen.update(value if isinstance(value, list) else [value])
        missing = [value for value in question.choice_values if value not in seen]
        assert not missing, f"{question.name}: choices {missing} appear in no render case"


def test_matrix_gives_every_free_text_question_a_non_default_answer() -> None:
    free_text = {q.name for q in load_questions() if not q.choices}
    assert set(NON_DEFAULT_TEXT) == free_text


def test_exact_file_set(rendered) -> None:
    answers, repo = rendered
    assert _files(repo) == expected_files(answers)


def test_no_jinja_leftovers(rendered) -> None:
    _, repo = rendered
    for name in sorted(_files(repo)):
        text = (repo / name).read_text(encoding="utf-8", errors="replace")
        match = JINJA_LEFTOVER.search(text)
        assert match is None, f"{name}: unrendered Jinja near {text[match.start() :][:60]!r}"
        assert "{{" not in name and "{%" not in name, f"unrendered path {name}"


def test_every_data_file_parses(rendered) -> None:
    answers, repo = rendered
    for name in sorted(_files(repo)):
        path = repo / name
        if path.suffix in (".yaml", ".yml"):
            list(yaml.safe_load_all(path.read_text()))
        elif path.suffix == ".toml":
            tomllib.loads(path.read_text())
        elif path.suffix == ".json":
            json.loads(path.read_text())
    answers_file = yaml.safe_load((repo / ".copier-answers.yml").read_text())
    for key, value in answers.items():
        assert answers_file[key] == value


def test_yamllint_is_clean(rendered) -> None:
    _, repo = rendered
    result = subprocess.run(
        [tool("yamllint"), "-f", "parsable", "-c", ".yamllint.yaml", "."],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_python_is_ruff_clean(rendered) -> None:
    _, repo = rendered
    for command in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
        result = subprocess.run([tool("ruff"), *command], cwd=repo, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_configs_carry_the_answers(rendered) -> None:
    answers, repo = rendered
    # The answers as Copier recorded them: every default (some depend on model_family)
    # rendered.
    merged = yaml.safe_load((repo / ".copier-answers.yml").read_text())
    assert {key: merged[key] for key in answers} == answers
    package = merged["package_name"]
    assert (repo / "src" / package / "__init__.py").is_file()
    for profile in ("smoke", "default"):
        config = yaml.safe_load((repo / "configs" / f"{profile}.yaml").read_text())
        shape = [int(dim) for dim in str(merged["input_shape"]).split("x")]
        assert config["model"]["input_shape"] == shape
        assert config["model"]["num_classes"] == merged["num_classes"]
        assert config["gate"]["min_accuracy"] == merged["min_accuracy"]
        assert config["gate"]["max_regression"] == merged["max_regression"]

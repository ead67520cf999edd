"""Answers that pass validation never break a generated file; the rest are refused.

Accepted: matrix.ADVERSARIAL_TEXT (quotes, ": #", unicode, $(...), backticks, maximum
lengths) is one case of the render matrix, so test_render_matrix parses and lints every
file it renders and test_container runs hadolint on it; here its values are read back
from the formats they land in, verbatim. Refused: a trailing newline, a backslash or a
control character in any free-text answer, and a non-number for a numeric question, each
exits non-zero naming the question and leaves no folder.
"""

from __future__ import annotations

import ast
import subprocess
import tomllib
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelyard import cli
from modelyard.questions import load_questions

from ci_tools import tool
from conftest import render
from matrix import ADVERSARIAL_TEXT

FREE_TEXT = [question for question in load_questions() if not question.choices]
TEXT_QUESTIONS = [question.name for question in FREE_TEXT if question.type == "str"]
NUMERIC = {question.name: question.type for question in FREE_TEXT if question.type != "str"}
# Valid answers to corrupt: ADVERSARIAL_TEXT itself, so each refusal is due to the corruption.
CORRUPTIONS = {
    "trailing newline": lambda value: value + "\n",
    "newline inside": lambda value: value[:1] + "\n" + value[1:],
    "backslash": lambda value: value[:1] + "\\" + value[1:],
    "NUL": lambda value: value[:1] + "\x00" + value[1:],
    "bell": lambda value: value[:1] + "\x07" + value[1:],
    "escape": lambda value: value[:1] + "\x1b[31m" + value[1:],
    "DEL": lambda value: value[:1] + "\x7f" + value[1:],
}
NOT_NUMBERS = {"int": ["abc", "1.5", "1e3", ""], "float": ["abc", "nan", "0.5.1", ""]}


def _refused_cases() -> list[tuple[str, Any]]:
    cases = [
        (name, corrupt(str(ADVERSARIAL_TEXT[name])))
        for name in TEXT_QUESTIONS
        for corrupt in CORRUPTIONS.values()
    ]
    cases += [(name, value) for name, kind in NUMERIC.items() for value in NOT_NUMBERS[kind]]
    return cases


REFUSED = _refused_cases()


def test_every_free_text_question_has_an_adversarial_answer() -> None:
    assert set(ADVERSARIAL_TEXT) == {question.name for question in FREE_TEXT}


@pytest.mark.parametrize(
    ("name", "value"), REFUSED, ids=[f"{name}={value!r}"[:48] for name, value in REFUSED]
)
def test_refused_answer_names_the_question_and_leaves_nothing(
    tmp_path, capsys, name, value
) -> None:
    destination = tmp_path / "repo"
    # Every other answer is the valid adversarial one: only the corruption is wrong. The
    # CLI runs in-process because an argv cannot hold the NUL that a Python caller can.
    data = [f"--data={key}={answer}" for key, answer in {**ADVERSARIAL_TEXT, name: value}.items()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Copier: the template's working tree is dirty
        code = cli.main(["new", str(destination), "--defaults", "--vcs-ref", "HEAD", *data])
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    assert f"question '{name}'" in stderr
    assert "Traceback" not in stderr
    assert not destination.exists()


@pytest.fixture(scope="module")
def adversarial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("adversarial") / "repo", ADVERSARIAL_TEXT)


def test_free_text_arrives_verbatim_in_toml_yaml_and_markdown(adversarial: Path) -> None:
    project = tomllib.loads((adversarial / "pyproject.toml").read_text())["project"]
    assert project["description"] == ADVERSARIAL_TEXT["description"]
    assert project["authors"] == [
        {"name": ADVERSARIAL_TEXT["author_name"], "email": ADVERSARIAL_TEXT["author_email"]}
    ]
    assert project["name"] == ADVERSARIAL_TEXT["repo_slug"]
    readme = (adversarial / "README.md").read_text()
    assert readme.startswith(f"# {ADVERSARIAL_TEXT['project_name']}\n\n")
    assert f"\n{ADVERSARIAL_TEXT['description']}\n" in readme
    answers = yaml.safe_load((adversarial / ".copier-answers.yml").read_text())
    assert {key: answers[key] for key in ADVERSARIAL_TEXT} == ADVERSARIAL_TEXT
    applications = list(
        yaml.safe_load_all((adversarial / "deploy" / "argocd" / "applications.yaml").read_text())
    )
    assert {app["spec"]["source"]["repoURL"] for app in applications} == {
        ADVERSARIAL_TEXT["gitops_repo_url"]
    }
    # Argo CD follows the branch the deploys push to.
    assert {app["spec"]["source"]["targetRevision"] for app in applications} == {
        ADVERSARIAL_TEXT["default_branch"]
    }
    workflow = yaml.safe_load((adversarial / ".github" / "workflows" / "ci.yml").read_text())
    assert workflow[True]["push"]["branches"] == [ADVERSARIAL_TEXT["default_branch"]]
    assert (
        f"branch '{ADVERSARIAL_TEXT['default_branch']}'"
        in (adversarial / "Jenkinsfile").read_text()
    )


def test_generated_python_holds_the_answers_as_plain_literals(adversarial: Path) -> None:
    package = adversarial / "src" / ADVERSARIAL_TEXT["package_name"]
    constants = {}
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        constants[target.id] = node.value.value
    assert constants["GITOPS_REPO_URL"] == ADVERSARIAL_TEXT["gitops_repo_url"]
    assert constants["GITOPS_BRANCH"] == ADVERSARIAL_TEXT["default_branch"]
    assert constants["DEFAULT_REPOSITORY"] == ADVERSARIAL_TEXT["image_repository"]
    assert constants["MODEL_NAME"] == ADVERSARIAL_TEXT["repo_slug"]


def test_every_overlay_builds_with_the_longest_names(adversarial: Path) -> None:
    for overlay in sorted((adversarial / "deploy" / "overlays").iterdir()):
        result = subprocess.run(
            [tool("kubectl"), "kustomize", str(overlay)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        namespaces = {
            document["metadata"].get("namespace")
            for document in yaml.safe_load_all(result.stdout)
            if document and document["kind"] != "Namespace"
        }
        expected = f"{ADVERSARIAL_TEXT['namespace_prefix']}-{overlay.name}"
        assert namespaces == {expected}
        assert len(expected) <= 63

"""The READMEs document what copier.yml really asks and what each CI system needs."""

from __future__ import annotations

import re

import pytest

from modelyard.docs import END, START, questions_table, update_readme
from modelyard.emit_jenkins import CREDENTIAL_BINDINGS
from modelyard.paths import README
from modelyard.questions import load_questions


def test_questions_table_is_fresh() -> None:
    # Raises StaleDocsError naming the fix (`modelyard docs`) when copier.yml moved on.
    assert update_readme(check=True) is False


def test_table_lists_every_question_with_its_choices() -> None:
    text = README.read_text()
    block = text.split(START, 1)[1].split(END, 1)[0]
    for question in load_questions():
        row = next(line for line in block.splitlines() if line.startswith(f"| `{question.name}` |"))
        for value in question.choice_values:
            assert f"`{value}`" in row


def test_table_marks_validated_free_text() -> None:
    table = questions_table(load_questions())
    assert "| `package_name` | str |" in table
    assert "(validated)" in table


@pytest.mark.parametrize("systems", [["github"], ["gitlab", "jenkins"]])
def test_generated_readme_says_what_each_chosen_ci_system_needs_set_up(render_repo, systems):
    readme = (render_repo({"ci_systems": systems}) / "README.md").read_text(encoding="utf-8")
    setup = readme.split("### Setting up each CI system", 1)[1].split("\n## ", 1)[0]
    titles = {"github": "**GitHub Actions**", "gitlab": "**GitLab CI**", "jenkins": "**Jenkins**"}
    for system, title in titles.items():
        assert (title in setup) == (system in systems), system
    if "jenkins" in systems:
        # The credential IDs the Jenkinsfile binds, from the emitter itself.
        ids = re.findall(
            r"credentialsId: '([^']+)'", " ".join(filter(None, CREDENTIAL_BINDINGS.values()))
        )
        assert ids and all(f"`{identifier}`" in setup for identifier in ids), ids
    if "github" in systems:
        assert "required reviewers" in setup and "`prod`" in setup
    if "gitlab" in systems:
        assert "Protected environments" in setup and "Job token permissions" in setup

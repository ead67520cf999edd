"""The README documents what copier.yml really asks."""

from __future__ import annotations

from modelyard.docs import END, START, questions_table, update_readme
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

"""The render matrix, built from copier.yml so that a new choice cannot go untested.

Choice questions whose values interact (they change the same files) are multiplied; the
others are cycled through the cases. Free-text questions alternate between their defaults
and one non-default set of answers that exercises every computed name.
"""

from __future__ import annotations

import itertools
from typing import Any

from modelyard.questions import Question, load_questions

# Choices that change the same generated files: every combination is rendered.
INTERACTING = ("python_version",)

# A valid non-default answer for every free-text question (validated in test_questions).
NON_DEFAULT_TEXT: dict[str, Any] = {
    "project_name": "Churn Model",
    "repo_slug": "churn-svc",
    "package_name": "churn_core",
    "description": "Predicts churn from activity images",
    "author_name": "Retention Team",
    "author_email": "retention@example.org",
    "input_shape": "1x28x28",
    "num_classes": 5,
    "min_accuracy": 0.75,
    "max_regression": 0.02,
    "image_repository": "localhost:5000/retention/churn",
    "namespace_prefix": "retention-churn",
}


def _choice_questions(questions: list[Question]) -> list[Question]:
    return [question for question in questions if question.choices]


def _free_text_questions(questions: list[Question]) -> list[Question]:
    return [question for question in questions if not question.choices]


def build_cases(questions: list[Question] | None = None) -> list[dict[str, Any]]:
    questions = questions if questions is not None else load_questions()
    choice = _choice_questions(questions)
    interacting = [q for q in choice if q.name in INTERACTING]
    cycled = [q for q in choice if q.name not in INTERACTING]
    products = list(itertools.product(*(q.choice_values for q in interacting))) or [()]
    longest_cycle = max((len(q.choices) for q in cycled), default=1)
    count = max(len(products), longest_cycle, 2)
    cases = []
    for index in range(count):
        answers: dict[str, Any] = {"project_name": "Fraud Detector"}
        if index % 2 == 1:
            answers.update(NON_DEFAULT_TEXT)
        for question, value in zip(interacting, products[index % len(products)], strict=True):
            answers[question.name] = value
        for question in cycled:
            answers[question.name] = question.choice_values[index % len(question.choices)]
        cases.append(answers)
    return cases


def case_id(answers: dict[str, Any]) -> str:
    shown = [str(answers[q.name]) for q in _choice_questions(load_questions()) if q.name in answers]
    return "-".join([answers.get("package_name", "default"), *shown])

"""The render matrix, built from copier.yml so that a new choice cannot go untested.

Choice questions whose values interact (they change the same files) are multiplied; the
others are cycled through the cases. Multi-choice questions take every non-empty subset
that their own validator accepts. Free-text questions alternate between their defaults
and one non-default set of answers that exercises every computed name.
"""

from __future__ import annotations

import itertools
from typing import Any

from modelyard.questions import Question, load_questions

# Choices that change the same generated files: every combination is rendered.
INTERACTING = ("python_version", "gitops_mode")

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
    "gitops_repo_url": "git@git.example.org:retention/churn-deploy.git",
    "argocd_namespace": "gitops",
    "gpu_runner_label": "gpu-a100",
    "default_branch": "trunk",
}

# Valid answers that a careless template breaks: quotes, ": #", unicode, shell syntax,
# backticks, and the longest value each validator allows. One render case takes them all.
DESCRIPTION = "He said \"ship it\": #1 naïve café ✓ $(rm -rf /) `whoami` 'single' & <b>"
ADVERSARIAL_TEXT: dict[str, Any] = {
    "project_name": "Max Length Model-Name_with Spaces and Dashes 0123456789 abcd",
    "repo_slug": "m" + "-x1" * 16 + "z",
    "package_name": "p" + "_q9" * 9 + "_z",
    "description": DESCRIPTION + " " + "ø" * (199 - len(DESCRIPTION)),
    "author_name": 'Zoë O\'Brien "Bob": #ml-team $(id) `id` & Co',
    "author_email": "o'brien+ml#team@sub-domain.example.co.uk",
    "input_shape": "1x8x512",
    "num_classes": 1000,
    "min_accuracy": 1.0,
    "max_regression": 0.0,
    "image_repository": "registry-1.example.com:5000/a__b/c.d/e--f",
    "namespace_prefix": "n" + "-a9" * 16 + "b",
    "gitops_repo_url": "ssh://git@git.example.com:2222/team/sub%20dir/repo_v2.git",
    "argocd_namespace": "a" + "-b" * 30 + "c",
    "gpu_runner_label": "G" + "_.-9" * 15 + "xy",
    # Not release/...: zizmor rightly treats pushes to release branches as publishing.
    "default_branch": "ml/" + "b" * 97,
}


# input_shape's grammar depends on model_family: a valid non-default shape per family
# (NON_DEFAULT_TEXT's is the image family's), and the largest each validator allows.
FAMILY_INPUT_SHAPES: dict[str, tuple[str, str]] = {
    "image-cnn": (NON_DEFAULT_TEXT["input_shape"], "1x8x512"),
    "sequence-rnn": ("50x3", "10000x1024"),
    "text-transformer": ("64", "4096"),
}


def for_family(answers: dict[str, Any], family: str) -> dict[str, Any]:
    """`answers` with a non-default input_shape that `family` accepts."""
    if "input_shape" not in answers:
        return answers
    adversarial = answers["input_shape"] == ADVERSARIAL_TEXT["input_shape"]
    return {**answers, "input_shape": FAMILY_INPUT_SHAPES[family][1 if adversarial else 0]}


def choice_values(question: Question) -> list[Any]:
    """The values a case may take: each choice, or each valid subset for a multiselect."""
    if not question.multiselect:
        return question.choice_values
    subsets = []
    for size in range(len(question.choices), 0, -1):
        for subset in itertools.combinations(question.choice_values, size):
            if not question.validation_error(list(subset)):
                subsets.append(list(subset))
    return subsets


def build_cases(questions: list[Question] | None = None) -> list[dict[str, Any]]:
    questions = questions if questions is not None else load_questions()
    choice = [question for question in questions if question.choices]
    interacting = [q for q in choice if q.name in INTERACTING]
    cycled = [q for q in choice if q.name not in INTERACTING]
    products = list(itertools.product(*(choice_values(q) for q in interacting))) or [()]
    longest_cycle = max((len(choice_values(q)) for q in cycled), default=1)
    count = max(len(products), longest_cycle, 2)
    cases = []
    for index in range(count):
        answers: dict[str, Any] = {"project_name": "Fraud Detector"}
        # Offset by the round through the products, so that no free-text variant is
        # always paired with the same interacting choices.
        if (index + index // len(products)) % 2 == 1:
            answers.update(NON_DEFAULT_TEXT)
        for question, value in zip(interacting, products[index % len(products)], strict=True):
            answers[question.name] = value
        for question in cycled:
            values = choice_values(question)
            answers[question.name] = values[index % len(values)]
        cases.append(for_family(answers, answers["model_family"]))
    cases.append({**ADVERSARIAL_TEXT, **{q.name: choice_values(q)[0] for q in choice}})
    return cases


def case_id(answers: dict[str, Any]) -> str:
    shown = []
    for question in load_questions():
        if question.choices and question.name in answers:
            value = answers[question.name]
            shown.append("+".join(value) if isinstance(value, list) else str(value))
    return "-".join([answers.get("package_name", "default"), *shown])

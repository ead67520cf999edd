"""Read the questions of copier.yml: the single source for docs and the render matrix."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml
from jinja2.sandbox import SandboxedEnvironment

from .paths import copier_yml

# The same Jinja environment Copier renders validators with (its default extensions).
_JINJA = SandboxedEnvironment(extensions=["jinja2_ansible_filters.AnsibleCoreFiltersExtension"])


@dataclasses.dataclass(frozen=True)
class Question:
    name: str
    type: str
    help: str
    default: Any
    # (label, value) pairs; empty for free-text questions.
    choices: tuple[tuple[str, Any], ...]
    multiselect: bool
    validator: str | None

    @property
    def validated(self) -> bool:
        return bool(self.validator)

    def validation_error(self, value: Any, context: dict[str, Any] | None = None) -> str:
        """The validator's message for this answer, or "" when Copier would accept it."""
        if not self.validator:
            return ""
        template = _JINJA.from_string(self.validator)
        return template.render({**(context or {}), self.name: value}).strip()

    @property
    def choice_values(self) -> list[Any]:
        return [value for _, value in self.choices]


def load_questions(path: Path | None = None) -> list[Question]:
    """The questions a user is asked, in order; settings and computed values are left out."""
    config = yaml.safe_load((path or copier_yml()).read_text(encoding="utf-8"))
    questions = []
    for name, spec in config.items():
        if name.startswith("_") or not isinstance(spec, dict):
            continue
        if spec.get("when") is False:  # computed value, never asked
            continue
        raw_choices = spec.get("choices") or []
        if isinstance(raw_choices, dict):
            choices = tuple((str(label), value) for label, value in raw_choices.items())
        else:
            choices = tuple((str(value), value) for value in raw_choices)
        questions.append(
            Question(
                name=name,
                type=spec.get("type", "str"),
                help=" ".join(str(spec.get("help", "")).split()),
                default=spec.get("default"),
                choices=choices,
                multiselect=bool(spec.get("multiselect", False)),
                validator=spec.get("validator"),
            )
        )
    return questions

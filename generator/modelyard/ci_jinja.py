"""How the pipeline model becomes Jinja inside the emitted CI templates.

The emitted files live in template/ and Copier renders them once per answer set, so what
depends on an answer is written as Jinja: the package name, the Python version, and the
stages of optional environments (present only when the `environments` answer names them).
All three emitters use these helpers so that they make the same decisions.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from typing import Any

import yaml

from .ci_document import Choice
from .pipeline import Pipeline, Stage, fill_placeholders

# What a generated repository's CI file says about itself. It has no ci/pipeline.yml: the
# file is the template's, and a user's edit to it is kept by `copier update`.
HEADER = (
    "Owned by the modelyard template: emitted from its ci/pipeline.yml by `modelyard render-ci`.",
    "Edit it here to add or change a stage: `copier update` merges template changes into your",
    "edits (a three-way merge) and names any file where both changed the same lines.",
)

# The step every job runs first: the install command the CI variable INSTALL_COMMAND holds
# (a variable, so that a mirror or an air-gapped runner can replace it).
INSTALL_STEP = 'sh -c "$INSTALL_COMMAND"'

_JINJA_EXPRESSION = re.compile(r"\{\{.*?\}\}|\{%.*?%\}")
# A value every Jinja expression here renders to for the purpose of choosing YAML quoting:
# answers are identifiers, versions and environment names, never YAML syntax.
_PROBE = "x"


def chosen_before(pipeline: Pipeline, environment: str) -> str:
    """Jinja for the last chosen environment before `environment` in promotion order."""
    earlier = ", ".join(f"'{name}'" for name in pipeline.previous_environments(environment))
    return f"{{{{ [{earlier}] | select('in', environments) | list | last }}}}"


def command(pipeline: Pipeline, stage: Stage | None, line: str) -> str:
    """A spec command with its placeholders turned into Jinja (or literals where fixed)."""
    values = {
        "package": "{{ package_name }}",
        "python_version": "{{ python_version }}",
        "environment": stage.environment if stage and stage.environment else "",
        "previous_environment": chosen_before(pipeline, stage.environment)
        if stage and stage.environment
        else "",
    }
    return fill_placeholders(line, values)


def install_command(pipeline: Pipeline) -> str:
    return command(pipeline, None, pipeline.install.command)


def condition(pipeline: Pipeline, stage: Stage) -> str | None:
    """The Jinja test under which an optional stage exists, None when it always does."""
    if not pipeline.is_optional(stage):
        return None
    return f"'{stage.environment}' in environments"


def present_when(pipeline: Pipeline, stage: Stage, value: Any) -> Any:
    """`value`, kept only in repositories that have `stage` (see `condition`)."""
    test = condition(pipeline, stage)
    return value if test is None else Choice(test, value)


def install_environment(pipeline: Pipeline, stage: Stage | None = None) -> dict[str, str]:
    """What the install step reads besides INSTALL_COMMAND: for the whole pipeline (no
    stage), or what one stage's job sets differently (its extras; the runner's torch
    backend is left to `runner_test`, as it depends on an answer)."""
    extras = ",".join(pipeline.install.extras)
    if stage is None:
        return {"UV_TORCH_BACKEND": pipeline.install.torch_backend, "INSTALL_EXTRAS": extras}
    own = ",".join(pipeline.install_extras(stage))
    return {} if own == extras else {"INSTALL_EXTRAS": own}


def runner_test(pipeline: Pipeline, stage: Stage) -> str | None:
    """The Jinja test under which a stage runs on its runner class, None for no class.

    The class is in use when the repository's answer names its label (non-empty).
    """
    if stage.runner is None:
        return None
    return pipeline.runner(stage.runner).label_answer


def runner_label(pipeline: Pipeline, stage: Stage) -> str:
    """Jinja for the label of the stage's runner (the repository's answer)."""
    return f"{{{{ {runner_test(pipeline, stage)} }}}}"


def append_block(
    lines: list[str], test: str, block: list[str], mark: Callable[[str], str] = str
) -> None:
    """Add `block` (whole lines) after `lines`, kept only when the Jinja `test` holds.

    `lines` are joined with newlines later, so the opening tag ends the last line and the
    closing tag ends the block's last line: a false test leaves not even a blank line.
    `mark` lets an emitter flag the tags (GitHub wraps everything else in raw blocks).
    """
    lines[-1] += mark(f"{{% if {test} %}}") + "\n" + "\n".join(block) + mark("{% endif %}")


def need(pipeline: Pipeline, name: str) -> str:
    """A need as Jinja: an optional stage falls back to its own single need when absent."""
    stage = pipeline.stage(name)
    test = condition(pipeline, stage)
    if test is None:
        return name
    fallback = need(pipeline, stage.needs[0])
    return f"{{% if {test} %}}{name}{{% else %}}{fallback}{{% endif %}}"


def if_block(test: str | None, text: str) -> str:
    """`text` (whole lines) kept only when `test` holds, leaving no blank line otherwise.

    The tags sit at the start of the first line and right after the last newline, so a
    false test removes the lines and their newlines exactly; Copier renders without
    trim_blocks.
    """
    if test is None:
        return text
    return f"{{% if {test} %}}{text}{{% endif %}}"


def yaml_scalar(text: str) -> str:
    """`text` as a YAML scalar: plain where YAML reads it back unchanged, else quoted.

    The choice is made on the text as rendered, with each Jinja expression standing for
    a plain word; quotes inside Jinja expressions are not part of the rendered YAML.
    """
    probe = _JINJA_EXPRESSION.sub(_PROBE, text)
    try:
        plain_ok = yaml.safe_load(f"key: {probe}") == {"key": probe}
    except yaml.YAMLError:
        plain_ok = False
    if plain_ok and probe.strip() == probe and "#" not in probe:
        return text
    pieces = _JINJA_EXPRESSION.split(text)
    expressions = _JINJA_EXPRESSION.findall(text)
    quoted = pieces[0].replace("'", "''")
    for expression, piece in zip(expressions, pieces[1:], strict=True):
        quoted += expression + piece.replace("'", "''")
    return f"'{quoted}'"


def folded(indent: str, key: str, text: str) -> list[str]:
    """`key: >-` with `text` folded after each `&&`, for commands too long for one line.

    YAML folds the lines back into one, joined by single spaces.
    """
    parts = text.split(" && ")
    lines = [f"{indent}{key}: >-"]
    lines += [
        f"{indent}  {part}{' &&' if index < len(parts) - 1 else ''}"
        for index, part in enumerate(parts)
    ]
    return lines

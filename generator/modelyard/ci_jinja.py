"""How the pipeline model becomes Jinja inside the emitted CI templates.

The emitted files live in template/ and Copier renders them once per answer set, so what
depends on an answer is written as Jinja: the package name, the Python version, and the
stages of optional environments (present only when the `environments` answer names them).
All three emitters use these helpers so that they make the same decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .ci_document import Choice
from .pipeline import Pipeline, Stage, fill_placeholders

# What a generated repository's CI file says about itself. It has no ci/pipeline.yml: the
# file is the template's, and a user's edit to it is kept by `copier update`.
HEADER = (
    "Owned by the modelyard template: emitted from its ci/pipeline.yml by `modelyard render-ci`.",
    "Edit it here to add or change a stage: `copier update` merges template changes into your",
    "edits (a three-way merge) and names any file where both changed the same lines.",
)

# The branch that deploys: the repository's answer (GitLab reads $CI_DEFAULT_BRANCH).
DEFAULT_BRANCH = "{{ default_branch }}"

# The step every job runs first: the install command the CI variable INSTALL_COMMAND holds
# (a variable, so that a mirror or an air-gapped runner can replace it).
INSTALL_STEP = 'sh -c "$INSTALL_COMMAND"'


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


def install_environment(
    pipeline: Pipeline, stage: Stage | None = None, on_runner: bool = False
) -> dict[str, str]:
    """What the install step reads besides INSTALL_COMMAND: for the whole pipeline (no
    stage), or what one stage's job sets differently: its extras, and with `on_runner`
    (the job variant for a repository that names its runner's label) the runner's torch
    backend."""
    extras = ",".join(pipeline.install.extras)
    if stage is None:
        return {"UV_TORCH_BACKEND": pipeline.install.torch_backend, "INSTALL_EXTRAS": extras}
    own = ",".join(pipeline.install_extras(stage))
    environment = {} if own == extras else {"INSTALL_EXTRAS": own}
    if on_runner:
        environment["UV_TORCH_BACKEND"] = pipeline.torch_backend(stage)
    return environment


def stage_entry(pipeline: Pipeline, stage: Stage, build: Callable[[bool], Any]) -> Any:
    """A stage's job or Jenkins stage, `build(on_runner)`, as the emitted file holds it:
    two whole variants when the stage has a runner class (its label is an answer), kept
    only in repositories that have the stage."""
    entry = build(False)
    runner = runner_test(pipeline, stage)
    if runner:
        entry = Choice(runner, build(True), otherwise=entry)
    return present_when(pipeline, stage, entry)


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


def need(pipeline: Pipeline, name: str) -> str:
    """A need as Jinja: an optional stage falls back to its own single need when absent."""
    stage = pipeline.stage(name)
    test = condition(pipeline, stage)
    if test is None:
        return name
    fallback = need(pipeline, stage.needs[0])
    return f"{{% if {test} %}}{name}{{% else %}}{fallback}{{% endif %}}"

"""Emit a declarative `Jenkinsfile` (as a Jinja template) from the pipeline model.

Declarative stages run one after another, in the model's order. Artifacts travel with
`stash`/`unstash` (a later stage may run on another agent) and are kept with
`archiveArtifacts`; credentials come from the Jenkins credentials store through
`withCredentials`, whose values Jenkins masks in the log. Manual stages wait for an
`input` approval, evaluated after their `when` so that a branch build never asks.
"""

from __future__ import annotations

import re

from . import ci_jinja
from .pipeline import Pipeline, Stage

INSTALL_STEP = 'sh -c "$INSTALL_COMMAND"'
# A dotenv written by an earlier stage becomes environment of this shell step only.
DOTENV_PREFIX = "set -a && . ./{path} && set +a && "

# withCredentials bindings, by the credential IDs to create in Manage Jenkins >
# Credentials. The registry login reaches push-image as the same variables every CI system
# sets; gitUsernamePassword (Git plugin) answers git's own password prompt.
CREDENTIAL_BINDINGS = {
    "registry": "usernamePassword(credentialsId: 'registry', "
    "usernameVariable: 'REGISTRY_USERNAME', passwordVariable: 'REGISTRY_PASSWORD')",
    "git": "gitUsernamePassword(credentialsId: 'gitops-git', gitToolName: 'Default')",
}

_JINJA_EXPRESSION = re.compile(r"(\{\{.*?\}\}|\{%.*?%\})")


def groovy_string(text: str) -> str:
    """A single-quoted Groovy string (no interpolation); Jinja expressions stay intact."""
    pieces = _JINJA_EXPRESSION.split(text)
    escaped = [
        piece
        if _JINJA_EXPRESSION.fullmatch(piece)
        else piece.replace("\\", "\\\\").replace("'", "\\'")
        for piece in pieces
    ]
    return "'" + "".join(escaped) + "'"


def stash_includes(paths: tuple[str, ...]) -> str:
    """Ant-style includes: a folder (trailing '/') brings everything below it."""
    return ",".join(f"{path}**" if path.endswith("/") else path for path in paths)


def when_block(pipeline: Pipeline, stage: Stage) -> list[str]:
    branch = f"branch {groovy_string(pipeline.default_branch)}"
    if stage.when == "always":
        return []
    if stage.when == "default-branch":
        conditions = [branch]
    elif stage.when == "release":
        conditions = [
            "anyOf {",
            f"    {branch}",
            f"    tag {groovy_string(pipeline.release_tag_pattern)}",
            "}",
        ]
    else:
        # Decide on the branch before asking anyone to approve.
        conditions = ["beforeInput true", branch]
    return ["when {", *[f"    {line}" for line in conditions], "}"]


def input_block(pipeline: Pipeline, stage: Stage) -> list[str]:
    if not stage.manual:
        return []
    return [
        "input {",
        f"    message {groovy_string(f'Promote to {stage.environment}?')}",
        f"    ok {groovy_string('Promote')}",
        "}",
    ]


def stage_steps(pipeline: Pipeline, stage: Stage) -> list[str]:
    lines = [f"sh {groovy_string(INSTALL_STEP)}"]
    lines += [f"unstash {groovy_string(producer.name)}" for producer in pipeline.producers(stage)]
    prefix = "".join(
        DOTENV_PREFIX.format(path=producer.dotenv.path)
        for producer in pipeline.dotenv_producers(stage)
        if producer.dotenv is not None
    )
    commands = [
        f"sh {groovy_string(prefix + ci_jinja.command(pipeline, stage, line))}"
        for line in stage.run
    ]
    bindings = [CREDENTIAL_BINDINGS[kind] for kind in stage.credentials]
    if bindings:
        calls = ", ".join(bindings)
        lines += [f"withCredentials([{calls}]) {{", *[f"    {c}" for c in commands], "}"]
    else:
        lines += commands
    if stage.outputs:
        includes = groovy_string(stash_includes(stage.outputs))
        lines += [
            f"stash name: {groovy_string(stage.name)}, includes: {includes}",
            f"archiveArtifacts artifacts: {includes}, fingerprint: true",
        ]
    return lines


def _lines(lines: list[str], indent: str = "            ") -> str:
    return "".join(f"{indent}{line}\n" for line in lines)


def stage_block(pipeline: Pipeline, stage: Stage) -> str:
    """One declarative stage. On a runner class, its agent and torch backend exist only
    when the answers name the runner's label (the stage then checks out the code on that
    agent again and stashes its outputs as usual, so the next stages find them)."""
    on_runner = ci_jinja.runner_test(pipeline, stage)
    environment = [
        f"    {name} = {groovy_string(value)}"
        for name, value in ci_jinja.install_environment(pipeline, stage).items()
    ]
    text = f"        stage({groovy_string(stage.name)}) {{\n"
    if on_runner:
        label = groovy_string(ci_jinja.runner_label(pipeline, stage))
        text += ci_jinja.if_block(on_runner, _lines(["agent {", f"    label {label}", "}"]))
        backend = [f"    UV_TORCH_BACKEND = {groovy_string(pipeline.torch_backend(stage))}"]
        if environment:
            text += _lines(["environment {", *environment])
            text += ci_jinja.if_block(on_runner, _lines(backend)) + _lines(["}"])
        else:
            text += ci_jinja.if_block(on_runner, _lines(["environment {", *backend, "}"]))
    elif environment:
        text += _lines(["environment {", *environment, "}"])
    body = [
        *when_block(pipeline, stage),
        *input_block(pipeline, stage),
        "options {",
        f"    timeout(time: {stage.timeout_minutes}, unit: 'MINUTES')",
        "}",
        "steps {",
        *[f"    {line}" for line in stage_steps(pipeline, stage)],
        "}",
    ]
    return text + _lines(body) + "        }\n"


def emit(pipeline: Pipeline) -> str:
    reports = ",".join(report for stage in pipeline.stages for report in stage.reports)
    install = ci_jinja.install_command(pipeline)
    head = [
        *[f"// {line}" for line in ci_jinja.HEADER],
        "// Every stage runs one entry point of this repository; see README.md.",
        "pipeline {",
        "    agent any",
        "    options {",
        f"        timeout(time: {pipeline.pipeline_timeout_minutes}, unit: 'MINUTES')",
        "        disableConcurrentBuilds()",
        "        buildDiscarder(logRotator(numToKeepStr: '30', "
        f"artifactDaysToKeepStr: '{pipeline.artifact_retention_days}'))",
        "        timestamps()",
        "    }",
        "    environment {",
        "        // Installs this repository into .venv. Not a build parameter: whoever may",
        "        // start a build would pick a shell command that runs beside the registry and",
        "        // GitOps credentials. An administrator overrides it (a package mirror) with",
        "        // an INSTALL_COMMAND environment variable of the agent or of Jenkins.",
        f'        INSTALL_COMMAND = "${{env.INSTALL_COMMAND ?: {groovy_string(install)}}}"',
        "        UV_LINK_MODE = 'copy'",
        *[
            f"        {name} = {groovy_string(value)}"
            for name, value in ci_jinja.install_environment(pipeline).items()
        ],
        "    }",
        "    stages {",
    ]
    text = "\n".join(head) + "\n"
    for stage in pipeline.stages:
        text += ci_jinja.if_block(ci_jinja.condition(pipeline, stage), stage_block(pipeline, stage))
    tail = [
        "    }",
        "    post {",
        "        always {",
        f"            junit allowEmptyResults: true, testResults: {groovy_string(reports)}",
        "        }",
        "    }",
        "}",
    ]
    return text + "\n".join(tail) + "\n"

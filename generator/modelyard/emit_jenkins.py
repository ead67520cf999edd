"""Emit a declarative `Jenkinsfile` (as a Jinja template) from the pipeline model.

Declarative stages run one after another, in the model's order, each on an agent of its
own (`agent none` at the top): a promotion waiting for its `input` holds no executor, and
the next build is never queued behind it. Artifacts travel with `stash`/`unstash` and are
kept with `archiveArtifacts`; credentials come from the Jenkins credentials store through
`withCredentials`, around the stage command only, and Jenkins masks them in the log.

Jenkins applies a stage's `options` before its `input`, so a stage that waits for an
approval has none: its time limit and its environment's lock wrap its steps, and start
once somebody approved. The `when` of a manual stage is evaluated before the `input`
(`beforeInput`) so that a branch build never asks. The file is built as `Call` trees and
written by `ci_document.groovy_text`.
"""

from __future__ import annotations

import re
from typing import Any

from . import ci_jinja
from .ci_document import Call, Comment, groovy_text
from .pipeline import Pipeline, Stage

# A dotenv written by an earlier stage becomes environment of this shell step only.
DOTENV_PREFIX = "set -a && . ./{path} && set +a && "

# withCredentials bindings, by the credential IDs to create in Manage Jenkins >
# Credentials. The registry login reaches push-image as the same variables every CI system
# sets; gitUsernamePassword (Git plugin) answers git's own password prompt.
CREDENTIAL_BINDINGS = {
    "registry": "usernamePassword(credentialsId: 'registry', "
    "usernameVariable: 'REGISTRY_USERNAME', passwordVariable: 'REGISTRY_PASSWORD')",
    "git": "gitUsernamePassword(credentialsId: 'gitops-git', gitToolName: 'Default')",
    # None: a binding of a credential that does not exist fails the build, and a smoke
    # profile needs none. The DVC remote's credentials come from the agent's environment
    # (AWS_*, GOOGLE_APPLICATION_CREDENTIALS; README, Data).
    "data": None,
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


def when_block(pipeline: Pipeline, stage: Stage) -> list[Call]:
    branch = Call("branch", groovy_string(ci_jinja.DEFAULT_BRANCH))
    if stage.when == "always":
        return []
    if stage.when == "default-branch":
        conditions = [branch]
    elif stage.when == "release":
        tag = Call("tag", groovy_string(pipeline.release_tag_pattern))
        conditions = [Call("anyOf", block=[branch, tag])]
    else:
        # Decide on the branch before asking anyone to approve.
        conditions = [Call("beforeInput", "true"), branch]
    return [Call("when", block=conditions)]


def input_block(pipeline: Pipeline, stage: Stage) -> list[Call]:
    if not stage.manual:
        return []
    assert stage.environment is not None
    fields = [
        Call("message", groovy_string(f"Promote to {stage.environment}?")),
        Call("ok", groovy_string("Promote")),
    ]
    approvers = pipeline.environment(stage.environment).approvers
    if approvers:
        # Only these users or groups may approve (Jenkins answers anyone else with
        # "You need to be ..."); without it, anyone who may build the job may.
        fields.append(Call("submitter", groovy_string(approvers)))
        fields.append(Call("submitterParameter", groovy_string("APPROVER")))
    return [Call("input", block=fields)]


def stage_commands(pipeline: Pipeline, stage: Stage) -> list[Call]:
    prefix = "".join(
        DOTENV_PREFIX.format(path=producer.dotenv.path)
        for producer in pipeline.dotenv_producers(stage)
        if producer.dotenv is not None
    )
    commands = [
        Call("sh", groovy_string(prefix + ci_jinja.command(pipeline, stage, line)))
        for line in stage.run
    ]
    bindings = [
        binding for kind in stage.credentials if (binding := CREDENTIAL_BINDINGS[kind]) is not None
    ]
    if bindings:
        return [Call("withCredentials", f"([{', '.join(bindings)}])", block=commands)]
    return commands


def stage_steps(pipeline: Pipeline, stage: Stage) -> list[Call]:
    steps = [Call("sh", groovy_string(ci_jinja.INSTALL_STEP))]
    steps += [
        Call("unstash", groovy_string(producer.name)) for producer in pipeline.producers(stage)
    ]
    steps += stage_commands(pipeline, stage)
    if stage.outputs:
        includes = groovy_string(stash_includes(stage.outputs))
        steps += [
            Call("stash", f"name: {groovy_string(stage.name)}, includes: {includes}"),
            Call("archiveArtifacts", f"artifacts: {includes}, fingerprint: true"),
        ]
    return steps


def _timeout(stage: Stage) -> Call:
    return Call("timeout", f"(time: {stage.timeout_minutes}, unit: 'MINUTES')")


def _lock(stage: Stage) -> Call:
    # The Lockable Resources plugin: one build at a time changes an environment.
    return Call("lock", f"({groovy_string(stage.concurrency or '')})")


def stage_block(pipeline: Pipeline, stage: Stage, on_runner: bool = False) -> Call:
    """One declarative stage; `on_runner`: the variant for a repository that names the
    label of the stage's runner class (its agent then checks out the code again and
    stashes its outputs as usual, so the next stages find them)."""
    agent = (
        Call("agent", block=[Call("label", groovy_string(ci_jinja.runner_label(pipeline, stage)))])
        if on_runner
        else Call("agent", "any")
    )
    environment = ci_jinja.install_environment(pipeline, stage, on_runner)
    body: list[Any] = [agent]
    if environment:
        body.append(
            Call(
                "environment",
                block=[
                    Call(name, f"= {groovy_string(value)}") for name, value in environment.items()
                ],
            )
        )
    body += when_block(pipeline, stage)
    steps: list[Any] = stage_steps(pipeline, stage)
    if stage.manual:
        body += input_block(pipeline, stage)
        wrapped = [Call("timeout", _timeout(stage).args, block=steps)]
        if stage.concurrency:
            wrapped = [Call("lock", _lock(stage).args, block=wrapped)]
        body.append(Call("steps", block=wrapped))
    else:
        options = [_timeout(stage), *([_lock(stage)] if stage.concurrency else [])]
        body += [Call("options", block=options), Call("steps", block=steps)]
    if stage.reports:
        # Test reports matter most when the stage failed; read them on its own agent.
        reports = groovy_string(",".join(stage.reports))
        junit = Call("junit", f"allowEmptyResults: true, testResults: {reports}")
        body.append(Call("post", block=[Call("always", block=[junit])]))
    return Call("stage", f"({groovy_string(stage.name)})", block=body)


def stages(pipeline: Pipeline) -> list[Any]:
    return [
        ci_jinja.stage_entry(
            pipeline, stage, lambda on_runner, stage=stage: stage_block(pipeline, stage, on_runner)
        )
        for stage in pipeline.stages
    ]


def emit(pipeline: Pipeline) -> str:
    install = ci_jinja.install_command(pipeline)
    environment = [
        Comment(
            "Installs this repository into .venv. Not a build parameter: whoever may\n"
            "start a build would pick a shell command that runs beside the registry and\n"
            "GitOps credentials. An administrator overrides it (a package mirror) with\n"
            "an INSTALL_COMMAND environment variable of the agent or of Jenkins."
        ),
        Call("INSTALL_COMMAND", f'= "${{env.INSTALL_COMMAND ?: {groovy_string(install)}}}"'),
        Call("UV_LINK_MODE", "= 'copy'"),
        *[
            Call(name, f"= {groovy_string(value)}")
            for name, value in ci_jinja.install_environment(pipeline).items()
        ],
    ]
    options = [
        Call(
            "buildDiscarder",
            "(logRotator(numToKeepStr: '30', "
            f"artifactDaysToKeepStr: '{pipeline.artifact_retention_days}'))",
        ),
        Call("timestamps", "()"),
    ]
    body = [
        Comment(
            "No agent for the whole build: each stage takes its own, so a promotion waiting\n"
            "for approval holds no executor. Builds may overlap; each deploy stage locks its\n"
            "environment, and an older build never replaces a newer one's deploy."
        ),
        Call("agent", "none"),
        Call("options", block=options),
        Call("environment", block=environment),
        Call("stages", block=stages(pipeline)),
    ]
    header = [
        *ci_jinja.HEADER,
        "Every stage runs one entry point of this repository; see README.md.",
    ]
    return groovy_text([Call("pipeline", block=body)], header=header)

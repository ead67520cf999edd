"""Emit the GitHub Actions workflows (as Jinja templates) from the pipeline model.

`ci.yml` holds every stage that runs on its own (push, pull request, default branch,
tags); `promote.yml` holds the manual stages, one job per environment, started by
`workflow_dispatch` with the target environment. Deployment jobs name a GitHub
environment, so a required reviewer on `prod` gates the promotion there.

Workflows use `${{ ... }}`, which Jinja would read as its own, so the emitted text is
wrapped in `{% raw %}` and leaves it only where an answer is needed. Each workflow is
built as plain data and written by `ci_document.yaml_text`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import ci_jinja
from .ci_document import Annotated, Comment, Spaced, yaml_text
from .pipeline import Pipeline, Stage

# Every action pinned to a full commit SHA (a tag can be moved); the version is the comment.
ACTIONS = {
    "checkout": ("actions/checkout", "11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2"),
    "setup-uv": ("astral-sh/setup-uv", "e92bafb6253dcd438e0484186d7669ea7a8ca1cc", "v6.4.3"),
    "upload-artifact": (
        "actions/upload-artifact",
        "ea165f8d65b6e75b540449e92b4886f43607fa02",
        "v4.6.2",
    ),
    "download-artifact": (
        "actions/download-artifact",
        "d3f86a106a0bac45b974a628896c90dbdf5c8093",
        "v4.3.0",
    ),
}
RUNNER = "ubuntu-24.04"

# Jobs get only the token scopes they use; the workflow default is contents: read.
CREDENTIAL_PERMISSIONS: dict[str, dict[str, str]] = {
    "registry": {"packages": "write"},
    "git": {"contents": "write"},
    "data": {},
}
# Credentials go into the environment of the one step that uses them, never into that of
# the install step (which runs third-party code) nor into .git/config (checkout keeps no
# token: persist-credentials is false in every job).
# - registry: the repository's REGISTRY_USERNAME / REGISTRY_PASSWORD secrets for the
#   registry the REGISTRY_HOST variable names, else the job token for ghcr.io; push-image
#   refuses to send them to any other registry.
# - git: the GITOPS_TOKEN secret (a token that may push to the config repository the
#   GITOPS_REPO_URL variable names), else the job token for this repository; gitops hands
#   it to git's password prompt only.
# - data: the DVC remote's S3 keys, from the repository's AWS_* secrets (empty while there
#   are none: a synthetic profile or a folder remote needs none). GCS and Azure remotes
#   get theirs from an auth step the README describes.
CREDENTIAL_ENV = {
    "registry": {
        "REGISTRY_HOST": "${{ secrets.REGISTRY_PASSWORD && vars.REGISTRY_HOST || 'ghcr.io' }}",
        "REGISTRY_USERNAME": (
            "${{ secrets.REGISTRY_PASSWORD && secrets.REGISTRY_USERNAME || github.actor }}"
        ),
        "REGISTRY_PASSWORD": "${{ secrets.REGISTRY_PASSWORD || secrets.GITHUB_TOKEN }}",
    },
    "data": {
        "AWS_ACCESS_KEY_ID": "${{ secrets.AWS_ACCESS_KEY_ID }}",
        "AWS_SECRET_ACCESS_KEY": "${{ secrets.AWS_SECRET_ACCESS_KEY }}",
    },
    "git": {
        "GITOPS_REPO_URL": "${{ vars.GITOPS_REPO_URL }}",
        "GITOPS_TOKEN": "${{ secrets.GITOPS_TOKEN || secrets.GITHUB_TOKEN }}",
    },
}


def uses(action: str) -> Annotated:
    repository, sha, version = ACTIONS[action]
    return Annotated(f"{repository}@{sha}", version)


def upload_root(paths: tuple[str, ...]) -> str:
    """The folder upload-artifact stores paths relative to (so downloads go back there).

    upload-artifact strips the paths' least common ancestor: a folder given alone is its
    own root, a single file's root is its parent folder.
    """
    folders = [path.rstrip("/").split("/") for path in paths]
    if len(paths) == 1:
        parts = folders[0] if paths[0].endswith("/") else folders[0][:-1]
        return "/".join(parts) or "."
    common: list[str] = []
    for parts in zip(*folders, strict=False):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return "/".join(common) or "."


def _lines(values: Sequence[str]) -> str:
    """One value per line: a literal block (`path: |`, a multi-command `run: |`)."""
    return "".join(f"{value}\n" for value in values)


def default_branch_test() -> str:
    return "github.ref == format('refs/heads/{0}', github.event.repository.default_branch)"


def job_condition(pipeline: Pipeline, stage: Stage) -> str | None:
    on_default_branch = f"github.event_name == 'push' && {default_branch_test()}"
    if stage.when == "always":
        return None
    if stage.when in ("default-branch", "release"):
        # Tags run the release stages in the release workflow.
        return on_default_branch
    return f"inputs.environment == '{stage.environment}' && {default_branch_test()}"


def steps(pipeline: Pipeline, stage: Stage, cache: bool, on_runner: bool) -> list[Any]:
    install: dict[str, Any] = {"name": "Install", "run": ci_jinja.INSTALL_STEP}
    install_env = ci_jinja.install_environment(pipeline, stage, on_runner)
    if install_env:
        install["env"] = install_env
    result: list[Any] = [
        {"name": "Check out", "uses": uses("checkout"), "with": {"persist-credentials": False}},
        {
            "name": "Set up uv",
            "uses": uses("setup-uv"),
            "with": {
                "enable-cache": cache,
                "cache-dependency-glob": "".join(
                    f"{path}\n" for path in pipeline.install.cache_key_files
                ),
            },
        },
        install,
    ]
    for producer in pipeline.producers(stage):
        result.append(
            {
                "name": f"Download the artifacts of {producer.name}",
                "uses": uses("download-artifact"),
                "with": {"name": producer.name, "path": upload_root(producer.outputs)},
            }
        )
    commands = [ci_jinja.command(pipeline, stage, line) for line in stage.run]
    command: dict[str, Any] = {
        "name": stage.name,
        "id": stage.name,
        "run": commands[0] if len(commands) == 1 else _lines(commands),
    }
    credentials = {
        name: value for kind in stage.credentials for name, value in CREDENTIAL_ENV[kind].items()
    }
    if credentials:
        command["env"] = credentials
    result.append(command)
    if stage.summary:
        result.append(
            {
                "name": "Job summary",
                "if": f"${{{{ !cancelled() && hashFiles('{stage.summary}') != '' }}}}",
                "run": f'cat {stage.summary} >> "$GITHUB_STEP_SUMMARY"',
            }
        )
    if stage.dotenv:
        result.append(
            {
                "name": f"Pass {stage.dotenv.path} on to later jobs",
                "id": "dotenv",
                "run": f'cat {stage.dotenv.path} >> "$GITHUB_OUTPUT"',
            }
        )
    if stage.outputs:
        result.append(
            {
                "name": f"Upload the artifacts of {stage.name}",
                "uses": uses("upload-artifact"),
                "with": {
                    "name": stage.name,
                    "path": _lines(stage.outputs),
                    "if-no-files-found": "error",
                    "retention-days": pipeline.artifact_retention_days,
                },
            }
        )
    if stage.reports:
        result.append(
            {
                "name": "Upload the test reports",
                "if": "${{ !cancelled() }}",
                "uses": uses("upload-artifact"),
                "with": {
                    "name": f"{stage.name}-reports",
                    "path": _lines(stage.reports),
                    "retention-days": pipeline.artifact_retention_days,
                },
            }
        )
    return result


def job(
    pipeline: Pipeline,
    stage: Stage,
    in_promotion: bool = False,
    release: bool = False,
    on_runner: bool = False,
) -> dict[str, Any]:
    """The job of `stage`; `on_runner`: the variant for a repository that names the label
    of the stage's runner class (a self-hosted runner's label or a larger runner's name)."""
    body: dict[str, Any] = {"name": stage.name}
    if stage.needs and not in_promotion:
        body["needs"] = list(stage.needs)
    # The release workflow runs only for tags: its jobs need no condition of their own.
    condition = None if release else job_condition(pipeline, stage)
    if condition:
        body["if"] = condition
    body["runs-on"] = ci_jinja.runner_label(pipeline, stage) if on_runner else RUNNER
    body["timeout-minutes"] = stage.timeout_minutes
    permissions: dict[str, str] = {}
    for kind in stage.credentials:
        permissions.update(CREDENTIAL_PERMISSIONS[kind])
    if permissions:
        permissions.setdefault("contents", "read")
        body["permissions"] = dict(sorted(permissions.items()))
    if stage.environment:
        body["environment"] = stage.environment
    if stage.concurrency:
        # Queue, never cancel: a half-done deployment is worse than a late one.
        body["concurrency"] = {"group": stage.concurrency, "cancel-in-progress": False}
    env = {}
    for producer in pipeline.dotenv_producers(stage):
        assert producer.dotenv is not None
        for variable in producer.dotenv.variables:
            env[variable] = f"${{{{ needs.{producer.name}.outputs.{variable} }}}}"
    if env:
        body["env"] = env
    if stage.dotenv:
        body["outputs"] = {
            variable: f"${{{{ steps.dotenv.outputs.{variable} }}}}"
            for variable in stage.dotenv.variables
        }
    body["steps"] = steps(pipeline, stage, cache=stage.cache and not release, on_runner=on_runner)
    return body


def jobs(pipeline: Pipeline, stages: list[Stage], **variant: bool) -> dict[str, Any]:
    return {
        stage.name: ci_jinja.stage_entry(
            pipeline,
            stage,
            lambda on_runner, stage=stage: job(pipeline, stage, on_runner=on_runner, **variant),
        )
        for stage in stages
    }


def _workflow_env(pipeline: Pipeline) -> dict[Any, Any]:
    # A string literal inside a GitHub expression doubles its single quotes.
    install = ci_jinja.install_command(pipeline).replace("'", "''")
    return {
        Comment(
            "Installs the repository into .venv (torch from the index UV_TORCH_BACKEND\n"
            "names); the repository variable INSTALL_COMMAND replaces it, e.g. to use a\n"
            "package mirror."
        ): None,
        "INSTALL_COMMAND": f"${{{{ vars.INSTALL_COMMAND || '{install}' }}}}",
        Comment(
            "What the install step takes: the torch wheel index (GPU jobs set their CUDA\n"
            "backend) and the package extras (image and GitOps jobs need no torch)."
        ): None,
        **ci_jinja.install_environment(pipeline),
        Comment(
            "The training profile; the stages default to configs/smoke.yaml when it is unset."
        ): None,
        "MODEL_CONFIG": "${{ vars.MODEL_CONFIG }}",
    }


def _workflow(
    pipeline: Pipeline,
    name: str,
    on: dict[str, Any],
    concurrency: dict[Any, Any] | None,
    workflow_jobs: dict[str, Any],
) -> str:
    document: dict[str, Any] = {"name": name, "on": on, "permissions": {"contents": "read"}}
    if concurrency:
        document["concurrency"] = concurrency
    document["env"] = _workflow_env(pipeline)
    document["jobs"] = Spaced(workflow_jobs)
    return yaml_text(document, header=ci_jinja.HEADER, raw=True)


def emit_ci(pipeline: Pipeline) -> str:
    """Pull requests and pushes to the default branch: every automatic stage, with the uv
    cache. Not pushes to every branch: a branch with a pull request would run twice."""
    stages = [stage for stage in pipeline.stages if not stage.manual]
    concurrency = {
        "group": "ci-${{ github.ref }}",
        Comment(
            "A new push supersedes a pull request's run; default-branch runs all finish."
        ): None,
        "cancel-in-progress": "${{ github.event_name == 'pull_request' }}",
    }
    on = {"push": {"branches": [ci_jinja.DEFAULT_BRANCH]}, "pull_request": None}
    return _workflow(pipeline, "CI", on, concurrency, jobs(pipeline, stages))


def emit_release(pipeline: Pipeline) -> str:
    """Release tags: the stages that build a release, without any cache.

    A tag build publishes an image, so it must not restore a cache that a pull request
    could have written (zizmor's cache-poisoning audit): the chain runs cold.
    """
    stages = [stage for stage in pipeline.stages if stage.when in ("always", "release")]
    on = {"push": {"tags": [pipeline.release_tag_pattern]}}
    concurrency = {"group": "release-${{ github.ref }}", "cancel-in-progress": False}
    return _workflow(pipeline, "Release", on, concurrency, jobs(pipeline, stages, release=True))


def emit_promote(pipeline: Pipeline) -> str:
    manual = [stage for stage in pipeline.stages if stage.manual]
    on = {
        "workflow_dispatch": {
            "inputs": {
                "environment": {
                    "description": (
                        "Environment to promote to (it gets the image of the one before it)"
                    ),
                    "required": True,
                    "type": "choice",
                    "options": [
                        ci_jinja.present_when(pipeline, stage, stage.environment)
                        for stage in manual
                    ],
                }
            }
        }
    }
    return _workflow(pipeline, "Promote", on, None, jobs(pipeline, manual, in_promotion=True))

"""Emit `.gitlab-ci.yml` (as a Jinja template) from the pipeline model.

One GitLab stage per spec stage, so the order GitLab shows is the spec's order. `needs`
holds the spec's needs plus every stage whose artifacts the job reads (GitLab downloads
artifacts only from jobs named in `needs`); `artifacts: true` marks exactly those.

The file is built as plain data and written by `ci_document.yaml_text`.
"""

from __future__ import annotations

from typing import Any

from . import ci_jinja
from .ci_document import Comment, yaml_text
from .pipeline import STAGE_TOOLS, Pipeline, Stage

# The uv project's image with the chosen Python on Debian's full (not slim) base: git is
# there for the GitOps push.
IMAGE = "ghcr.io/astral-sh/uv:python{{ python_version }}-bookworm"

# A tool a job needs besides what IMAGE has: installed from Debian into the job's image
# (it runs as root) before the install step, with the settings it needs there. buildah in
# a container: chroot isolation and the vfs storage driver (no nested user namespaces, no
# overlay on the container's overlay), in storage.conf because not every buildah command
# of Debian's release reads STORAGE_DRIVER. The runner must run the job privileged.
TOOL_VARIABLES = {"buildah": {"IMAGE_BUILDER": "buildah", "BUILDAH_ISOLATION": "chroot"}}
TOOL_CONFIGURATION = {
    "buildah": " && ".join(
        [
            "storage=/etc/containers/storage.conf",
            """printf '[storage]\\ndriver = "vfs"\\n' > $storage""",
            """printf 'runroot = "/run/containers/storage"\\n' >> $storage""",
            """printf 'graphroot = "/var/lib/containers/storage"\\n' >> $storage""",
        ]
    )
}


def tool_setup(tools: tuple[str, ...]) -> list[str]:
    packages = " ".join(STAGE_TOOLS[tool] for tool in tools)
    install = (
        "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
        f"--no-install-recommends {packages}"
    )
    return [install, *(TOOL_CONFIGURATION[tool] for tool in tools if tool in TOOL_CONFIGURATION)]


# Credentials: GitLab's predefined registry login for push-image. The GitOps push uses
# the job's own clone credentials (the project must allow job-token pushes), or the
# GITOPS_TOKEN CI/CD variable (a project access token) for GITOPS_REPO_URL.
CREDENTIAL_VARIABLES: dict[str, dict[str, str]] = {
    "registry": {
        # push-image sends these to $CI_REGISTRY only; project variables of the same names
        # (REGISTRY_HOST too) point the push at another registry.
        "REGISTRY_HOST": "$CI_REGISTRY",
        "REGISTRY_USERNAME": "$CI_REGISTRY_USER",
        "REGISTRY_PASSWORD": "$CI_REGISTRY_PASSWORD",
    },
    "git": {},
    # The DVC remote's credentials are project CI/CD variables (AWS_ACCESS_KEY_ID, ...; a
    # file variable GOOGLE_APPLICATION_CREDENTIALS for GCS), which every job gets as they
    # are: nothing to map.
    "data": {},
}


def rules(pipeline: Pipeline, stage: Stage) -> list[dict[str, str]]:
    default_branch = "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"
    release_tag = f"$CI_COMMIT_TAG =~ /^{pipeline.release_tag_prefix}/"
    if stage.when == "always":
        return [
            {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'},
            {"if": "$CI_COMMIT_BRANCH"},
            {"if": "$CI_COMMIT_TAG"},
        ]
    if stage.when == "default-branch":
        return [{"if": default_branch}]
    if stage.when == "release":
        return [{"if": default_branch}, {"if": release_tag}]
    return [{"if": default_branch, "when": "manual"}]


def job(pipeline: Pipeline, stage: Stage, on_runner: bool = False) -> dict[str, Any]:
    """The job of `stage`; `on_runner`: the variant for a repository that names the label
    of the stage's runner class."""
    producers = [producer.name for producer in pipeline.producers(stage)]
    needs = list(dict.fromkeys([*stage.needs, *producers]))
    body: dict[str, Any] = {
        "stage": stage.name,
        "needs": [
            {"job": ci_jinja.need(pipeline, name), "artifacts": name in producers} for name in needs
        ],
        "rules": rules(pipeline, stage),
    }
    if stage.environment:
        body["environment"] = {
            "name": stage.environment,
            "deployment_tier": pipeline.environment(stage.environment).tier,
        }
    if stage.concurrency:
        body["resource_group"] = stage.concurrency
    # A newer commit makes a running test job pointless; a deploy must finish what it began.
    body["interruptible"] = stage.environment is None
    body["timeout"] = f"{stage.timeout_minutes}m"
    if on_runner:
        # Runners registered with this tag pick the job up (for GPUs: a docker executor
        # with `gpus = "all"`, or a shell runner on a GPU machine).
        body["tags"] = [ci_jinja.runner_label(pipeline, stage)]
    variables = {
        **ci_jinja.install_environment(pipeline, stage, on_runner),
        **{
            name: value
            for kind in stage.credentials
            for name, value in CREDENTIAL_VARIABLES[kind].items()
        },
    }
    for tool in stage.tools:
        variables.update(TOOL_VARIABLES[tool])
    if variables:
        body["variables"] = variables
    if stage.cache:
        body["cache"] = {
            "key": {"files": list(pipeline.install.cache_key_files)},
            "paths": [pipeline.install.cache_dir],
        }
    body["before_script"] = [
        *(tool_setup(stage.tools) if stage.tools else []),
        ci_jinja.INSTALL_STEP,
    ]
    body["script"] = [ci_jinja.command(pipeline, stage, line) for line in stage.run]
    if stage.outputs or stage.reports:
        artifacts: dict[str, Any] = {}
        if stage.reports:
            # Test reports matter most when the job failed.
            artifacts["when"] = "always"
        artifacts["expire_in"] = f"{pipeline.artifact_retention_days} days"
        artifacts["paths"] = [*stage.outputs, *stage.reports]
        reports: dict[str, str] = {}
        for report in stage.reports:
            reports["junit"] = report
        if stage.dotenv:
            reports["dotenv"] = stage.dotenv.path
        if reports:
            artifacts["reports"] = reports
        body["artifacts"] = artifacts
    return body


def jobs(pipeline: Pipeline) -> dict[str, Any]:
    return {
        stage.name: ci_jinja.stage_entry(
            pipeline, stage, lambda on_runner, stage=stage: job(pipeline, stage, on_runner)
        )
        for stage in pipeline.stages
    }


def emit(pipeline: Pipeline) -> str:
    install = ci_jinja.install_command(pipeline)
    document: dict[str, Any] = {
        "workflow": {
            "rules": [
                {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'},
                Comment(
                    "A branch with an open merge request runs as a merge request pipeline only."
                ),
                {"if": "$CI_COMMIT_BRANCH && $CI_OPEN_MERGE_REQUESTS", "when": "never"},
                {"if": "$CI_COMMIT_BRANCH"},
                {"if": "$CI_COMMIT_TAG"},
            ]
        },
        "default": {"image": IMAGE},
        "variables": {
            "UV_CACHE_DIR": f"$CI_PROJECT_DIR/{pipeline.install.cache_dir}",
            "UV_LINK_MODE": "copy",
            Comment(
                "What the install step takes: the torch wheel index (GPU jobs set their CUDA\n"
                "backend) and the package extras (image and GitOps jobs need no torch)."
            ): None,
            **ci_jinja.install_environment(pipeline),
            Comment(
                "Installs this repository into .venv (torch from the index UV_TORCH_BACKEND\n"
                "names). A CI/CD variable of the same name replaces it, e.g. to use a package\n"
                "mirror."
            ): None,
            "INSTALL_COMMAND": install,
        },
        "stages": [ci_jinja.present_when(pipeline, stage, stage.name) for stage in pipeline.stages],
    }
    header = [
        *ci_jinja.HEADER,
        "Every job runs one entry point of this repository; see README.md for what each does.",
    ]
    return yaml_text({**document, **jobs(pipeline)}, header=header)

"""Emit `.gitlab-ci.yml` (as a Jinja template) from the pipeline model.

One GitLab stage per spec stage, so the order GitLab shows is the spec's order. `needs`
holds the spec's needs plus every stage whose artifacts the job reads (GitLab downloads
artifacts only from jobs named in `needs`); `artifacts: true` marks exactly those.
"""

from __future__ import annotations

from . import ci_jinja
from .pipeline import Pipeline, Stage

# The uv project's image with the chosen Python on Debian's full (not slim) base: git is
# there for the GitOps push. Build and push also need podman or buildah on the runner.
IMAGE = "ghcr.io/astral-sh/uv:python{{ python_version }}-bookworm"
INSTALL_STEP = 'sh -c "$INSTALL_COMMAND"'

# Credentials: GitLab's predefined registry login for push-image. The GitOps push uses
# the job's own clone credentials (the project must allow job-token pushes) or the
# GITOPS_REPO_URL CI/CD variable; see ci/README.md of the template.
CREDENTIAL_VARIABLES: dict[str, dict[str, str]] = {
    "registry": {
        # push-image sends these to $CI_REGISTRY only; project variables of the same names
        # (REGISTRY_HOST too) point the push at another registry.
        "REGISTRY_HOST": "$CI_REGISTRY",
        "REGISTRY_USERNAME": "$CI_REGISTRY_USER",
        "REGISTRY_PASSWORD": "$CI_REGISTRY_PASSWORD",
    },
    "git": {},
}


def rules(pipeline: Pipeline, stage: Stage) -> list[str]:
    default_branch = "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"
    release_tag = f"$CI_COMMIT_TAG =~ /^{pipeline.release_tag_prefix}/"
    if stage.when == "always":
        return [
            '    - if: $CI_PIPELINE_SOURCE == "merge_request_event"',
            "    - if: $CI_COMMIT_BRANCH",
            "    - if: $CI_COMMIT_TAG",
        ]
    if stage.when == "default-branch":
        return [f"    - if: {default_branch}"]
    if stage.when == "release":
        return [f"    - if: {default_branch}", f"    - if: {release_tag}"]
    return [f"    - if: {default_branch}", "      when: manual"]


def job(pipeline: Pipeline, stage: Stage) -> str:
    producers = [producer.name for producer in pipeline.producers(stage)]
    needs = list(dict.fromkeys([*stage.needs, *producers]))
    lines = [f"{stage.name}:", f"  stage: {stage.name}"]
    if needs:
        lines.append("  needs:")
        for name in needs:
            artifacts = "true" if name in producers else "false"
            lines += [
                f"    - job: {ci_jinja.need(pipeline, name)}",
                f"      artifacts: {artifacts}",
            ]
    else:
        lines.append("  needs: []")
    lines.append("  rules:")
    lines += rules(pipeline, stage)
    if stage.environment:
        tier = pipeline.environment(stage.environment).tier
        lines += [
            "  environment:",
            f"    name: {stage.environment}",
            f"    deployment_tier: {tier}",
        ]
    if stage.concurrency:
        lines.append(f"  resource_group: {stage.concurrency}")
    # A newer commit makes a running test job pointless; a deploy must finish what it began.
    interruptible = stage.environment is None
    lines.append(f"  interruptible: {'true' if interruptible else 'false'}")
    lines.append(f"  timeout: {stage.timeout_minutes}m")
    on_runner = ci_jinja.runner_test(pipeline, stage)
    if on_runner:
        # Runners registered with this tag pick the job up (for GPUs: a docker executor
        # with `gpus = "all"`, or a shell runner on a GPU machine).
        label = ci_jinja.runner_label(pipeline, stage)
        ci_jinja.append_block(lines, on_runner, ["  tags:", f"    - {label}"])
    variables = {
        **ci_jinja.install_environment(pipeline, stage),
        **{
            name: value
            for kind in stage.credentials
            for name, value in CREDENTIAL_VARIABLES[kind].items()
        },
    }
    if variables:
        lines.append("  variables:")
        lines += [f"    {name}: {ci_jinja.yaml_scalar(value)}" for name, value in variables.items()]
    if on_runner:
        backend = f"    UV_TORCH_BACKEND: {pipeline.torch_backend(stage)}"
        ci_jinja.append_block(lines, on_runner, [*([] if variables else ["  variables:"]), backend])
    if stage.cache:
        lines += [
            "  cache:",
            "    key:",
            "      files:",
            *[f"        - {path}" for path in pipeline.install.cache_key_files],
            "    paths:",
            f"      - {pipeline.install.cache_dir}",
        ]
    lines += ["  before_script:", f"    - {ci_jinja.yaml_scalar(INSTALL_STEP)}", "  script:"]
    lines += [
        f"    - {ci_jinja.yaml_scalar(ci_jinja.command(pipeline, stage, line))}"
        for line in stage.run
    ]
    if stage.outputs or stage.reports:
        lines.append("  artifacts:")
        if stage.reports:
            # Test reports matter most when the job failed.
            lines.append("    when: always")
        lines += [f"    expire_in: {pipeline.artifact_retention_days} days", "    paths:"]
        lines += [f"      - {path}" for path in [*stage.outputs, *stage.reports]]
        if stage.reports or stage.dotenv:
            lines.append("    reports:")
        for report in stage.reports:
            lines.append(f"      junit: {report}")
        if stage.dotenv:
            lines.append(f"      dotenv: {stage.dotenv.path}")
    return "\n".join(lines) + "\n"


def emit(pipeline: Pipeline) -> str:
    install = ci_jinja.install_command(pipeline)
    head = [
        *[f"# {line}" for line in ci_jinja.HEADER],
        "# Every job runs one entry point of this repository; see README.md for what each does.",
        "workflow:",
        "  rules:",
        '    - if: $CI_PIPELINE_SOURCE == "merge_request_event"',
        "    # A branch with an open merge request runs as a merge request pipeline only.",
        "    - if: $CI_COMMIT_BRANCH && $CI_OPEN_MERGE_REQUESTS",
        "      when: never",
        "    - if: $CI_COMMIT_BRANCH",
        "    - if: $CI_COMMIT_TAG",
        "",
        "default:",
        f"  image: {IMAGE}",
        "",
        "variables:",
        f"  UV_CACHE_DIR: {ci_jinja.yaml_scalar('$CI_PROJECT_DIR/' + pipeline.install.cache_dir)}",
        "  UV_LINK_MODE: copy",
        "  # What the install step takes: the torch wheel index (GPU jobs set their CUDA",
        "  # backend) and the package extras (image and GitOps jobs need no torch).",
        *[
            f"  {name}: {ci_jinja.yaml_scalar(value)}"
            for name, value in ci_jinja.install_environment(pipeline).items()
        ],
        "  # Installs this repository into .venv (torch from the index UV_TORCH_BACKEND names).",
        "  # A CI/CD variable of the same name replaces it, e.g. to use a package mirror.",
        *ci_jinja.folded("  ", "INSTALL_COMMAND", install),
        "",
        "stages:",
    ]
    text = "\n".join(head) + "\n"
    for stage in pipeline.stages:
        text += ci_jinja.if_block(ci_jinja.condition(pipeline, stage), f"  - {stage.name}\n")
    for stage in pipeline.stages:
        text += ci_jinja.if_block(ci_jinja.condition(pipeline, stage), "\n" + job(pipeline, stage))
    return text

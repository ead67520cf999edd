"""Emit the GitHub Actions workflows (as Jinja templates) from the pipeline model.

`ci.yml` holds every stage that runs on its own (push, pull request, default branch,
tags); `promote.yml` holds the manual stages, one job per environment, started by
`workflow_dispatch` with the target environment. Deployment jobs name a GitHub
environment, so a required reviewer on `prod` gates the promotion there.

Workflows use `${{ ... }}`, which Jinja would read as its own, so the emitted text is
wrapped in `{% raw %}` and leaves it only where an answer is needed.
"""

from __future__ import annotations

import re

from . import ci_jinja
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
INSTALL_STEP = 'sh -c "$INSTALL_COMMAND"'

# Jobs get only the token scopes they use; the workflow default is contents: read.
CREDENTIAL_PERMISSIONS = {"registry": {"packages": "write"}, "git": {"contents": "write"}}
# The registry login push-image uses, in the environment of the push step alone (not of
# the install step, which runs third-party code): the repository's REGISTRY_USERNAME /
# REGISTRY_PASSWORD secrets for the registry the REGISTRY_HOST variable names, else the job
# token for ghcr.io. push-image refuses to send them to any other registry. git pushes with
# the job token that checkout keeps (persist-credentials: true, only in jobs that push).
CREDENTIAL_ENV = {
    "registry": {
        "REGISTRY_HOST": "${{ secrets.REGISTRY_PASSWORD && vars.REGISTRY_HOST || 'ghcr.io' }}",
        "REGISTRY_USERNAME": (
            "${{ secrets.REGISTRY_PASSWORD && secrets.REGISTRY_USERNAME || github.actor }}"
        ),
        "REGISTRY_PASSWORD": "${{ secrets.REGISTRY_PASSWORD || secrets.GITHUB_TOKEN }}",
    },
    "git": {},
}

_OPEN, _CLOSE = "\x00", "\x01"


def jinja(text: str) -> str:
    """Mark Jinja inside the emitted text: it is left outside the raw blocks."""
    return f"{_OPEN}{text}{_CLOSE}"


def as_template(text: str) -> str:
    """Wrap everything but the marked Jinja in raw blocks."""
    body = "{% raw %}" + text.replace(_OPEN, "{% endraw %}").replace(_CLOSE, "{% raw %}")
    return (body + "{% endraw %}").replace("{% raw %}{% endraw %}", "")


def marked(text: str) -> str:
    """Jinja produced by ci_jinja, marked so that it is not wrapped in raw."""
    return re.sub(r"(\{\{.*?\}\}|\{%.*?%\})", lambda match: jinja(match.group(1)), text)


def uses(action: str) -> str:
    repository, sha, version = ACTIONS[action]
    return f"{repository}@{sha}  # {version}"


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


def default_branch_test() -> str:
    return "github.ref == format('refs/heads/{0}', github.event.repository.default_branch)"


def job_condition(pipeline: Pipeline, stage: Stage) -> str | None:
    on_default_branch = f"github.event_name == 'push' && {default_branch_test()}"
    if stage.when == "always":
        return None
    if stage.when == "default-branch":
        return on_default_branch
    if stage.when == "release":
        # Tags run these stages in the release workflow.
        return on_default_branch
    return f"inputs.environment == '{stage.environment}' && {default_branch_test()}"


def _block(lines: list[str], indent: str, key: str, values: list[str]) -> None:
    lines.append(f"{indent}{key}: |")
    lines += [f"{indent}  {value}" for value in values]


def steps(pipeline: Pipeline, stage: Stage, cache: bool) -> list[str]:
    pushes_to_git = "git" in stage.credentials
    lines = [
        "      - name: Check out",
        f"        uses: {uses('checkout')}",
        "        with:",
        f"          persist-credentials: {'true' if pushes_to_git else 'false'}",
        "      - name: Set up uv",
        f"        uses: {uses('setup-uv')}",
        "        with:",
        f"          enable-cache: {'true' if cache else 'false'}",
        "          cache-dependency-glob: |",
        *[f"            {path}" for path in pipeline.install.cache_key_files],
        "      - name: Install",
        f"        run: {ci_jinja.yaml_scalar(INSTALL_STEP)}",
    ]
    install_env = ci_jinja.install_environment(pipeline, stage)
    if install_env:
        lines.append("        env:")
        lines += [f"          {name}: {value}" for name, value in install_env.items()]
    on_runner = ci_jinja.runner_test(pipeline, stage)
    if on_runner:
        backend = f"          UV_TORCH_BACKEND: {pipeline.torch_backend(stage)}"
        block = [backend] if install_env else ["        env:", backend]
        ci_jinja.append_block(lines, on_runner, block, mark=jinja)
    for producer in pipeline.producers(stage):
        lines += [
            f"      - name: Download the artifacts of {producer.name}",
            f"        uses: {uses('download-artifact')}",
            "        with:",
            f"          name: {producer.name}",
            f"          path: {upload_root(producer.outputs)}",
        ]
    commands = [ci_jinja.command(pipeline, stage, line) for line in stage.run]
    lines += [f"      - name: {stage.name}", f"        id: {stage.name}"]
    if len(commands) == 1:
        lines.append(f"        run: {marked(ci_jinja.yaml_scalar(commands[0]))}")
    else:
        _block(lines, "        ", "run", [marked(line) for line in commands])
    credentials = {
        name: value for kind in stage.credentials for name, value in CREDENTIAL_ENV[kind].items()
    }
    if credentials:
        lines.append("        env:")
        lines += [f"          {name}: {value}" for name, value in credentials.items()]
    if stage.summary:
        lines += [
            "      - name: Job summary",
            f"        if: ${{{{ !cancelled() && hashFiles('{stage.summary}') != '' }}}}",
            f'        run: cat {stage.summary} >> "$GITHUB_STEP_SUMMARY"',
        ]
    if stage.dotenv:
        lines += [
            f"      - name: Pass {stage.dotenv.path} on to later jobs",
            "        id: dotenv",
            f'        run: cat {stage.dotenv.path} >> "$GITHUB_OUTPUT"',
        ]
    if stage.outputs:
        lines += [
            f"      - name: Upload the artifacts of {stage.name}",
            f"        uses: {uses('upload-artifact')}",
            "        with:",
            f"          name: {stage.name}",
        ]
        _block(lines, "          ", "path", list(stage.outputs))
        lines += [
            "          if-no-files-found: error",
            f"          retention-days: {pipeline.artifact_retention_days}",
        ]
    if stage.reports:
        lines += [
            "      - name: Upload the test reports",
            "        if: ${{ !cancelled() }}",
            f"        uses: {uses('upload-artifact')}",
            "        with:",
            f"          name: {stage.name}-reports",
        ]
        _block(lines, "          ", "path", list(stage.reports))
        lines.append(f"          retention-days: {pipeline.artifact_retention_days}")
    return lines


def job(pipeline: Pipeline, stage: Stage, in_promotion: bool = False, release: bool = False) -> str:
    lines = [f"  {stage.name}:", f"    name: {stage.name}"]
    needs = [] if in_promotion else list(stage.needs)
    if needs:
        lines.append(f"    needs: [{', '.join(needs)}]")
    # The release workflow runs only for tags: its jobs need no condition of their own.
    condition = None if release else job_condition(pipeline, stage)
    if condition:
        lines += ci_jinja.folded("    ", "if", condition)
    runs_on = RUNNER
    on_runner = ci_jinja.runner_test(pipeline, stage)
    if on_runner:
        # A self-hosted runner's label or a larger runner's name; see README.md.
        label = ci_jinja.runner_label(pipeline, stage)
        runs_on = (
            jinja(f"{{% if {on_runner} %}}{label}{{% else %}}") + RUNNER + jinja("{% endif %}")
        )
    lines += [f"    runs-on: {runs_on}", f"    timeout-minutes: {stage.timeout_minutes}"]
    permissions: dict[str, str] = {}
    for kind in stage.credentials:
        permissions.update(CREDENTIAL_PERMISSIONS[kind])
    if permissions:
        permissions.setdefault("contents", "read")
        lines.append("    permissions:")
        lines += [f"      {scope}: {level}" for scope, level in sorted(permissions.items())]
    if stage.environment:
        lines.append(f"    environment: {stage.environment}")
    if stage.concurrency:
        lines += [
            "    concurrency:",
            f"      group: {stage.concurrency}",
            # Queue, never cancel: a half-done deployment is worse than a late one.
            "      cancel-in-progress: false",
        ]
    env = {}
    for producer in pipeline.dotenv_producers(stage):
        assert producer.dotenv is not None
        for variable in producer.dotenv.variables:
            env[variable] = f"${{{{ needs.{producer.name}.outputs.{variable} }}}}"
    if env:
        lines.append("    env:")
        lines += [f"      {name}: {value}" for name, value in env.items()]
    if stage.dotenv:
        lines.append("    outputs:")
        lines += [
            f"      {variable}: ${{{{ steps.dotenv.outputs.{variable} }}}}"
            for variable in stage.dotenv.variables
        ]
    lines.append("    steps:")
    lines += steps(pipeline, stage, cache=stage.cache and not release)
    return "\n".join(lines) + "\n"


def _header(name: str) -> list[str]:
    return [*[f"# {line}" for line in ci_jinja.HEADER], f"name: {name}", ""]


def _workflow_env(pipeline: Pipeline) -> list[str]:
    # A string literal inside a GitHub expression doubles its single quotes.
    install = marked(ci_jinja.install_command(pipeline).replace("'", "''"))
    expression = f"${{{{ vars.INSTALL_COMMAND || '{install}' }}}}"
    return [
        "env:",
        "  # Installs the repository into .venv (torch from the index UV_TORCH_BACKEND names); the",
        "  # repository variable INSTALL_COMMAND replaces it, e.g. to use a package mirror.",
        *ci_jinja.folded("  ", "INSTALL_COMMAND", expression),
        "  # What the install step takes: the torch wheel index (GPU jobs set their CUDA",
        "  # backend) and the package extras (image and GitOps jobs need no torch).",
        *[f"  {name}: {value}" for name, value in ci_jinja.install_environment(pipeline).items()],
        "  # The training profile; the stages default to configs/smoke.yaml when it is unset.",
        "  MODEL_CONFIG: ${{ vars.MODEL_CONFIG }}",
        "",
    ]


def emit_ci(pipeline: Pipeline) -> str:
    """Pull requests and pushes to the default branch: every automatic stage, with the uv
    cache. Not pushes to every branch: a branch with a pull request would run twice."""
    stages = [stage for stage in pipeline.stages if not stage.manual]
    trigger = ["  push:", f"    branches: [{pipeline.default_branch}]", "  pull_request:"]
    concurrency = [
        "  group: ci-${{ github.ref }}",
        "  # A new push supersedes a pull request's run; default-branch runs all finish.",
        "  cancel-in-progress: ${{ github.event_name == 'pull_request' }}",
    ]
    return _push_workflow(pipeline, "CI", trigger, concurrency, stages, release=False)


def emit_release(pipeline: Pipeline) -> str:
    """Release tags: the stages that build a release, without any cache.

    A tag build publishes an image, so it must not restore a cache that a pull request
    could have written (zizmor's cache-poisoning audit): the chain runs cold.
    """
    stages = [stage for stage in pipeline.stages if stage.when in ("always", "release")]
    trigger = ["  push:", f'    tags: ["{pipeline.release_tag_pattern}"]']
    concurrency = ["  group: release-${{ github.ref }}", "  cancel-in-progress: false"]
    return _push_workflow(pipeline, "Release", trigger, concurrency, stages, release=True)


def _push_workflow(
    pipeline: Pipeline,
    name: str,
    trigger: list[str],
    concurrency: list[str],
    stages: list[Stage],
    release: bool,
) -> str:
    lines = [
        *_header(name),
        "on:",
        *trigger,
        "",
        "permissions:",
        "  contents: read",
        "",
        "concurrency:",
        *concurrency,
        "",
        *_workflow_env(pipeline),
        "jobs:",
    ]
    text = "\n".join(lines) + "\n"
    for index, stage in enumerate(stages):
        separator = "" if index == 0 else "\n"
        text += jinja_if(pipeline, stage, separator + job(pipeline, stage, release=release))
    return as_template(text)


def jinja_if(pipeline: Pipeline, stage: Stage, text: str) -> str:
    test = ci_jinja.condition(pipeline, stage)
    if test is None:
        return text
    return jinja(f"{{% if {test} %}}") + text + jinja("{% endif %}")


def emit_promote(pipeline: Pipeline) -> str:
    manual = [stage for stage in pipeline.stages if stage.manual]
    lines = [
        *_header("Promote"),
        "on:",
        "  workflow_dispatch:",
        "    inputs:",
        "      environment:",
        "        description: Environment to promote to (it gets the image of the one before it)",
        "        required: true",
        "        type: choice",
        "        options:",
    ]
    text = "\n".join(lines) + "\n"
    for stage in manual:
        text += jinja_if(pipeline, stage, f"          - {stage.environment}\n")
    text += "\n".join(["", "permissions:", "  contents: read", "", *_workflow_env(pipeline)])
    text += "\njobs:\n"
    for index, stage in enumerate(manual):
        separator = "" if index == 0 else "\n"
        text += jinja_if(pipeline, stage, separator + job(pipeline, stage, in_promotion=True))
    return as_template(text)

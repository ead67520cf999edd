"""Read the CI files of a rendered repository back into one comparable shape.

Each reader turns one dialect's files into `Job`s: name, needs, `when`, the stage's
commands, which stages' artifacts it downloads and which paths it keeps. The parity test
compares them with the spec (`Pipeline.for_answers`); a reader only parses, it never looks
at the spec, so a wrong emitter cannot hide behind it.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from modelyard import ci_jinja, emit_github, emit_jenkins

import jenkinsfile


@dataclasses.dataclass
class Job:
    name: str
    when: str
    needs: set[str]
    commands: list[str]
    downloads: set[str]  # stages whose artifacts this job reads
    keeps: list[str]  # paths this job keeps for later jobs
    environment: str | None = None
    runner: str | None = None  # the runner label, None on the default runner
    torch_backend: str | None = None  # UV_TORCH_BACKEND of its install step
    install_extras: str | None = None  # INSTALL_EXTRAS of its install step
    setup: tuple[str, ...] = ()  # GitLab: what runs before the install step (tools)


# --- GitLab ----------------------------------------------------------------------------


def _gitlab_when(rules: list[dict[str, Any]]) -> str:
    conditions = [rule.get("if") for rule in rules]
    if any(rule.get("when") == "manual" for rule in rules):
        return "manual"
    if conditions == [
        '$CI_PIPELINE_SOURCE == "merge_request_event"',
        "$CI_COMMIT_BRANCH",
        "$CI_COMMIT_TAG",
    ]:
        return "always"
    if conditions == ["$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"]:
        return "default-branch"
    if (
        len(conditions) == 2
        and conditions[0] == "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"
        and (conditions[1].startswith("$CI_COMMIT_TAG =~"))
    ):
        return "release"
    raise AssertionError(f"rules not understood: {rules}")


def read_gitlab(repo: Path) -> list[Job]:
    document = yaml.safe_load((repo / ".gitlab-ci.yml").read_text(encoding="utf-8"))
    jobs = []
    for stage in document["stages"]:
        [name] = [
            key
            for key, value in document.items()
            if isinstance(value, dict) and value.get("stage") == stage
        ]
        job = document[name]
        *setup, install = job["before_script"]
        assert install == ci_jinja.INSTALL_STEP, name
        needs = {entry["job"] for entry in job["needs"]}
        downloads = {entry["job"] for entry in job["needs"] if entry["artifacts"]}
        artifacts = job.get("artifacts", {})
        keeps = [path for path in artifacts.get("paths", [])]
        environment = job.get("environment", {}).get("name")
        tags = job.get("tags", [])
        assert len(tags) <= 1, (name, tags)
        variables = {**document["variables"], **job.get("variables", {})}
        jobs.append(
            Job(
                name,
                _gitlab_when(job["rules"]),
                needs,
                job["script"],
                downloads,
                keeps,
                environment,
                tags[0] if tags else None,
                variables["UV_TORCH_BACKEND"],
                variables["INSTALL_EXTRAS"],
                tuple(setup),
            )
        )
    return jobs


# --- GitHub Actions --------------------------------------------------------------------


def _github_when(job: dict[str, Any], workflow: str) -> str:
    condition = " ".join(str(job.get("if", "")).split())
    default_branch = emit_github.default_branch_test()
    if workflow == "promote":
        assert condition.startswith("inputs.environment == "), condition
        assert condition.endswith(default_branch), condition
        return "manual"
    if not condition:
        return "always"
    if condition == f"github.event_name == 'push' && {default_branch}":
        return "default-branch"
    raise AssertionError(f"job condition not understood: {condition}")


def _stage_step(job_name: str, job: dict[str, Any]) -> dict[str, Any]:
    [step] = [step for step in job["steps"] if step.get("id") == job_name]
    return step


def _uses(step: dict[str, Any], action: str) -> bool:
    return step.get("uses", "").split("@")[0] == emit_github.ACTIONS[action][0]


def read_github_workflow(path: Path, workflow: str) -> list[Job]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    jobs = []
    for name, job in document["jobs"].items():
        steps = job["steps"]
        [install] = [step for step in steps if step.get("name") == "Install"]
        assert install["run"] == ci_jinja.INSTALL_STEP, name
        commands = _stage_step(name, job)["run"].strip().splitlines()
        downloads = {step["with"]["name"] for step in steps if _uses(step, "download-artifact")}
        keeps = [
            line
            for step in steps
            if _uses(step, "upload-artifact")
            for line in step["with"]["path"].split()
        ]
        environment = job.get("environment")
        runs_on = job["runs-on"]
        env = {**document["env"], **install.get("env", {})}
        jobs.append(
            Job(
                name,
                _github_when(job, workflow),
                set(job.get("needs", [])),
                commands,
                downloads,
                keeps,
                environment,
                None if runs_on == emit_github.RUNNER else runs_on,
                env["UV_TORCH_BACKEND"],
                env["INSTALL_EXTRAS"],
            )
        )
    return jobs


def read_github(repo: Path) -> dict[str, list[Job]]:
    folder = repo / ".github" / "workflows"
    return {
        path.stem: read_github_workflow(path, path.stem) for path in sorted(folder.glob("*.yml"))
    }


# --- Jenkins ---------------------------------------------------------------------------

_DOTENV = re.compile(re.escape(emit_jenkins.DOTENV_PREFIX).replace(r"\{path\}", r"(\S+)"))


def _jenkins_when(parts: dict[str, Any], default_branch: str, tag_pattern: str) -> str:
    conditions = [
        jenkinsfile.source_text(node) for node in (parts.get("when") or {}).get("block") or []
    ]
    branch = f"branch({default_branch!r})"
    if "input" in parts:
        assert conditions == ["beforeInput(true)", branch], conditions
        return "manual"
    if not conditions:
        return "always"
    if conditions == [branch]:
        return "default-branch"
    if conditions == ["anyOf()"]:
        [any_of] = parts["when"]["block"]
        inner = [jenkinsfile.source_text(node) for node in any_of["block"]]
        assert inner == [branch, f"tag({tag_pattern!r})"], inner
        return "release"
    raise AssertionError(f"when not understood: {conditions}")


def _jenkins_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Steps in order, the ones inside withCredentials included."""
    flat = []
    for step in steps:
        flat.append(step)
        flat += _jenkins_steps(step["block"] or [])
    return flat


def _jenkins_environment(section: dict[str, Any] | None) -> dict[str, Any]:
    entries = (section or {}).get("block") or []
    return {entry["assign"]: entry["value"].get("lit") for entry in entries}


def read_jenkins(repo: Path, default_branch: str, tag_pattern: str) -> list[Job]:
    tree = jenkinsfile.parse_tree(repo / "Jenkinsfile")
    found = jenkinsfile.sections(jenkinsfile.pipeline_block(tree))
    pipeline_env = _jenkins_environment(found.get("environment"))
    jobs = []
    for node in found["stages"]["block"]:
        name = node["args"][0]["lit"]
        parts = jenkinsfile.sections(node["block"])
        steps = _jenkins_steps(parts["steps"]["block"])
        scripts = [step["args"][0]["lit"] for step in steps if step["call"] == "sh"]
        assert scripts[0] == ci_jinja.INSTALL_STEP, name
        commands = []
        for script in scripts[1:]:
            # The dotenv an earlier stage wrote is sourced in front of the command.
            commands.append(_DOTENV.sub("", script))
        downloads = {step["args"][0]["lit"] for step in steps if step["call"] == "unstash"}
        keeps = [
            path.removesuffix("**")
            for step in steps
            if step["call"] == "stash"
            for path in dict(step["named"])["includes"]["lit"].split(",")
        ]
        # Every stage takes an agent of its own (the pipeline has `agent none`).
        agent = parts["agent"]
        runner = None
        if agent["block"]:
            [label] = agent["block"]
            assert label["call"] == "label", (name, agent)
            runner = label["args"][0]["lit"]
        env = {**pipeline_env, **_jenkins_environment(parts.get("environment"))}
        jobs.append(
            Job(
                name,
                _jenkins_when(parts, default_branch, tag_pattern),
                set(),
                commands,
                downloads,
                keeps,
                None,
                runner,
                env["UV_TORCH_BACKEND"],
                env["INSTALL_EXTRAS"],
            )
        )
    return jobs

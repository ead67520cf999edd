"""ci/pipeline.yml as one typed model: the stage graph every CI dialect is emitted from.

`load_pipeline` parses and validates the spec; a mistake (an unknown `needs`, a cycle, an
artifact consumed but never produced upstream, a duplicate name, an unknown key) raises
PipelineError with one line that names the stage. The emitters (`emit_github`,
`emit_gitlab`, `emit_jenkins`) read only this model.

Environments after the first are optional: a generated repository has them only when its
`environments` answer names them. `Pipeline.for_answers` resolves the spec for one set of
answers (what a rendered repository's pipelines must match); the emitters instead write
Jinja conditions so that one template serves every answer.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from .paths import REPO_ROOT

PIPELINE_SPEC = REPO_ROOT / "ci" / "pipeline.yml"

# When a stage runs:
#   always          every push and every merge/pull request
#   default-branch  pushes to the default branch
#   release         pushes to the default branch and release tags
#   manual          started by a person, on the default branch
WHEN_VALUES = ("always", "default-branch", "release", "manual")
# The events each `when` runs on; a stage can only need stages that run on all of them.
RUNS_ON = {
    "always": {"merge-request", "branch", "default-branch", "tag"},
    "default-branch": {"default-branch"},
    "release": {"default-branch", "tag"},
    "manual": {"default-branch"},
}
CREDENTIAL_KINDS = ("registry", "git", "data")
# Runner classes a stage may ask for with `runner:`. Each is off until the repository names
# its label in the Copier answer `<class>_runner_label`; until then the stage runs on the
# default runner like every other.
RUNNER_CLASSES = ("gpu",)
# Tools a stage's job needs besides Python, git and uv (what the default CI image has):
# the Debian package that provides each. GitLab jobs install them into the default image
# first; GitHub's Ubuntu runners and Jenkins agents must have them (documented).
STAGE_TOOLS = {"buildah": "buildah"}
PLACEHOLDERS = ("package", "python_version", "environment", "previous_environment")

_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
_VARIABLE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_TOP_LEVEL_KEYS = {
    "version",
    "release_tag_pattern",
    "artifact_retention_days",
    "environments",
    "install",
    "runners",
    "stages",
}
_STAGE_KEYS = {
    "name",
    "when",
    "needs",
    "run",
    "inputs",
    "outputs",
    "reports",
    "dotenv",
    "summary",
    "environment",
    "credentials",
    "concurrency",
    "cache",
    "runner",
    "install_extras",
    "tools",
    "timeout_minutes",
}


class PipelineError(ValueError):
    """ci/pipeline.yml is not a valid stage graph; the message names the stage."""


@dataclasses.dataclass(frozen=True)
class Environment:
    name: str
    tier: str
    # A person approves deployments to it (GitHub environment reviewers, GitLab protected
    # environment approval rules, Jenkins input submitter), one of `approvers`: a group
    # (GitHub team slug, GitLab group, Jenkins group or user list).
    approval: bool = False
    approvers: str | None = None


@dataclasses.dataclass(frozen=True)
class Install:
    command: str
    cache_key_files: tuple[str, ...]
    cache_dir: str
    # uv's --torch-backend, passed as UV_TORCH_BACKEND to every job: which torch wheel
    # index the install step resolves torch from (cpu, cu130, ...).
    torch_backend: str
    # The package extras a job installs (INSTALL_EXTRAS) unless its stage names others.
    extras: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Runner:
    """A class of runner a stage may ask for; its label comes from the repository's answers."""

    name: str
    # The torch wheel the install step takes on this runner (UV_TORCH_BACKEND).
    torch_backend: str

    @property
    def label_answer(self) -> str:
        """The Copier answer naming this runner's label; empty keeps the default runner."""
        return f"{self.name}_runner_label"


@dataclasses.dataclass(frozen=True)
class Dotenv:
    """A KEY=VALUE file a stage writes whose variables later stages read from their env."""

    path: str
    variables: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    when: str
    run: tuple[str, ...]
    needs: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    reports: tuple[str, ...] = ()
    dotenv: Dotenv | None = None
    summary: str | None = None
    environment: str | None = None
    credentials: tuple[str, ...] = ()
    concurrency: str | None = None
    cache: bool = True
    # A runner class from `runners` (off until the repository names its label). In a
    # pipeline resolved `for_answers`, None unless the answers name the label, which is
    # then `runner_label`.
    runner: str | None = None
    runner_label: str | None = None
    # The extras this stage's job installs; None takes install.extras.
    install_extras: tuple[str, ...] | None = None
    tools: tuple[str, ...] = ()
    timeout_minutes: int = 30

    @property
    def manual(self) -> bool:
        return self.when == "manual"


@dataclasses.dataclass(frozen=True)
class ArtifactFlow:
    """`consumer` reads `path`, which `producer` wrote."""

    producer: str
    consumer: str
    path: str


@dataclasses.dataclass(frozen=True)
class Pipeline:
    release_tag_pattern: str
    artifact_retention_days: int
    environments: tuple[Environment, ...]
    install: Install
    runners: tuple[Runner, ...]
    # In a topological order that keeps the spec's order where the graph allows it.
    stages: tuple[Stage, ...]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)

    def runner(self, name: str) -> Runner:
        for runner in self.runners:
            if runner.name == name:
                return runner
        raise KeyError(name)

    def install_extras(self, stage: Stage) -> tuple[str, ...]:
        """The package extras `stage`'s job installs (INSTALL_EXTRAS, comma-separated)."""
        return self.install.extras if stage.install_extras is None else stage.install_extras

    def torch_backend(self, stage: Stage) -> str:
        """The torch wheel `stage` installs when its runner class is in use."""
        if stage.runner is None:
            return self.install.torch_backend
        return self.runner(stage.runner).torch_backend

    def environment(self, name: str) -> Environment:
        for environment in self.environments:
            if environment.name == name:
                return environment
        raise KeyError(name)

    @property
    def release_tag_prefix(self) -> str:
        """`v` for `v*`: the pattern is a prefix glob, which every dialect can express."""
        return self.release_tag_pattern[:-1]

    def producer_of(self, path: str) -> Stage:
        for stage in self.stages:
            if path in stage.outputs:
                return stage
        raise KeyError(path)

    def artifact_flow(self) -> list[ArtifactFlow]:
        return [
            ArtifactFlow(self.producer_of(path).name, stage.name, path)
            for stage in self.stages
            for path in stage.inputs
        ]

    def producers(self, stage: Stage) -> list[Stage]:
        """The stages whose outputs `stage` reads, in pipeline order."""
        names = {self.producer_of(path).name for path in stage.inputs}
        return [candidate for candidate in self.stages if candidate.name in names]

    def dotenv_producers(self, stage: Stage) -> list[Stage]:
        """The stages whose dotenv file `stage` reads (always among its direct needs)."""
        return [
            producer
            for producer in self.producers(stage)
            if producer.dotenv is not None and producer.dotenv.path in stage.inputs
        ]

    def ancestors(self, name: str) -> set[str]:
        found: set[str] = set()
        pending = list(self.stage(name).needs)
        while pending:
            current = pending.pop()
            if current not in found:
                found.add(current)
                pending.extend(self.stage(current).needs)
        return found

    def is_optional(self, stage: Stage) -> bool:
        """Whether the stage exists only for some answers (a later environment)."""
        return stage.environment is not None and stage.environment != self.environments[0].name

    def previous_environments(self, environment: str) -> list[str]:
        names = [candidate.name for candidate in self.environments]
        return names[: names.index(environment)]

    def for_answers(self, answers: Mapping[str, Any]) -> Pipeline:
        """The pipeline a repository rendered with these answers must have.

        Stages of environments not chosen are dropped; a stage that needed a dropped stage
        needs what the dropped stage needed. Placeholders are filled in.
        """
        chosen = set(answers.get("environments") or [env.name for env in self.environments])
        kept = [
            stage
            for stage in self.stages
            if not self.is_optional(stage) or stage.environment in chosen
        ]
        kept_names = {stage.name for stage in kept}

        def bypass(need: str) -> list[str]:
            if need in kept_names:
                return [need]
            return [name for inner in self.stage(need).needs for name in bypass(inner)]

        resolved = []
        for stage in kept:
            needs = tuple(dict.fromkeys(name for need in stage.needs for name in bypass(need)))
            values = {
                "package": str(answers["package_name"]),
                "python_version": str(answers.get("python_version", "3.11")),
                "environment": stage.environment or "",
                "previous_environment": self._previous_chosen(stage, chosen),
            }
            label = (
                str(answers.get(self.runner(stage.runner).label_answer) or "") or None
                if stage.runner
                else None
            )
            resolved.append(
                dataclasses.replace(
                    stage,
                    needs=needs,
                    run=tuple(fill_placeholders(line, values) for line in stage.run),
                    runner=stage.runner if label else None,
                    runner_label=label,
                )
            )
        install = dataclasses.replace(
            self.install,
            command=fill_placeholders(
                self.install.command,
                {"python_version": str(answers.get("python_version", "3.11"))},
            ),
        )
        environments = tuple(env for env in self.environments if env.name in chosen)
        return dataclasses.replace(
            self, stages=tuple(resolved), install=install, environments=environments
        )

    def _previous_chosen(self, stage: Stage, chosen: set[str]) -> str:
        if stage.environment is None:
            return ""
        earlier = [name for name in self.previous_environments(stage.environment) if name in chosen]
        return earlier[-1] if earlier else ""


def fill_placeholders(text: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


def placeholders_in(text: str) -> list[str]:
    return _PLACEHOLDER.findall(text)


def load_pipeline(path: Path = PIPELINE_SPEC) -> Pipeline:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        where = " ".join(str(error).split())
        raise PipelineError(f"{path} is not valid YAML: {where}") from error
    return parse_pipeline(document)


def parse_pipeline(document: Any) -> Pipeline:
    """Validate a parsed ci/pipeline.yml and build the model."""
    spec = _mapping(document, "ci/pipeline.yml", required=_TOP_LEVEL_KEYS, allowed=_TOP_LEVEL_KEYS)
    if spec["version"] != 1:
        raise PipelineError(f"version is {spec['version']!r}: this generator reads version 1")
    pattern = _string(spec["release_tag_pattern"], "release_tag_pattern")
    if not re.fullmatch(r"[A-Za-z0-9._-]*\*", pattern):
        raise PipelineError(
            f"release_tag_pattern {pattern!r} must be a prefix followed by '*' (for example v*)"
        )
    environments = _parse_environments(spec["environments"])
    install = _parse_install(spec["install"])
    runners = _parse_runners(spec["runners"])
    raw_stages = spec["stages"]
    if not isinstance(raw_stages, list) or not raw_stages:
        raise PipelineError("stages must be a non-empty list")
    stages = [_parse_stage(raw, index) for index, raw in enumerate(raw_stages)]
    pipeline = Pipeline(
        release_tag_pattern=pattern,
        artifact_retention_days=_positive_int(
            spec["artifact_retention_days"], "artifact_retention_days"
        ),
        environments=environments,
        install=install,
        runners=runners,
        stages=tuple(_topological_order(stages)),
    )
    _check_graph(pipeline)
    for stage in pipeline.stages:
        shared = [
            other.name
            for other in pipeline.stages
            if other.concurrency == stage.concurrency and other.manual != stage.manual
        ]
        if stage.manual and stage.concurrency and shared:
            # GitHub keeps one pending job per group and cancels it for a newer one: the
            # next automatic deploy would cancel a promotion waiting for its approval.
            raise PipelineError(
                f"stage {stage.name!r} is manual and shares concurrency {stage.concurrency!r} "
                f"with automatic stage {shared[0]!r}: a new run would cancel it while it waits"
            )
        if stage.runner and stage.runner not in {runner.name for runner in pipeline.runners}:
            raise PipelineError(
                f"stage {stage.name!r} asks for runner {stage.runner!r}, which runners "
                "does not define"
            )
    return pipeline


def _parse_environments(raw: Any) -> tuple[Environment, ...]:
    if not isinstance(raw, list) or not raw:
        raise PipelineError("environments must be a non-empty list, in promotion order")
    environments = []
    for index, item in enumerate(raw):
        where = f"environments[{index}]"
        entry = _mapping(
            item,
            where,
            required={"name", "tier"},
            allowed={"name", "tier", "approval", "approvers"},
        )
        name = _name(entry["name"], where)
        if any(existing.name == name for existing in environments):
            raise PipelineError(f"environment {name!r} is listed twice")
        approval = entry.get("approval", False)
        if not isinstance(approval, bool):
            raise PipelineError(f"environment {name!r}: approval must be true or false")
        approvers = entry.get("approvers")
        if approval != (approvers is not None):
            raise PipelineError(
                f"environment {name!r}: approval: true needs approvers (the group that "
                "approves), and approvers need approval: true"
            )
        if approvers is not None and not _NAME.match(str(approvers)):
            raise PipelineError(
                f"environment {name!r}: approvers {approvers!r} must be a group name in "
                "lowercase letters, digits and '-'"
            )
        environments.append(Environment(name, _string(entry["tier"], where), approval, approvers))
    return tuple(environments)


def _parse_install(raw: Any) -> Install:
    keys = {"command", "cache_key_files", "cache_dir", "torch_backend", "extras"}
    entry = _mapping(raw, "install", required=keys, allowed=keys)
    command = _string(entry["command"], "install.command")
    unknown = [name for name in placeholders_in(command) if name != "python_version"]
    if unknown:
        raise PipelineError(f"install.command uses unknown placeholder {{{unknown[0]}}}")
    return Install(
        command=command,
        cache_key_files=tuple(_strings(entry["cache_key_files"], "install.cache_key_files")),
        cache_dir=_relative_path(entry["cache_dir"], "install.cache_dir"),
        torch_backend=_torch_backend(entry["torch_backend"], "install.torch_backend"),
        extras=_extras(entry["extras"], "install.extras"),
    )


def _extras(value: Any, where: str) -> tuple[str, ...]:
    extras = tuple(_strings(value, where))
    for extra in extras:
        if not _NAME.match(extra):
            raise PipelineError(f"{where}: {extra!r} is not a package extra name")
    if not extras or len(set(extras)) != len(extras):
        raise PipelineError(f"{where} must name at least one extra, each once")
    return extras


def _parse_runners(raw: Any) -> tuple[Runner, ...]:
    if not isinstance(raw, dict):
        raise PipelineError("runners must be a mapping of runner class to its settings")
    runners = []
    for name, settings in raw.items():
        if name not in RUNNER_CLASSES:
            raise PipelineError(
                f"runners: unknown runner class {name!r}; known: {', '.join(RUNNER_CLASSES)}"
            )
        where = f"runners.{name}"
        entry = _mapping(settings, where, required={"torch_backend"}, allowed={"torch_backend"})
        runners.append(Runner(name, _torch_backend(entry["torch_backend"], where)))
    return tuple(runners)


def _torch_backend(value: Any, where: str) -> str:
    # uv's names: cpu, auto, cuNNN, rocmX.Y[.Z], xpu.
    backend = _string(value, where)
    if not re.fullmatch(r"cpu|auto|xpu|cu[0-9]{2,3}|rocm[0-9]+(\.[0-9]+){1,2}", backend):
        raise PipelineError(
            f"{where}: {backend!r} is not a uv torch backend (cpu, auto, cu130, rocm6.4, xpu)"
        )
    return backend


def _parse_stage(raw: Any, index: int) -> Stage:
    name = raw.get("name") if isinstance(raw, dict) else None
    where = f"stage {name!r}" if isinstance(name, str) else f"stages[{index}]"
    entry = _mapping(raw, where, required={"name", "when", "run"}, allowed=_STAGE_KEYS)
    name = _name(entry["name"], where)
    where = f"stage {name!r}"
    when = entry["when"]
    if when not in WHEN_VALUES:
        raise PipelineError(f"{where}: when is {when!r}; use one of {', '.join(WHEN_VALUES)}")
    run = tuple(_strings(entry["run"], f"{where}: run"))
    if not run:
        raise PipelineError(f"{where}: run must hold at least one command")
    for line in run:
        for placeholder in placeholders_in(line):
            if placeholder not in PLACEHOLDERS:
                raise PipelineError(
                    f"{where}: unknown placeholder {{{placeholder}}} in {line!r} "
                    f"(known: {', '.join('{' + known + '}' for known in PLACEHOLDERS)})"
                )
    credentials = tuple(_strings(entry.get("credentials", []), f"{where}: credentials"))
    for kind in credentials:
        if kind not in CREDENTIAL_KINDS:
            raise PipelineError(
                f"{where}: unknown credentials {kind!r}; use {', '.join(CREDENTIAL_KINDS)}"
            )
    dotenv = None
    if "dotenv" in entry:
        keys = {"path", "variables"}
        dotenv_entry = _mapping(entry["dotenv"], f"{where}: dotenv", required=keys, allowed=keys)
        variables = tuple(_strings(dotenv_entry["variables"], f"{where}: dotenv.variables"))
        for variable in variables:
            if not _VARIABLE.match(variable):
                raise PipelineError(f"{where}: dotenv variable {variable!r} is not UPPER_CASE")
        dotenv = Dotenv(_relative_path(dotenv_entry["path"], f"{where}: dotenv.path"), variables)
    cache = entry.get("cache", True)
    if not isinstance(cache, bool):
        raise PipelineError(f"{where}: cache must be true or false")
    tools = tuple(_strings(entry.get("tools", []), f"{where}: tools"))
    for tool in tools:
        if tool not in STAGE_TOOLS:
            raise PipelineError(
                f"{where}: unknown tool {tool!r}; jobs can be given {', '.join(STAGE_TOOLS)}"
            )
    runner = entry.get("runner")
    if runner is not None and runner not in RUNNER_CLASSES:
        raise PipelineError(
            f"{where}: unknown runner {runner!r}; use one of {', '.join(RUNNER_CLASSES)}"
        )
    return Stage(
        name=name,
        when=when,
        run=run,
        needs=tuple(_strings(entry.get("needs", []), f"{where}: needs")),
        inputs=tuple(_paths(entry.get("inputs", []), f"{where}: inputs")),
        outputs=tuple(_paths(entry.get("outputs", []), f"{where}: outputs")),
        reports=tuple(_paths(entry.get("reports", []), f"{where}: reports")),
        dotenv=dotenv,
        summary=_relative_path(entry["summary"], f"{where}: summary")
        if "summary" in entry
        else None,
        environment=_string(entry["environment"], f"{where}: environment")
        if "environment" in entry
        else None,
        credentials=credentials,
        concurrency=_name(entry["concurrency"], f"{where}: concurrency")
        if "concurrency" in entry
        else None,
        cache=cache,
        runner=runner,
        install_extras=_extras(entry["install_extras"], f"{where}: install_extras")
        if "install_extras" in entry
        else None,
        tools=tools,
        timeout_minutes=_positive_int(entry.get("timeout_minutes", 30), f"{where}: timeout"),
    )


def _topological_order(stages: list[Stage]) -> list[Stage]:
    """Duplicates, unknown needs and cycles are errors; else the spec order, made valid."""
    by_name: dict[str, Stage] = {}
    for stage in stages:
        if stage.name in by_name:
            raise PipelineError(f"stage {stage.name!r} is defined twice")
        by_name[stage.name] = stage
    for stage in stages:
        for need in stage.needs:
            if need not in by_name:
                raise PipelineError(
                    f"stage {stage.name!r} needs {need!r}, which is not a stage "
                    f"(stages: {', '.join(by_name)})"
                )
            if need == stage.name:
                raise PipelineError(f"stage {stage.name!r} needs itself")
        if len(set(stage.needs)) != len(stage.needs):
            raise PipelineError(f"stage {stage.name!r} lists a need twice")
    _raise_on_cycle(stages, by_name)
    ordered: list[Stage] = []
    placed: set[str] = set()
    while len(ordered) < len(stages):
        # The first stage in spec order whose needs are all placed: stable and valid.
        ready = next(s for s in stages if s.name not in placed and set(s.needs) <= placed)
        ordered.append(ready)
        placed.add(ready.name)
    return ordered


def _raise_on_cycle(stages: list[Stage], by_name: dict[str, Stage]) -> None:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            cycle = [*visiting[visiting.index(name) :], name]
            raise PipelineError(f"stage {name!r} is in a cycle of needs: {' -> '.join(cycle)}")
        visiting.append(name)
        for need in by_name[name].needs:
            visit(need)
        visiting.pop()
        done.add(name)

    for stage in stages:
        visit(stage.name)


def _check_graph(pipeline: Pipeline) -> None:
    environment_names = [environment.name for environment in pipeline.environments]
    producers: dict[str, str] = {}
    for stage in pipeline.stages:
        for path in stage.outputs:
            if path in producers:
                raise PipelineError(
                    f"stage {stage.name!r} produces {path}, which stage "
                    f"{producers[path]!r} already produces"
                )
            producers[path] = stage.name
    for stage in pipeline.stages:
        where = f"stage {stage.name!r}"
        ancestors = pipeline.ancestors(stage.name)
        for path in stage.inputs:
            if path not in producers:
                raise PipelineError(f"{where} consumes {path}, which no stage produces")
            if producers[path] not in ancestors:
                raise PipelineError(
                    f"{where} consumes {path} from stage {producers[path]!r}, which is not "
                    "among its needs (direct or indirect)"
                )
        for producer in pipeline.dotenv_producers(stage):
            if producer.name not in stage.needs:
                raise PipelineError(
                    f"{where} reads the dotenv {producer.dotenv.path} of stage "
                    f"{producer.name!r}, so it must need that stage directly"
                )
        if stage.dotenv and stage.dotenv.path not in stage.outputs:
            raise PipelineError(f"{where}: dotenv {stage.dotenv.path} must be one of its outputs")
        if stage.environment is not None and stage.environment not in environment_names:
            raise PipelineError(
                f"{where} deploys to {stage.environment!r}, which is not in environments "
                f"({', '.join(environment_names)})"
            )
        uses_environment = any(
            name in ("environment", "previous_environment")
            for line in stage.run
            for name in placeholders_in(line)
        )
        if uses_environment and stage.environment is None:
            raise PipelineError(f"{where} uses {{environment}} but has no environment")
        if pipeline.is_optional(stage) and len(stage.needs) != 1:
            # Dropping it for some answers re-points its dependants at its one need.
            raise PipelineError(
                f"{where} deploys to optional environment {stage.environment!r} and so must "
                "need exactly one stage"
            )
        if pipeline.is_optional(stage) and stage.outputs:
            raise PipelineError(
                f"{where} deploys to optional environment {stage.environment!r} and so must "
                "not produce artifacts"
            )
        for need in stage.needs:
            needed = pipeline.stage(need)
            missing = sorted(RUNS_ON[stage.when] - RUNS_ON[needed.when])
            if missing:
                raise PipelineError(
                    f"{where} runs on {', '.join(missing)} events, where stage {need!r} "
                    f"(when: {needed.when}) does not run"
                )
            if needed.manual and not stage.manual:
                raise PipelineError(
                    f"{where} runs automatically but needs manual stage {need!r}: make it "
                    "manual too"
                )


def _mapping(
    value: Any, where: str, *, required: Iterable[str], allowed: Iterable[str]
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PipelineError(f"{where} must be a mapping")
    missing = sorted(set(required) - set(value))
    if missing:
        raise PipelineError(f"{where} lacks {', '.join(missing)}")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise PipelineError(
            f"{where} has unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})"
        )
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PipelineError(f"{where} must be a non-empty string")
    return value


def _strings(value: Any, where: str) -> Sequence[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise PipelineError(f"{where} must be a list of non-empty strings")
    return value


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise PipelineError(
            f"{where}: name {value!r} must be lowercase letters, digits and '-', "
            "starting with a letter"
        )
    return value


def _relative_path(value: Any, where: str) -> str:
    path = _string(value, where)
    normal = posixpath.normpath(path.rstrip("/"))
    if path.startswith("/") or normal.startswith("..") or "*" in path:
        raise PipelineError(f"{where}: {path!r} must be a relative path inside the repo")
    return path


def _paths(value: Any, where: str) -> list[str]:
    paths = [_relative_path(item, where) for item in _strings(value, where)]
    if len(set(paths)) != len(paths):
        raise PipelineError(f"{where} lists a path twice")
    return paths


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise PipelineError(f"{where} must be a positive whole number, not {value!r}")
    return value

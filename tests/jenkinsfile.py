"""A Jenkinsfile, checked the way Jenkins checks it and run the way Jenkins runs its stages.

No Jenkins can run here. What stands in for it:
- parsing: Groovy's own parser (tests/jenkinsfile_tree.groovy) reads the Jenkinsfile into a
  call tree; a Groovy syntax error fails like Jenkins' would;
- validation: the tree becomes Jenkins' declarative-pipeline JSON AST, which is validated
  against Jenkins' own schema (../shared/schemas/jenkins/declarative-ast-schema.json), plus
  the semantic rules Jenkins applies before running (`semantic_errors`);
- execution (`run_pipeline`): stages in order, `when` honoured (branch, tag, anyOf,
  allOf, not, beforeInput), `input` approved only where the caller says so, a stage's
  `agent { label }` run in that agent's own workspace (or left waiting, as Jenkins waits,
  when no agent has the label), a stage's `environment` applied, `sh` steps
  run with `sh -xe` as Jenkins does, `stash`/`unstash`/`archiveArtifacts` copy files,
  `withCredentials` binds from a credentials map, `junit` reads the reports in `post`.
  Anything else fails loudly rather than being skipped.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

from ci_tools import tool, tool_env

HERE = Path(__file__).resolve().parent
TREE_SCRIPT = HERE / "jenkinsfile_tree.groovy"

WHEN_CONDITIONS = {
    "branch",
    "buildingTag",
    "changelog",
    "changeset",
    "changeRequest",
    "environment",
    "equals",
    "expression",
    "tag",
    "triggeredBy",
}
NESTED_WHEN = {"not", "allOf", "anyOf"}
WHEN_FLAGS = {"beforeAgent", "beforeInput", "beforeOptions"}
POST_CONDITIONS = {
    "always",
    "changed",
    "fixed",
    "regression",
    "aborted",
    "failure",
    "success",
    "unstable",
    "unsuccessful",
    "cleanup",
}
AGENT_TYPES = {"any", "none", "label", "node", "docker", "dockerfile", "kubernetes"}
PIPELINE_OPTIONS = {
    "buildDiscarder",
    "checkoutToSubdirectory",
    "disableConcurrentBuilds",
    "disableResume",
    "newContainerPerStage",
    "overrideIndexTriggers",
    "parallelsAlwaysFailFast",
    "preserveStashes",
    "quietPeriod",
    "retry",
    "skipDefaultCheckout",
    "skipStagesAfterUnstable",
    "timeout",
    "timestamps",
}
# `lock` comes from the Lockable Resources plugin.
STAGE_OPTIONS = {"lock", "retry", "skipDefaultCheckout", "timeout", "timestamps"}
# Stage options that bound or serialise work: Jenkins applies options before `input`, so
# on a stage that waits for an approval they would count (or hold) the wait itself.
WAIT_SENSITIVE_OPTIONS = {"lock", "timeout"}
# Steps that need a workspace, so an agent (with `agent none`, a stage must bring its own).
WORKSPACE_STEPS = {"archiveArtifacts", "junit", "sh", "stash", "unstash"}
PARAMETER_TYPES = {"booleanParam", "choice", "password", "string", "text"}
INPUT_KEYS = {"message", "id", "ok", "submitter", "submitterParameter", "parameters"}


class JenkinsfileError(Exception):
    """The Jenkinsfile does not parse, or Jenkins would reject it."""


# --- parsing ---------------------------------------------------------------------------


def parse_tree(jenkinsfile: Path) -> list[dict[str, Any]]:
    """The call tree of the Jenkinsfile, from Groovy's parser."""
    result = subprocess.run(
        [tool("groovy"), str(TREE_SCRIPT), str(jenkinsfile)],
        capture_output=True,
        text=True,
        env=tool_env(),
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise JenkinsfileError(f"groovy cannot parse {jenkinsfile}: {result.stderr.strip()}")
    return json.loads(result.stdout)


def pipeline_block(tree: list[dict[str, Any]]) -> list[dict[str, Any]]:
    calls = [node for node in tree if node.get("call") == "pipeline"]
    if len(tree) != 1 or len(calls) != 1 or calls[0]["block"] is None:
        raise JenkinsfileError("a declarative Jenkinsfile is exactly one `pipeline { ... }` block")
    return calls[0]["block"]


def sections(block: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for node in block:
        name = node.get("call") or node.get("assign") or "?"
        if name in found:
            raise JenkinsfileError(f"section {name!r} appears twice")
        found[name] = node
    return found


# --- Jenkins' declarative JSON AST ------------------------------------------------------


def source_text(node: dict[str, Any]) -> str:
    if "lit" in node:
        value = node["lit"]
        return repr(value) if isinstance(value, str) else json.dumps(value)
    if "word" in node:
        return node["word"]
    if "list" in node:
        return "[" + ", ".join(source_text(item) for item in node["list"]) + "]"
    if "call" in node:
        parts = [source_text(arg) for arg in node["args"]]
        parts += [f"{key}: {source_text(value)}" for key, value in node["named"]]
        return f"{node['call']}({', '.join(parts)})"
    return node.get("expr", "?")


def raw(node: dict[str, Any]) -> dict[str, Any]:
    if "lit" in node:
        return {"isLiteral": True, "value": node["lit"]}
    return {"isLiteral": False, "value": source_text(node)}


def step_arguments(node: dict[str, Any]) -> Any:
    if node["named"]:
        return [{"key": key, "value": raw(value)} for key, value in node["named"]]
    if len(node["args"]) == 1:
        return raw(node["args"][0])
    return [raw(arg) for arg in node["args"]]


def ast_step(node: dict[str, Any]) -> dict[str, Any]:
    if "call" not in node:
        raise JenkinsfileError(f"not a step: {source_text(node)}")
    step = {"name": node["call"], "arguments": step_arguments(node)}
    if node["block"] is not None:
        step["children"] = [ast_step(child) for child in node["block"]]
    return step


def method_arg(node: dict[str, Any]) -> dict[str, Any]:
    if "call" in node:
        return method_call(node)
    return raw(node)


def method_call(node: dict[str, Any]) -> dict[str, Any]:
    arguments = [method_arg(arg) for arg in node["args"]]
    arguments += [{"key": key, "value": method_arg(value)} for key, value in node["named"]]
    return {"name": node["call"], "arguments": arguments}


def when_condition(node: dict[str, Any]) -> dict[str, Any]:
    if node["call"] in NESTED_WHEN:
        return {"name": node["call"], "children": [when_condition(c) for c in node["block"] or []]}
    return {"name": node["call"], "arguments": step_arguments(node)}


def ast_when(node: dict[str, Any]) -> dict[str, Any]:
    when: dict[str, Any] = {"conditions": []}
    for child in node["block"] or []:
        if child.get("call") in WHEN_FLAGS:
            when[child["call"]] = bool(child["args"][0].get("lit"))
        else:
            when["conditions"].append(when_condition(child))
    return when


def ast_branch(steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": "default", "steps": [ast_step(step) for step in steps]}


def ast_post(node: dict[str, Any]) -> dict[str, Any]:
    return {
        "conditions": [
            {"condition": child["call"], "branch": ast_branch(child["block"] or [])}
            for child in node["block"] or []
        ]
    }


def ast_environment(node: dict[str, Any]) -> list[dict[str, Any]]:
    entries = []
    for child in node["block"] or []:
        if "assign" not in child:
            raise JenkinsfileError(
                f"environment holds `KEY = value` lines, not {source_text(child)}"
            )
        entries.append({"key": child["assign"], "value": raw(child["value"])})
    return entries


def ast_agent(node: dict[str, Any]) -> dict[str, Any]:
    if node["args"] and "word" in node["args"][0]:
        return {"type": node["args"][0]["word"]}
    if node["block"]:
        inner = node["block"][0]
        return {"type": inner["call"], "argument": raw(inner["args"][0])}
    raise JenkinsfileError(f"agent {source_text(node)} is not understood")


def ast_stage(node: dict[str, Any]) -> dict[str, Any]:
    if node.get("call") != "stage" or len(node["args"]) != 1 or node["block"] is None:
        raise JenkinsfileError(f"`stages` holds `stage('name') {{ ... }}` blocks, not {node}")
    stage: dict[str, Any] = {"name": node["args"][0].get("lit")}
    for name, child in sections(node["block"]).items():
        if name == "steps":
            stage["branches"] = [ast_branch(child["block"] or [])]
        elif name == "when":
            stage["when"] = ast_when(child)
        elif name == "input":
            stage["input"] = {c["call"]: raw(c["args"][0]) for c in child["block"] or []}
        elif name == "options":
            stage["options"] = {"options": [method_call(c) for c in child["block"] or []]}
        elif name == "environment":
            stage["environment"] = ast_environment(child)
        elif name == "post":
            stage["post"] = ast_post(child)
        elif name == "agent":
            stage["agent"] = ast_agent(child)
        elif name in ("stages", "parallel"):
            stage[name] = [ast_stage(c) for c in child["block"] or []]
        else:
            # Kept as it is, so that the schema (additionalProperties: false) rejects it.
            stage[name] = source_text(child)
    return stage


def declarative_ast(tree: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON form Jenkins validates a declarative pipeline in."""
    pipeline: dict[str, Any] = {}
    for name, node in sections(pipeline_block(tree)).items():
        if name == "agent":
            pipeline["agent"] = ast_agent(node)
        elif name == "stages":
            pipeline["stages"] = [ast_stage(child) for child in node["block"] or []]
        elif name in ("options", "parameters", "triggers"):
            pipeline[name] = {name: [method_call(child) for child in node["block"] or []]}
        elif name == "environment":
            pipeline["environment"] = ast_environment(node)
        elif name == "post":
            pipeline["post"] = ast_post(node)
        else:
            pipeline[name] = source_text(node)
    return {"pipeline": pipeline}


def all_stages(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for stage in stages:
        found.append(stage)
        found += all_stages(stage.get("stages", []) + stage.get("parallel", []))
    return found


def _when_errors(stage: str, conditions: list[dict[str, Any]]) -> list[str]:
    errors = []
    for condition in conditions:
        name = condition["name"]
        if name in NESTED_WHEN:
            children = condition.get("children", [])
            if name == "not" and len(children) != 1:
                errors.append(f"stage {stage!r}: `not` takes exactly one condition")
            errors += _when_errors(stage, children)
        elif name not in WHEN_CONDITIONS:
            errors.append(f"stage {stage!r}: unknown when condition {name!r}")
    return errors


def semantic_errors(ast: dict[str, Any]) -> list[str]:
    """Jenkins' own rules beyond the schema (pipeline-model-definition's SYNTAX.md)."""
    pipeline = ast["pipeline"]
    errors = []
    if pipeline.get("agent", {}).get("type") not in AGENT_TYPES:
        errors.append(f"unknown agent type {pipeline.get('agent')}")
    for option in pipeline.get("options", {}).get("options", []):
        if option["name"] not in PIPELINE_OPTIONS:
            errors.append(f"unknown pipeline option {option['name']!r}")
    for parameter in pipeline.get("parameters", {}).get("parameters", []):
        if parameter["name"] not in PARAMETER_TYPES:
            errors.append(f"unknown parameter type {parameter['name']!r}")
    keys = [entry["key"] for entry in pipeline.get("environment", [])]
    if len(set(keys)) != len(keys):
        errors.append("an environment variable is set twice")
    stages = all_stages(pipeline.get("stages", []))
    names = [stage["name"] for stage in stages]
    for name in sorted({name for name in names if names.count(name) > 1}):
        errors.append(f"stage name {name!r} is used more than once")
    for stage in stages:
        name = stage["name"]
        bodies = [key for key in ("branches", "stages", "parallel", "matrix") if key in stage]
        if len(bodies) != 1:
            errors.append(f"stage {name!r} must have exactly one of steps, stages, parallel")
        for branch in stage.get("branches", []):
            if not branch["steps"]:
                errors.append(f"stage {name!r} has no steps")
        if "when" in stage:
            errors += _when_errors(name, stage["when"]["conditions"])
        if "input" in stage:
            unknown = set(stage["input"]) - INPUT_KEYS
            if "message" not in stage["input"] or unknown:
                errors.append(f"stage {name!r}: input needs a message and only {INPUT_KEYS}")
        for option in stage.get("options", {}).get("options", []):
            if option["name"] not in STAGE_OPTIONS:
                errors.append(f"stage {name!r}: unknown stage option {option['name']!r}")
    for post in [pipeline.get("post")] + [stage.get("post") for stage in stages]:
        for condition in (post or {}).get("conditions", []):
            if condition["condition"] not in POST_CONDITIONS:
                errors.append(f"unknown post condition {condition['condition']!r}")
    return errors + approval_errors(pipeline, stages) + credential_errors(stages)


def _steps_of(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for step in steps:
        found.append(step)
        found += _steps_of(step.get("children", []))
    return found


def _stage_steps(stage: dict[str, Any]) -> list[dict[str, Any]]:
    return _steps_of([step for branch in stage.get("branches", []) for step in branch["steps"]])


def approval_errors(pipeline: dict[str, Any], stages: list[dict[str, Any]]) -> list[str]:
    """Jenkins' documented order (a stage's options, then its input, then its agent and
    when) and what it implies for a stage that waits for a person."""
    errors = []
    waiting = [stage for stage in stages if "input" in stage]
    top_agent = pipeline.get("agent", {}).get("type")
    if waiting and top_agent != "none":
        errors.append(
            f"stages {[s['name'] for s in waiting]} wait for input under `agent {top_agent}`: "
            "the build holds an executor while nobody approves (use agent none)"
        )
    options = [option["name"] for option in pipeline.get("options", {}).get("options", [])]
    if waiting and "disableConcurrentBuilds" in options:
        errors.append("disableConcurrentBuilds with an input: every later build queues behind it")
    if waiting and "timeout" in options:
        errors.append("a pipeline timeout with an input: the approval wait counts against it")
    for stage in waiting:
        for option in stage.get("options", {}).get("options", []):
            if option["name"] in WAIT_SENSITIVE_OPTIONS:
                errors.append(
                    f"stage {stage['name']!r}: options {{ {option['name']} }} apply before "
                    "its input, so they cover the approval wait: wrap the steps instead"
                )
    if top_agent == "none":
        for stage in stages:
            needs_workspace = any(s["name"] in WORKSPACE_STEPS for s in _stage_steps(stage))
            if needs_workspace and "agent" not in stage:
                errors.append(f"stage {stage['name']!r} runs steps with no agent (agent none)")
        for condition in (pipeline.get("post") or {}).get("conditions", []):
            steps = _steps_of(condition["branch"]["steps"])
            if any(step["name"] in WORKSPACE_STEPS for step in steps):
                errors.append("pipeline post steps need a workspace, and agent none has none")
    return errors


def credential_errors(stages: list[dict[str, Any]]) -> list[str]:
    """Credentials are bound around the commands that use them, never around the install
    step, which runs code fetched from a package index."""
    errors = []
    for stage in stages:
        for step in _stage_steps(stage):
            if step["name"] != "withCredentials":
                continue
            for inner in _steps_of(step.get("children", [])):
                script = inner.get("arguments", {})
                text = script.get("value", "") if isinstance(script, dict) else ""
                if inner["name"] == "sh" and "$INSTALL_COMMAND" in str(text):
                    errors.append(
                        f"stage {stage['name']!r}: withCredentials wraps the install step"
                    )
    return errors


# --- running the stages ----------------------------------------------------------------


@dataclasses.dataclass
class StageRun:
    name: str
    # "passed", "failed", "skipped" (when was false or an earlier stage failed),
    # "waiting" (an input nobody approved)
    status: str
    commands: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class PipelineRun:
    stages: list[StageRun]
    archived: list[str]
    junit_files: list[str]

    def status(self, name: str) -> str:
        return next(stage.status for stage in self.stages if stage.name == name)


class _StepFailed(Exception):
    pass


def _literal(node: dict[str, Any]) -> Any:
    if "lit" not in node:
        raise JenkinsfileError(f"the harness only runs literal arguments, not {source_text(node)}")
    return node["lit"]


def _named(node: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in node["named"]}


def _matches(workspace: Path, includes: str) -> list[Path]:
    """Files matching Ant-style, comma-separated includes (`dir/**` is everything below)."""
    found: list[Path] = []
    for pattern in includes.split(","):
        pattern = pattern.strip()
        for path in sorted(workspace.rglob("*")):
            relative = path.relative_to(workspace).as_posix()
            if path.is_file() and fnmatch.fnmatchcase(relative, pattern.replace("**", "*")):
                found.append(path)
    return list(dict.fromkeys(found))


def _copy(files: list[Path], source_root: Path, target_root: Path) -> None:
    for path in files:
        target = target_root / path.relative_to(source_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


class Harness:
    def __init__(
        self,
        workspace: Path,
        scratch: Path,
        env: dict[str, str],
        credentials: dict[str, tuple[str, str]],
    ) -> None:
        self.workspace = workspace
        self.stash_root = scratch / "stash"
        self.archive_root = scratch / "archive"
        self.env = env
        self.credentials = credentials
        self.junit_files: list[str] = []

    def run_steps(
        self,
        steps: list[dict[str, Any]],
        env: dict[str, str],
        log: list[str],
        timeout: float | None,
    ) -> None:
        for step in steps:
            self.run_step(step, env, log, timeout)

    def run_step(
        self, step: dict[str, Any], env: dict[str, str], log: list[str], timeout: float | None
    ) -> None:
        name = step["call"]
        named = _named(step)
        if name == "sh":
            script = _literal(step["args"][0]) if step["args"] else _literal(named["script"])
            log.append(script)
            # Jenkins runs `sh` steps with -xe: trace, and stop at the first failing command.
            result = subprocess.run(
                [tool("sh"), "-xe", "-c", script],
                cwd=self.workspace,
                env=env,
                timeout=timeout,
                check=False,
            )
            if result.returncode != 0:
                raise _StepFailed(f"sh {script!r} exited {result.returncode}")
        elif name == "stash":
            files = _matches(self.workspace, _literal(named["includes"]))
            if not files:
                raise _StepFailed(f"stash {_literal(named['name'])}: no files included")
            target = self.stash_root / _literal(named["name"])
            shutil.rmtree(target, ignore_errors=True)
            _copy(files, self.workspace, target)
        elif name == "unstash":
            source = self.stash_root / _literal(step["args"][0])
            if not source.is_dir():
                raise _StepFailed(f"no such saved stash {source.name!r}")
            _copy([p for p in source.rglob("*") if p.is_file()], source, self.workspace)
        elif name == "archiveArtifacts":
            files = _matches(self.workspace, _literal(named["artifacts"]))
            if not files and not named.get("allowEmptyArchive", {}).get("lit"):
                raise _StepFailed(f"archiveArtifacts {_literal(named['artifacts'])}: no files")
            _copy(files, self.workspace, self.archive_root)
        elif name == "junit":
            files = _matches(self.workspace, _literal(named["testResults"]))
            if not files and not named.get("allowEmptyResults", {}).get("lit"):
                raise _StepFailed("junit: no test report files found")
            for path in files:
                root = ElementTree.parse(path).getroot()
                if root.tag not in ("testsuite", "testsuites"):
                    raise _StepFailed(f"junit: {path} is not a JUnit XML report")
                self.junit_files.append(path.relative_to(self.workspace).as_posix())
        elif name == "timeout":
            # The step form: the time limit starts when the step does (after an approval).
            self.run_steps(step["block"] or [], env, log, _timeout_of(step))
        elif name == "lock":
            # One build at a time runs here, so the lock is always free; what it must
            # not hold (an approval wait) is checked by approval_errors.
            self.run_steps(step["block"] or [], env, log, timeout)
        elif name == "withCredentials":
            bound = dict(env)
            for binding in step["args"][0]["list"]:
                bound.update(self.bind(binding))
            self.run_steps(step["block"] or [], bound, log, timeout)
        else:
            raise JenkinsfileError(f"the harness does not know the step {name!r}")

    def bind(self, binding: dict[str, Any]) -> dict[str, str]:
        arguments = {key: _literal(value) for key, value in binding["named"]}
        identifier = arguments["credentialsId"]
        if identifier not in self.credentials:
            raise _StepFailed(f"Could not find credentials entry with ID {identifier!r}")
        user, secret = self.credentials[identifier]
        if binding["call"] == "usernamePassword":
            return {arguments["usernameVariable"]: user, arguments["passwordVariable"]: secret}
        if binding["call"] == "gitUsernamePassword":
            # The Git plugin's binding sets these two and a GIT_ASKPASS that answers with them.
            return {"GIT_USERNAME": user, "GIT_PASSWORD": secret}
        raise JenkinsfileError(f"the harness does not know the binding {binding['call']!r}")


def evaluate_when(condition: dict[str, Any], env: dict[str, str]) -> bool:
    name = condition["call"]
    children = condition["block"] or []
    if name == "anyOf":
        return any(evaluate_when(child, env) for child in children)
    if name == "allOf":
        return all(evaluate_when(child, env) for child in children)
    if name == "not":
        return not evaluate_when(children[0], env)
    if name == "branch":
        # Jenkins: BRANCH_NAME matched as an Ant-style glob; never true in a tag build.
        branch = env.get("BRANCH_NAME", "")
        return (
            bool(branch)
            and not env.get("TAG_NAME")
            and fnmatch.fnmatchcase(branch, _literal(condition["args"][0]))
        )
    if name == "tag":
        return fnmatch.fnmatchcase(env.get("TAG_NAME", ""), _literal(condition["args"][0]))
    if name == "buildingTag":
        return bool(env.get("TAG_NAME"))
    raise JenkinsfileError(f"the harness does not evaluate the when condition {name!r}")


def _timeout_of(call: dict[str, Any]) -> float:
    named = _named(call)
    unit = _literal(named.get("unit", {"lit": "MINUTES"}))
    factor = {"SECONDS": 1, "MINUTES": 60, "HOURS": 3600}[unit]
    return float(_literal(named["time"])) * factor


def _timeout_seconds(options: dict[str, Any] | None) -> float | None:
    for option in (options or {}).get("block") or []:
        if option["call"] == "timeout":
            return _timeout_of(option)
    return None


def _may_approve(input_node: dict[str, Any], approver: str, groups: dict[str, set[str]]) -> bool:
    """Jenkins' `submitter`: comma-separated users or groups; absent, anyone may approve."""
    fields = {child["call"]: child for child in input_node["block"] or []}
    if "submitter" not in fields:
        return True
    allowed = {name.strip() for name in _literal(fields["submitter"]["args"][0]).split(",")}
    return approver in allowed or bool(groups.get(approver, set()) & allowed)


def _pipeline_environment(
    node: dict[str, Any] | None, params: dict[str, str], env: dict[str, str]
) -> dict[str, str]:
    values = {}
    for entry in (node or {}).get("block") or []:
        value = entry["value"]
        if "lit" in value:
            values[entry["assign"]] = str(value["lit"])
        elif "env_or" in value:
            # Groovy's elvis: an empty or missing variable takes the default.
            values[entry["assign"]] = env.get(value["env_or"]) or str(_literal(value["default"]))
        elif value.get("expr", "").startswith("$params."):
            # `"${params.X}"` reaches the harness as the GString text `$params.X`.
            values[entry["assign"]] = params[value["expr"].removeprefix("$params.")]
        else:
            raise JenkinsfileError(f"the harness cannot evaluate {source_text(value)}")
    return values


def _agent_label(node: dict[str, Any]) -> str:
    [entry] = node["block"] or [{"call": "?"}]
    if entry["call"] != "label":
        raise JenkinsfileError(f"the harness runs stage agents by label, not {source_text(node)}")
    return str(_literal(entry["args"][0]))


def _run_post(
    harness: Harness, post: dict[str, Any] | None, failed: bool, env: dict[str, str]
) -> None:
    for condition in (post or {}).get("block") or []:
        applies = {"always": True, "success": not failed, "failure": failed}
        if condition["call"] not in applies:
            raise JenkinsfileError(f"the harness does not run post {condition['call']!r}")
        if applies[condition["call"]]:
            harness.run_steps(condition["block"] or [], env, [], None)


def run_pipeline(
    jenkinsfile: Path,
    workspace: Path,
    scratch: Path,
    *,
    branch: str,
    tag: str = "",
    approve: set[str] = frozenset(),  # type: ignore[assignment]
    params: dict[str, str] | None = None,
    credentials: dict[str, tuple[str, str]] | None = None,
    extra_env: dict[str, str] | None = None,
    agents: dict[str, Path] | None = None,
    approver: str = "admin",
    groups: dict[str, set[str]] | None = None,
) -> PipelineRun:
    """Run the Jenkinsfile's stages in `workspace` as a Jenkins agent would.

    `agents` maps an agent label to that agent's workspace, a checkout of the same commit
    (what Jenkins' default checkout gives a stage with its own `agent`): only stashes and
    archives travel between workspaces. `approve` names the stages whose input `approver`
    answers; an input whose `submitter` does not name the approver (or one of the
    approver's `groups`) stays waiting, as Jenkins refuses the answer.
    """
    found = sections(pipeline_block(parse_tree(jenkinsfile)))
    defaults = {}
    for parameter in (found.get("parameters") or {}).get("block") or []:
        named = _named(parameter)
        defaults[_literal(named["name"])] = str(_literal(named.get("defaultValue", {"lit": ""})))
    # Jenkins passes only declared parameters to a pipeline (undeclared ones are dropped,
    # SECURITY-170); whoever starts a build can set those, and nothing else.
    parameters = {**defaults, **{k: v for k, v in (params or {}).items() if k in defaults}}
    env = {
        **tool_env(),
        **(extra_env or {}),
        "WORKSPACE": str(workspace),
        "BRANCH_NAME": "" if tag else branch,
        "TAG_NAME": tag,
        **parameters,
    }
    env.update(_pipeline_environment(found.get("environment"), parameters, env))
    harness = Harness(workspace, scratch, env, credentials or {})
    runs: list[StageRun] = []
    stopped = False
    for node in found["stages"]["block"] or []:
        name = _literal(node["args"][0])
        parts = sections(node["block"])
        if stopped:
            runs.append(StageRun(name, "skipped"))
            continue
        when = parts.get("when")
        conditions = [c for c in (when or {}).get("block") or [] if c["call"] not in WHEN_FLAGS]
        if conditions and not all(evaluate_when(condition, env) for condition in conditions):
            runs.append(StageRun(name, "skipped"))
            continue
        if "input" in parts and (
            name not in approve or not _may_approve(parts["input"], approver, groups or {})
        ):
            runs.append(StageRun(name, "waiting"))
            stopped = True
            continue
        stage_workspace = workspace
        if "agent" in parts and parts["agent"]["block"]:
            label = _agent_label(parts["agent"])
            if label not in (agents or {}):
                # Jenkins queues the stage until an agent with the label comes online.
                runs.append(StageRun(name, "waiting"))
                stopped = True
                continue
            stage_workspace = (agents or {})[label]
        stage_env = {**env, "WORKSPACE": str(stage_workspace)}
        stage_env.update(_pipeline_environment(parts.get("environment"), parameters, stage_env))
        run = StageRun(name, "passed")
        runs.append(run)
        harness.workspace = stage_workspace
        try:
            harness.run_steps(
                parts["steps"]["block"] or [],
                stage_env,
                run.commands,
                _timeout_seconds(parts.get("options")),
            )
        except (_StepFailed, subprocess.TimeoutExpired):
            run.status = "failed"
            stopped = True
        finally:
            _run_post(harness, parts.get("post"), run.status == "failed", dict(stage_env))
            harness.workspace = workspace
    failed = any(run.status == "failed" for run in runs)
    _run_post(harness, found.get("post"), failed, dict(env))
    archived = sorted(
        path.relative_to(harness.archive_root).as_posix()
        for path in harness.archive_root.rglob("*")
        if path.is_file()
    )
    return PipelineRun(runs, archived, harness.junit_files)

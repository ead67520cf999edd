"""The generated pipelines pass the linters their CI systems' users run.

The CI files' content depends on three answers only: `environments` (which promotion
stages exist), `python_version` and the package name; `ci_systems` decides which files
exist (test_pipeline_spec checks that). So every combination of environments and Python
version, with every CI system chosen, covers every CI file any answer set can produce.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from modelyard.paths import REPO_ROOT
from modelyard.pipeline import load_pipeline

import jenkinsfile
from ci_tools import tool, tool_env
from conftest import git, render
from matrix import ADVERSARIAL_TEXT

JENKINS_SCHEMA = REPO_ROOT.parent / "shared" / "schemas" / "jenkins" / "declarative-ast-schema.json"
ENVIRONMENT_CHOICES = [["dev", "staging", "prod"], ["dev", "staging"], ["dev", "prod"], ["dev"]]
CASES = [
    {"environments": environments, "python_version": version, "package_name": package}
    for environments in ENVIRONMENT_CHOICES
    for version, package in (("3.11", "fraud_detector"), ("3.12", "churn_core"))
]
# The longest names and the quotes, shell syntax and unicode that free text may hold.
CASES.append(
    {**ADVERSARIAL_TEXT, "environments": ["dev", "staging", "prod"], "python_version": "3.12"}
)


def run(*command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, env=tool_env(), timeout=300, check=False
    )


def assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"


@pytest.fixture(
    scope="module",
    params=CASES,
    ids=lambda case: (
        f"{'-'.join(case['environments'])}-py{case['python_version']}"
        + ("-adversarial" if case.get("package_name") == ADVERSARIAL_TEXT["package_name"] else "")
    ),
)
def repo(request, tmp_path_factory) -> Path:
    answers = {"ci_systems": ["github", "gitlab", "jenkins"], **request.param}
    repo = render(tmp_path_factory.mktemp("lint") / "repo", answers)
    # A checkout, as on a CI runner: actionlint reads .github/actionlint.yaml of the project
    # it finds by its .git folder.
    git("init", "-q", cwd=repo)
    return repo


def workflows(repo: Path) -> list[str]:
    return sorted(str(path) for path in (repo / ".github" / "workflows").glob("*.yml"))


def test_actionlint(repo):
    assert_clean(run(tool("actionlint"), "-no-color", *workflows(repo), cwd=repo))


def test_a_pull_request_runs_the_ci_workflow_once(repo):
    """On pushes only to the default branch: a branch with a pull request runs it once."""
    document = yaml.safe_load((repo / ".github" / "workflows" / "ci.yml").read_text())
    # PyYAML reads the key `on` as True.
    triggers = document[True]
    branch = yaml.safe_load((repo / ".copier-answers.yml").read_text()).get("default_branch")
    assert triggers["push"] == {"branches": [branch]}
    assert "pull_request" in triggers and set(triggers) == {"push", "pull_request"}


def test_credentials_reach_only_the_step_that_uses_them_and_no_checkout_keeps_one(repo):
    """The install step runs third-party code: no token may be in its environment, in the
    job's, or in .git/config (checkout's persist-credentials)."""
    for path in sorted((repo / ".github" / "workflows").glob("*.yml")):
        jobs = yaml.safe_load(path.read_text())["jobs"]
        for name, job in jobs.items():
            job_env = " ".join(map(str, job.get("env", {}).values()))
            assert "secrets." not in job_env, (path.name, name)
            for step in job["steps"]:
                step_env = step.get("env", {})
                if step.get("uses", "").startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, (path.name, name)
                if step.get("id") == "push":
                    assert step_env["REGISTRY_PASSWORD"] == (
                        "${{ secrets.REGISTRY_PASSWORD || secrets.GITHUB_TOKEN }}"
                    )
                    # GitHub's token goes to ghcr.io only; push-image enforces REGISTRY_HOST.
                    assert step_env["REGISTRY_HOST"].endswith("|| 'ghcr.io' }}")
                elif step.get("id") == name and "gitops" in step["run"]:
                    # The GitOps push: the config repository and its token, when set.
                    assert step_env == {
                        "GITOPS_REPO_URL": "${{ vars.GITOPS_REPO_URL }}",
                        "GITOPS_TOKEN": "${{ secrets.GITOPS_TOKEN || secrets.GITHUB_TOKEN }}",
                    }
                    assert job["permissions"]["contents"] == "write"
                elif step.get("id") == name and " data pull " in step["run"]:
                    # train, evaluate, export: the DVC remote's S3 keys, nothing else, and no
                    # token scope beyond reading the repository.
                    assert step_env == {
                        "AWS_ACCESS_KEY_ID": "${{ secrets.AWS_ACCESS_KEY_ID }}",
                        "AWS_SECRET_ACCESS_KEY": "${{ secrets.AWS_SECRET_ACCESS_KEY }}",
                    }
                    assert job.get("permissions", {}) in ({}, {"contents": "read"})
                else:
                    assert not any("secrets." in str(v) for v in step_env.values()), (name, step)
    gitlab = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())
    assert gitlab["push"]["variables"]["REGISTRY_HOST"] == "$CI_REGISTRY"


def test_zizmor_has_no_findings(repo):
    # --offline: no GitHub API; exit 14 means findings, 0 none.
    assert_clean(run(tool("zizmor"), "--offline", "--no-progress", ".github/workflows", cwd=repo))


def test_github_workflow_schema(repo):
    check = tool("check-jsonschema")
    assert_clean(
        run(check, "--builtin-schema", "vendor.github-workflows", *workflows(repo), cwd=repo)
    )


def test_gitlab_ci_schema(repo):
    check = tool("check-jsonschema")
    assert_clean(run(check, "--builtin-schema", "vendor.gitlab-ci", ".gitlab-ci.yml", cwd=repo))


def test_yamllint_strict(repo):
    # -s: warnings fail too; the generated repo's own configuration.
    files = [*workflows(repo), ".gitlab-ci.yml", *map(str, repo.glob(".github/*.yaml"))]
    assert_clean(run(tool("yamllint"), "-s", "-c", ".yamllint.yaml", *files, cwd=repo))


def jenkins_ast(jenkinsfile_path: Path) -> dict[str, Any]:
    return jenkinsfile.declarative_ast(jenkinsfile.parse_tree(jenkinsfile_path))


def schema_errors(ast: dict[str, Any]) -> list[str]:
    schema = json.loads(JENKINS_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    return [f"{list(error.path)}: {error.message}" for error in validator.iter_errors(ast)]


def test_jenkinsfile_parses_and_validates_as_jenkins_would(repo):
    ast = jenkins_ast(repo / "Jenkinsfile")
    assert schema_errors(ast) == []
    assert jenkinsfile.semantic_errors(ast) == []
    names = [stage["name"] for stage in ast["pipeline"]["stages"]]
    assert names[:5] == ["lint", "train", "evaluate", "export", "verify"]


def test_jenkins_builds_take_no_parameter_that_a_stage_would_run(repo):
    """Whoever may start a build must not choose a command that runs beside credentials."""
    found = jenkinsfile.sections(
        jenkinsfile.pipeline_block(jenkinsfile.parse_tree(repo / "Jenkinsfile"))
    )
    assert "parameters" not in found
    [install] = [e for e in found["environment"]["block"] if e["assign"] == "INSTALL_COMMAND"]
    # An administrator's agent or global variable, else the default.
    assert install["value"]["env_or"] == "INSTALL_COMMAND"
    assert "uv pip install" in install["value"]["default"]["lit"]


PARAMETER_JENKINSFILE = """
pipeline {
    agent any
    parameters {
        string(name: 'GREETING', defaultValue: 'hello')
    }
    environment {
        INSTALL_COMMAND = "${env.INSTALL_COMMAND ?: 'echo default > used.txt'}"
    }
    stages {
        stage('a') {
            steps {
                sh 'sh -c "$INSTALL_COMMAND" && echo "$GREETING" > greeting.txt'
            }
        }
    }
}
"""


def test_the_harness_passes_declared_parameters_only_as_jenkins_does(tmp_path):
    path = tmp_path / "Jenkinsfile"
    path.write_text(PARAMETER_JENKINSFILE, encoding="utf-8")
    marker = tmp_path / "ran"
    run = jenkinsfile.run_pipeline(
        path, tmp_path, tmp_path / "scratch", branch="main",
        params={"GREETING": "hi", "INSTALL_COMMAND": f"touch {marker}"},
    )  # fmt: skip
    assert [stage.status for stage in run.stages] == ["passed"]
    assert not marker.exists()
    assert (tmp_path / "used.txt").read_text().strip() == "default"
    assert (tmp_path / "greeting.txt").read_text().strip() == "hi"
    # The agent's own variable is the override.
    jenkinsfile.run_pipeline(
        path, tmp_path, tmp_path / "again", branch="main",
        extra_env={"INSTALL_COMMAND": "echo agent > used.txt"},
    )  # fmt: skip
    assert (tmp_path / "used.txt").read_text().strip() == "agent"


# --- the checks can fail ---------------------------------------------------------------

BROKEN_JENKINSFILE = """
pipeline {
    agent any
    stages {
        stage('a') {
            stepz {
                sh 'true'
            }
        }
    }
}
"""

SEMANTICALLY_BROKEN_JENKINSFILE = """
pipeline {
    agent any
    stages {
        stage('a') {
            when { branchh 'main' }
            steps { sh 'true' }
        }
        stage('a') {
            steps { sh 'true' }
        }
    }
    post { sometimes { sh 'true' } }
}
"""


def test_the_jenkins_schema_rejects_an_unknown_section(tmp_path):
    path = tmp_path / "Jenkinsfile"
    path.write_text(BROKEN_JENKINSFILE, encoding="utf-8")
    assert any("stepz" in error for error in schema_errors(jenkins_ast(path)))


def test_jenkins_rules_catch_duplicate_stages_and_unknown_conditions(tmp_path):
    path = tmp_path / "Jenkinsfile"
    path.write_text(SEMANTICALLY_BROKEN_JENKINSFILE, encoding="utf-8")
    errors = jenkinsfile.semantic_errors(jenkins_ast(path))
    assert "stage name 'a' is used more than once" in errors
    assert "stage 'a': unknown when condition 'branchh'" in errors
    assert "unknown post condition 'sometimes'" in errors


AGENT_JENKINSFILE = """
pipeline {
    agent any
    environment {
        WHERE = 'controller'
    }
    stages {
        stage('on-gpu') {
            agent {
                label 'gpu'
            }
            environment {
                WHERE = 'gpu'
            }
            steps {
                sh 'echo "$WHERE" > made.txt'
                stash name: 'made', includes: 'made.txt'
            }
        }
        stage('after') {
            steps {
                unstash 'made'
                sh 'cp made.txt seen.txt && echo "$WHERE" >> seen.txt'
            }
        }
    }
}
"""


def test_the_harness_runs_a_stage_agent_in_its_own_workspace_or_waits_for_one(tmp_path):
    path = tmp_path / "Jenkinsfile"
    path.write_text(AGENT_JENKINSFILE, encoding="utf-8")
    main, gpu = tmp_path / "main", tmp_path / "gpu"
    main.mkdir()
    gpu.mkdir()
    run = jenkinsfile.run_pipeline(path, main, tmp_path / "a", branch="main", agents={"gpu": gpu})
    assert [stage.status for stage in run.stages] == ["passed", "passed"]
    assert (gpu / "made.txt").read_text().split() == ["gpu"]
    assert (main / "seen.txt").read_text().split() == ["gpu", "controller"]
    # No agent carries the label: Jenkins queues the stage, and nothing after it runs.
    waiting = jenkinsfile.run_pipeline(path, main, tmp_path / "b", branch="main")
    assert [stage.status for stage in waiting.stages] == ["waiting", "skipped"]


# The Jenkinsfile modelyard emitted before approvals were enforced: one executor for the
# whole build, the stage timeout around the input, concurrency disabled, credentials
# around the install step.
HOLDING_JENKINSFILE = """
pipeline {
    agent any
    options {
        timeout(time: 120, unit: 'MINUTES')
        disableConcurrentBuilds()
    }
    stages {
        stage('promote-prod') {
            when {
                beforeInput true
                branch 'main'
            }
            input {
                message 'Promote to prod?'
            }
            options {
                timeout(time: 10, unit: 'MINUTES')
                lock('gitops-prod')
            }
            steps {
                withCredentials([string(credentialsId: 'x', variable: 'TOKEN')]) {
                    sh 'sh -c "$INSTALL_COMMAND"'
                }
            }
        }
    }
    post { always { junit 'x.xml' } }
}
"""


def test_jenkins_rules_catch_an_approval_that_holds_an_executor_or_a_timeout(tmp_path):
    path = tmp_path / "Jenkinsfile"
    path.write_text(HOLDING_JENKINSFILE, encoding="utf-8")
    errors = jenkinsfile.semantic_errors(jenkins_ast(path))
    assert any("holds an executor while nobody approves" in error for error in errors)
    assert any("every later build queues behind it" in error for error in errors)
    assert any("the approval wait counts against it" in error for error in errors)
    assert sum("cover the approval wait" in error for error in errors) == 2  # timeout, lock
    assert "stage 'promote-prod': withCredentials wraps the install step" in errors
    # With agent none, the same file's stage and post would have no workspace.
    without_agent = HOLDING_JENKINSFILE.replace("    agent any", "    agent none", 1)
    path.write_text(without_agent, encoding="utf-8")
    errors = jenkinsfile.semantic_errors(jenkins_ast(path))
    assert "stage 'promote-prod' runs steps with no agent (agent none)" in errors
    assert "pipeline post steps need a workspace, and agent none has none" in errors


def test_the_approval_names_its_approvers_and_starts_the_time_limit_after_it(repo):
    """From the spec's `approval: true`: only the approvers may answer, and the stage's
    time limit and lock wrap its steps, so they start once somebody approved."""
    answers = yaml.safe_load((repo / ".copier-answers.yml").read_text())
    pipeline = load_pipeline().for_answers(answers)
    found = jenkinsfile.sections(
        jenkinsfile.pipeline_block(jenkinsfile.parse_tree(repo / "Jenkinsfile"))
    )
    for node in found["stages"]["block"]:
        name = node["args"][0]["lit"]
        parts = jenkinsfile.sections(node["block"])
        if "input" not in parts:
            continue
        stage = pipeline.stage(name)
        environment = pipeline.environment(stage.environment)
        fields = {c["call"]: c["args"][0]["lit"] for c in parts["input"]["block"]}
        assert fields.get("submitter") == environment.approvers, name
        assert "options" not in parts, name
        [lock] = parts["steps"]["block"]
        assert (lock["call"], lock["args"][0]["lit"]) == ("lock", stage.concurrency)
        [timeout] = lock["block"]
        assert timeout["call"] == "timeout"


def test_a_groovy_syntax_error_is_reported(tmp_path):
    path = tmp_path / "Jenkinsfile"
    path.write_text("pipeline { stages { stage('a') { steps { sh 'x' }\n", encoding="utf-8")
    with pytest.raises(jenkinsfile.JenkinsfileError, match="groovy cannot parse"):
        jenkinsfile.parse_tree(path)


def test_actionlint_and_zizmor_do_flag_a_bad_workflow(tmp_path):
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    (folder / "bad.yml").write_text(
        "on: push\n"
        "jobs:\n"
        "  a:\n"
        "    runs-on: ubuntu-24.04\n"
        "    needs: [missing]\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "      - run: echo ${{ github.event.head_commit.message }}\n",
        encoding="utf-8",
    )
    assert (
        run(tool("actionlint"), "-no-color", str(folder / "bad.yml"), cwd=tmp_path).returncode == 1
    )
    zizmor = run(tool("zizmor"), "--offline", "--no-progress", ".github/workflows", cwd=tmp_path)
    assert zizmor.returncode == 14, zizmor.stdout + zizmor.stderr

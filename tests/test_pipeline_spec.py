"""ci/pipeline.yml: the loader's errors, the emitters' helpers, `render-ci --check`, and
parity: the three dialects, rendered and parsed back, have the spec's stage graph,
commands and artifact flow for every answer that changes them."""

from __future__ import annotations

import ast
import copy
import shutil
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from modelyard import ci_document, ci_jinja, emit_github, emit_gitlab, emit_jenkins, render_ci
from modelyard.cli import main as modelyard_main
from modelyard.paths import TEMPLATE_DIR
from modelyard.pipeline import PIPELINE_SPEC, Pipeline, PipelineError, load_pipeline, parse_pipeline

import ci_readback
from conftest import render

ALL_ENVIRONMENTS = ["dev", "staging", "prod"]
ALL_CI_SYSTEMS = ["github", "gitlab", "jenkins"]


def spec_document() -> dict[str, Any]:
    return yaml.safe_load(PIPELINE_SPEC.read_text(encoding="utf-8"))


def stage_entry(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(stage for stage in document["stages"] if stage["name"] == name)


# --- the loader -----------------------------------------------------------------------


def test_the_spec_loads_in_the_documented_order():
    pipeline = load_pipeline()
    assert [stage.name for stage in pipeline.stages] == [
        "lint",
        "train",
        "evaluate",
        "export",
        "verify",
        "build",
        "push",
        "deploy-dev",
        "promote-staging",
        "promote-prod",
    ]
    assert pipeline.stage("deploy-dev").environment == "dev"
    assert pipeline.stage("promote-prod").manual
    flow = {(f.producer, f.consumer, f.path) for f in pipeline.artifact_flow()}
    assert ("export", "verify", "artifacts/model.onnx") in flow
    assert ("push", "deploy-dev", "artifacts/image.env") in flow


def _mutate(change) -> dict[str, Any]:
    document = copy.deepcopy(spec_document())
    change(document)
    return document


def _rename_first_need(document):
    stage_entry(document, "train")["needs"] = ["lnt"]


def _cycle(document):
    stage_entry(document, "lint")["needs"] = ["verify"]


def _never_produced(document):
    stage_entry(document, "verify")["inputs"].append("artifacts/missing.bin")


def _not_upstream(document):
    stage_entry(document, "lint")["inputs"] = ["artifacts/model.pt"]


def _duplicate(document):
    document["stages"].append(copy.deepcopy(stage_entry(document, "export")))


def _typo_key(document):
    stage_entry(document, "evaluate")["need"] = ["train"]


def _unknown_placeholder(document):
    stage_entry(document, "train")["run"] = [".venv/bin/python -m {pkg} train"]


def _bad_when(document):
    stage_entry(document, "build")["when"] = "nightly"


def _dotenv_not_direct(document):
    stage_entry(document, "promote-staging")["inputs"] = ["artifacts/image.env"]


def _automatic_after_manual(document):
    stage_entry(document, "promote-prod")["when"] = "default-branch"


def _release_needs_default_branch(document):
    stage_entry(document, "push")["needs"] = ["deploy-dev"]
    stage_entry(document, "deploy-dev")["needs"] = ["build"]
    stage_entry(document, "deploy-dev")["inputs"] = []


def _optional_with_two_needs(document):
    stage_entry(document, "promote-staging")["needs"] = ["deploy-dev", "verify"]


def _produced_twice(document):
    stage_entry(document, "verify")["outputs"] = ["artifacts/model.onnx"]


def _promotion_shares_the_deploy_lock(document):
    stage_entry(document, "promote-staging")["concurrency"] = "gitops-dev"


def _unknown_runner_class(document):
    stage_entry(document, "train")["runner"] = "tpu"


def _runner_not_defined(document):
    document["runners"] = {}


def _bad_torch_backend(document):
    document["runners"]["gpu"]["torch_backend"] = "cuda-13"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            _promotion_shares_the_deploy_lock,
            "stage 'promote-staging' is manual and shares concurrency 'gitops-dev' with "
            "automatic stage 'deploy-dev'",
        ),
        (_unknown_runner_class, "stage 'train': unknown runner 'tpu'; use one of gpu"),
        (_runner_not_defined, "stage 'train' asks for runner 'gpu', which runners does not"),
        (_bad_torch_backend, "runners.gpu: 'cuda-13' is not a uv torch backend"),
        (_rename_first_need, "stage 'train' needs 'lnt', which is not a stage"),
        (_cycle, "stage 'lint' is in a cycle of needs: lint -> verify -> export"),
        (_never_produced, "stage 'verify' consumes artifacts/missing.bin, which no stage produces"),
        (
            _not_upstream,
            "stage 'lint' consumes artifacts/model.pt from stage 'train', which is "
            "not among its needs",
        ),
        (_duplicate, "stage 'export' is defined twice"),
        (_typo_key, "stage 'evaluate' has unknown key 'need'"),
        (_unknown_placeholder, "stage 'train': unknown placeholder {pkg}"),
        (_bad_when, "stage 'build': when is 'nightly'"),
        (
            _dotenv_not_direct,
            "stage 'promote-staging' reads the dotenv artifacts/image.env of "
            "stage 'push', so it must need that stage directly",
        ),
        (_automatic_after_manual, "stage 'promote-prod' runs automatically but needs manual"),
        (
            _release_needs_default_branch,
            "stage 'push' runs on tag events, where stage "
            "'deploy-dev' (when: default-branch) does not run",
        ),
        (
            _optional_with_two_needs,
            "stage 'promote-staging' deploys to optional environment "
            "'staging' and so must need exactly one stage",
        ),
        (
            _produced_twice,
            "stage 'verify' produces artifacts/model.onnx, which stage 'export' already produces",
        ),
    ],
)
def test_a_bad_spec_is_one_clear_error_naming_the_stage(change, message):
    with pytest.raises(PipelineError) as error:
        parse_pipeline(_mutate(change))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_invalid_yaml_is_one_line(tmp_path):
    broken = tmp_path / "pipeline.yml"
    broken.write_text("stages: [\n", encoding="utf-8")
    with pytest.raises(PipelineError) as error:
        load_pipeline(broken)
    assert "is not valid YAML" in str(error.value)
    assert "\n" not in str(error.value)


def test_dropped_environments_reconnect_their_dependants():
    pipeline = load_pipeline()
    resolved = pipeline.for_answers({"package_name": "churn_core", "environments": ["dev", "prod"]})
    names = [stage.name for stage in resolved.stages]
    assert "promote-staging" not in names
    prod = resolved.stage("promote-prod")
    assert prod.needs == ("deploy-dev",)
    assert prod.run == (
        ".venv/bin/python -m churn_core gitops promote --from dev --to prod --push",
    )
    only_dev = pipeline.for_answers({"package_name": "x", "environments": ["dev"]})
    assert not any(stage.name.startswith("promote") for stage in only_dev.stages)


# --- emitter helpers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paths", "root"),
    [
        (("artifacts/model.pt",), "artifacts"),
        (("artifacts/plots/",), "artifacts/plots"),
        (("artifacts/model.pt", "artifacts/plots/"), "artifacts"),
        (("artifacts/a/x.json", "artifacts/b/y.json"), "artifacts"),
        (("reports/x.xml", "artifacts/y.json"), "."),
    ],
)
def test_upload_root_matches_upload_artifacts_least_common_ancestor(paths, root):
    assert emit_github.upload_root(paths) == root


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("python -m x train", "python -m x train"),
        ('sh -c "$INSTALL_COMMAND"', 'sh -c "$INSTALL_COMMAND"'),
        ("--flag: value", "'--flag: value'"),
        ("run # not a comment", "'run # not a comment'"),
        ("{{ package_name }} train", "{{ package_name }} train"),
        ("it's {{ ['a', 'b'] | last }}: x", "'it''s {{ ['a', 'b'] | last }}: x'"),
    ],
)
def test_the_serialiser_quotes_only_what_yaml_would_misread(text, expected):
    """Quoting is decided on the text with each Jinja expression standing for a word; the
    quotes inside an expression are Jinja's, never doubled."""
    written = ci_document.yaml_text({"key": text})
    assert written == f"key: {expected}\n"
    rendered = jinja2.Template(written).render(package_name="pkg")
    assert yaml.safe_load(rendered) == {"key": jinja2.Template(text).render(package_name="pkg")}


@pytest.mark.parametrize("chosen", [True, False])
def test_a_choice_leaves_no_trace_when_its_test_is_false(chosen):
    document = {
        "jobs": ci_document.Spaced(
            {
                "a": {"x": 1},
                "b": ci_document.Choice("on", {"x": 2}, otherwise={"y": 3}),
                "c": ci_document.Choice("on", {"x": 4}),
            }
        ),
        "list": ["a", ci_document.Choice("on", "b")],
    }
    rendered = jinja2.Template(ci_document.yaml_text(document)).render(on=chosen)
    expected_jobs = {"a": {"x": 1}, "b": {"x": 2} if chosen else {"y": 3}}
    if chosen:
        expected_jobs["c"] = {"x": 4}
    assert yaml.safe_load(rendered) == {"jobs": expected_jobs, "list": ["a", "b"][: 1 + chosen]}
    assert "\n\n\n" not in rendered and not rendered.endswith("\n\n")


def test_github_expressions_survive_jinja_and_answers_do_not():
    document = {"run": "echo ${{ github.sha }} {{ package_name }}"}
    rendered = jinja2.Template(ci_document.yaml_text(document, raw=True)).render(package_name="pkg")
    assert yaml.safe_load(rendered) == {"run": "echo ${{ github.sha }} pkg"}


def test_groovy_strings_escape_quotes_but_not_jinja():
    assert emit_jenkins.groovy_string("it's") == "'it\\'s'"
    assert emit_jenkins.groovy_string("{{ ['a'] | last }}") == "'{{ ['a'] | last }}'"


def test_a_need_on_an_optional_stage_falls_back_to_its_own_need():
    pipeline = load_pipeline()
    assert ci_jinja.need(pipeline, "deploy-dev") == "deploy-dev"
    assert ci_jinja.need(pipeline, "promote-staging") == (
        "{% if 'staging' in environments %}promote-staging{% else %}deploy-dev{% endif %}"
    )


# --- render-ci ------------------------------------------------------------------------


def test_render_ci_check_passes_on_the_committed_template(capsys):
    assert modelyard_main(["render-ci", "--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_render_ci_check_fails_when_an_emitted_file_was_edited(tmp_path, capsys):
    template = tmp_path / "template"
    for relative in render_ci.TARGETS:
        target = template / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(TEMPLATE_DIR / relative, target)
    gitlab = template / "{% if 'gitlab' in ci_systems %}.gitlab-ci.yml{% endif %}.jinja"
    gitlab.write_text(gitlab.read_text(encoding="utf-8") + "# a hand edit\n", encoding="utf-8")
    with pytest.raises(render_ci.StaleCIError, match="gitlab-ci.yml"):
        render_ci.render_ci(check=True, template_dir=template)
    assert render_ci.render_ci(template_dir=template) == [gitlab.relative_to(template).as_posix()]
    assert render_ci.render_ci(check=True, template_dir=template) == []


def test_every_emitted_file_is_headed_by_its_source_and_command():
    for relative in render_ci.TARGETS:
        first = (TEMPLATE_DIR / relative).read_text(encoding="utf-8").splitlines()[0]
        assert "ci/pipeline.yml" in first and "`modelyard render-ci`" in first, relative


# --- parity -------------------------------------------------------------------------

PARITY_CASES = [
    {"environments": ALL_ENVIRONMENTS},
    {"environments": ["dev", "prod"], "python_version": "3.12", "package_name": "churn_core"},
    {"environments": ["dev", "staging"], "gpu_runner_label": "gpu-a100"},
    {"environments": ["dev"], "package_name": "churn_core"},
]


@pytest.fixture(
    scope="module", params=PARITY_CASES, ids=lambda case: "-".join(case["environments"])
)
def rendered(request, tmp_path_factory) -> tuple[dict[str, Any], Path]:
    answers = {"ci_systems": ALL_CI_SYSTEMS, **request.param}
    return answers, render(tmp_path_factory.mktemp("parity") / "repo", answers)


def expected(answers: dict[str, Any]) -> Pipeline:
    return load_pipeline().for_answers({"package_name": "fraud_detector", **answers})


def assert_same_flow(jobs: list[ci_readback.Job], pipeline: Pipeline, dialect: str) -> None:
    for job in jobs:
        stage = pipeline.stage(job.name)
        assert job.commands == list(stage.run), (dialect, job.name)
        assert job.downloads == {p.name for p in pipeline.producers(stage)}, (dialect, job.name)
        assert job.keeps == [*stage.outputs, *stage.reports] or (
            # Jenkins stashes artifacts; its test reports are read by `junit` in post.
            dialect == "jenkins" and job.keeps == list(stage.outputs)
        ), (dialect, job.name)
        # A stage asking for the GPU runner runs there, with CUDA torch, only when the
        # answers name its label; every other job installs the CPU wheel.
        assert job.runner == stage.runner_label, (dialect, job.name)
        assert job.torch_backend == pipeline.torch_backend(stage), (dialect, job.name)
        # The image and GitOps jobs install no torch: only what their commands import.
        assert job.install_extras == ",".join(pipeline.install_extras(stage)), (dialect, job.name)


def test_gitlab_has_the_spec_graph_commands_and_artifact_flow(rendered):
    check_gitlab(*rendered)


def check_gitlab(answers: dict[str, Any], repo: Path) -> None:
    pipeline = expected(answers)
    jobs = ci_readback.read_gitlab(repo)
    assert [job.name for job in jobs] == [stage.name for stage in pipeline.stages]
    for job in jobs:
        stage = pipeline.stage(job.name)
        producers = {p.name for p in pipeline.producers(stage)}
        # GitLab downloads artifacts only from jobs in `needs`, so producers join the needs.
        assert job.needs == set(stage.needs) | producers, job.name
        assert job.when == stage.when, job.name
        assert job.environment == stage.environment, job.name
        # The stage's tools are installed into the job's image before anything else.
        expected_setup = emit_gitlab.tool_setup(stage.tools) if stage.tools else []
        assert list(job.setup) == expected_setup, job.name
    assert_same_flow(jobs, pipeline, "gitlab")


def test_github_has_the_spec_graph_commands_and_artifact_flow(rendered):
    check_github(*rendered)


def check_github(answers: dict[str, Any], repo: Path) -> None:
    pipeline = expected(answers)
    workflows = ci_readback.read_github(repo)
    automatic = [stage for stage in pipeline.stages if not stage.manual]
    manual = [stage for stage in pipeline.stages if stage.manual]
    assert [job.name for job in workflows["ci"]] == [stage.name for stage in automatic]
    tagged = [stage.name for stage in automatic if stage.when in ("always", "release")]
    assert [job.name for job in workflows["release"]] == tagged
    assert all(job.when == "always" for job in workflows["release"])  # the trigger is the tag
    if manual:
        assert [job.name for job in workflows["promote"]] == [stage.name for stage in manual]
        # Each promotion is dispatched on its own: order comes from the environments' order.
        assert all(job.needs == set() for job in workflows["promote"])
    else:
        assert "promote" not in workflows
    for job in workflows["ci"] + workflows["release"]:
        stage = pipeline.stage(job.name)
        assert job.needs == set(stage.needs), job.name
    for job in workflows["ci"]:
        stage = pipeline.stage(job.name)
        # Release stages run on the default branch here and on tags in release.yml.
        wanted = "default-branch" if stage.when == "release" else stage.when
        assert job.when == wanted, job.name
        assert job.environment == stage.environment, job.name
    for job in workflows.get("promote", []):
        assert job.when == "manual"
        assert job.environment == pipeline.stage(job.name).environment
    for workflow in workflows.values():
        assert_same_flow(workflow, pipeline, "github")
    # GitHub keeps one pending job per concurrency group and cancels it for a newer one: a
    # promotion awaiting approval must not share a group with the automatic deploy.
    groups = {}
    for path in sorted((repo / ".github" / "workflows").glob("*.yml")):
        for name, job in yaml.safe_load(path.read_text(encoding="utf-8"))["jobs"].items():
            if "concurrency" in job:
                groups[name] = job["concurrency"]["group"]
    automatic = {
        groups[stage.name] for stage in pipeline.stages if not stage.manual and stage.name in groups
    }
    for stage in manual:
        assert groups[stage.name] not in automatic, (stage.name, groups)


def test_jenkins_has_the_spec_order_commands_and_artifact_flow(rendered):
    check_jenkins(*rendered)


def check_jenkins(answers: dict[str, Any], repo: Path) -> None:
    pipeline = expected(answers)
    branch = answers.get("default_branch", "main")
    jobs = ci_readback.read_jenkins(repo, branch, pipeline.release_tag_pattern)
    # Declarative stages run one after another, so the order carries the graph: the spec's
    # order is a topological order of its needs.
    assert [job.name for job in jobs] == [stage.name for stage in pipeline.stages]
    for job in jobs:
        assert job.when == pipeline.stage(job.name).when, job.name
    assert_same_flow(jobs, pipeline, "jenkins")


TAMPERINGS = [
    # GitLab: export no longer downloads train's checkpoint.
    (
        check_gitlab,
        ".gitlab-ci.yml",
        "    - job: evaluate\n      artifacts: true\n    - job: train\n      artifacts: true\n",
        "    - job: evaluate\n      artifacts: true\n",
    ),
    # GitHub: verify runs a different command.
    (check_github, ".github/workflows/ci.yml", "fraud_detector verify", "fraud_detector export"),
    # Jenkins: deploy-dev no longer unstashes what push wrote.
    (check_jenkins, "Jenkinsfile", "unstash 'push'\n", ""),
]


@pytest.mark.parametrize(("check", "relative", "old", "new"), TAMPERINGS)
def test_parity_catches_a_pipeline_that_differs_from_the_spec(tmp_path, check, relative, old, new):
    answers = {"ci_systems": ALL_CI_SYSTEMS, "environments": ALL_ENVIRONMENTS}
    repo = render(tmp_path / "repo", answers)
    check(answers, repo)
    path = repo / relative
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(AssertionError):
        check(answers, repo)


@pytest.mark.parametrize(
    "systems", [["github"], ["gitlab"], ["jenkins"], ["github", "jenkins"], ["gitlab", "jenkins"]]
)
def test_only_the_chosen_ci_systems_are_rendered(tmp_path, systems):
    repo = render(tmp_path / "repo", {"ci_systems": systems, "environments": ["dev"]})
    present = {
        "github": (repo / ".github").exists(),
        "gitlab": (repo / ".gitlab-ci.yml").exists(),
        "jenkins": (repo / "Jenkinsfile").exists(),
    }
    assert present == {system: system in systems for system in ALL_CI_SYSTEMS}
    if "github" in systems:
        names = sorted(path.name for path in (repo / ".github" / "workflows").iterdir())
        assert names == ["ci.yml", "release.yml"]  # one environment: nothing to promote


def _artifact_names() -> tuple[str, dict[str, tuple[str, ...]]]:
    """ARTIFACTS_DIR and STAGE_OUTPUTS of the generated repository's artifacts.py, read
    without importing it (its relative imports need the rendered package)."""
    source = TEMPLATE_DIR / "src" / "{{package_name}}" / "artifacts.py"
    constants: dict[str, object] = {}
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            if isinstance(target, ast.Name):
                expression = ast.Expression(body=node.value)
                try:
                    constants[target.id] = eval(
                        compile(expression, str(source), "eval"), {}, dict(constants)
                    )  # noqa: S307
                except NameError:
                    continue
    return str(constants["ARTIFACTS_DIR"]), constants["STAGE_OUTPUTS"]  # type: ignore[return-value]


def test_the_spec_passes_on_exactly_what_each_stage_writes():
    """One source for artifact names: the generated code's artifacts.py. The spec's
    outputs (and job summary) for each stage are those files, under ARTIFACTS_DIR."""
    folder, stage_outputs = _artifact_names()
    pipeline = load_pipeline()
    for name, files in stage_outputs.items():
        stage = pipeline.stage(name)
        declared = {path.rstrip("/") for path in (*stage.outputs, *filter(None, [stage.summary]))}
        assert declared == {f"{folder}/{file}" for file in files}, name

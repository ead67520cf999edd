"""Bad answers are refused with the validator's message and leave nothing behind."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modelyard.new import GenerationError, parse_data
from modelyard.paths import COPIER_YML, TEMPLATE_DIR

from conftest import render

BAD_ANSWERS = [
    ({"project_name": ""}, "project_name must not be empty"),
    ({"project_name": "   "}, "project_name must not be empty"),
    ({"project_name": "1st model"}, "must start with a letter"),
    ({"repo_slug": "Fraud_Detector"}, 'repo_slug "Fraud_Detector" is not a valid slug'),
    ({"package_name": "9lives"}, "is not a valid Python identifier"),
    ({"package_name": "fraud-detector"}, "is not a valid Python identifier"),
    ({"package_name": "class"}, "is a Python keyword"),
    ({"package_name": "json"}, "shadows the standard library or a common package"),
    ({"package_name": "test"}, "shadows the standard library or a common package"),
    ({"package_name": "torch"}, "shadows the standard library or a common package"),
    ({"package_name": "onnx"}, "shadows the standard library or a common package"),
    ({"package_name": "a" * 31}, "package_name is 31 characters long: keep it to 30 or fewer"),
    ({"description": ""}, "description must not be empty"),
    ({"author_email": "nobody"}, "is not an e-mail address"),
    ({"input_shape": "3x32"}, "must be CxHxW"),
    ({"input_shape": "4x32x32"}, "image models take 1 (grayscale) or 3 (RGB)"),
    ({"input_shape": "3x4x4"}, "height and width must be between 8 and 512"),
    ({"model_family": "sequence-rnn", "input_shape": "3x32x32"}, "must be TxF, time steps x"),
    ({"model_family": "sequence-rnn", "input_shape": "1x9"}, "a window has between 2 and 10000"),
    ({"model_family": "sequence-rnn", "input_shape": "128x2000"}, "at most 1024 features"),
    ({"model_family": "text-transformer", "input_shape": "128x9"}, "must be one positive integer"),
    ({"model_family": "text-transformer", "input_shape": "4"}, "must be between 8 and 4096"),
    ({"num_classes": 1}, "a classifier needs between 2 and 1000 classes"),
    ({"min_accuracy": 1.5}, "min_accuracy is 1.5: give a fraction between 0 and 1"),
    ({"max_regression": -0.1}, "max_regression is -0.1"),
    ({"image_repository": "ghcr.io/acme/model:1.0"}, "is not an OCI image reference without tag"),
    (
        {"image_repository": "ghcr.io/acme/model@sha256:" + "a" * 64},
        "is not an OCI image reference without tag",
    ),
    ({"image_repository": "ghcr.io/Acme/model"}, "is not an OCI image reference without tag"),
    ({"image_repository": ""}, "is not an OCI image reference without tag"),
    ({"default_branch": "-main"}, "is not a branch name git and every CI system"),
    ({"default_branch": "a..b"}, "is not a branch name git and every CI system"),
    ({"default_branch": "main.lock"}, "is not a branch name git and every CI system"),
    ({"default_branch": "feat/"}, "is not a branch name git and every CI system"),
    ({"default_branch": "ma in"}, "is not a branch name git and every CI system"),
    ({"namespace_prefix": "Fraud_Detector"}, "is not a DNS-1123 label"),
    ({"namespace_prefix": "-fraud"}, "is not a DNS-1123 label"),
    ({"namespace_prefix": "a" * 51}, "keep it to 50 or fewer"),
    ({"environments": ["staging", "prod"]}, "environments must include dev"),
    ({"ci_systems": []}, "ci_systems must name at least one CI system"),
    (
        {"gitops_repo_url": "https://bot:secret@git.example.com/deploy.git"},
        "is not a Git URL without credentials",
    ),
    ({"gitops_repo_url": "deploy-repo"}, "is not a Git URL without credentials"),
    ({"argocd_namespace": "Argo CD"}, "is not a Kubernetes namespace name"),
    ({"gpu_runner_label": "gpu a100"}, "must be one runner label"),
    ({"gpu_runner_label": "-gpu"}, "must be one runner label"),
    ({"gpu_runner_label": "g" * 64}, "must be one runner label"),
    ({"gpu_runner_label": "gpu\n"}, "must be one runner label"),
    ({"gpu_runner_label": "gpu'; rm -rf /"}, "must be one runner label"),
]


def _answer_id(answers: dict) -> str:
    # The last answer is the bad one; any before it set what it depends on (a family).
    key, value = list(answers.items())[-1]
    return f"{key}={value!r}"[:40]


@pytest.mark.parametrize(
    ("answers", "message"), BAD_ANSWERS, ids=[_answer_id(answers) for answers, _ in BAD_ANSWERS]
)
def test_bad_answer_is_refused_and_leaves_nothing(tmp_path: Path, answers, message) -> None:
    destination = tmp_path / "repo"
    with pytest.raises(GenerationError) as error:
        render(destination, answers)
    assert message in str(error.value)
    assert f"question '{list(answers)[-1]}'" in str(error.value)
    assert not destination.exists()


@pytest.mark.parametrize(
    "image_repository",
    [
        "ghcr.io/acme/fraud-detector",
        "localhost:5000/models/fraud",
        "fraud",
        "reg.io:443/a/b__c/d.e",
        # A one-component host with a port, as a cluster-internal registry is often named.
        "registry:5000/models/x",
    ],
)
def test_valid_image_references_are_accepted(tmp_path: Path, image_repository: str) -> None:
    repo = render(tmp_path / "repo", {"image_repository": image_repository})
    answers = yaml.safe_load((repo / ".copier-answers.yml").read_text())
    assert answers["image_repository"] == image_repository
    # The generated code, which builds, pushes and deploys the image, agrees.
    oci = runpy.run_path(str(repo / "src" / answers["package_name"] / "oci.py"))
    assert oci["is_repository"](image_repository)
    reference = oci["REFERENCE_PATTERN"].fullmatch(f"{image_repository}@sha256:{'a' * 64}")
    assert reference is not None and reference["repository"] == image_repository


def test_copier_validates_image_repository_with_the_generated_code_grammar() -> None:
    """One grammar: copier.yml's validator holds a copy of oci.py's REPOSITORY, exactly."""
    oci = runpy.run_path(str(TEMPLATE_DIR / "src" / "{{package_name}}" / "oci.py"))
    validator = yaml.safe_load(COPIER_YML.read_text())["image_repository"]["validator"]
    assert f"regex_search('\\A{oci['REPOSITORY']}\\Z')" in validator


def test_derived_names_follow_the_project_name(tmp_path: Path) -> None:
    repo = render(tmp_path / "repo", {"project_name": "Churn  Model-v2"})
    answers = yaml.safe_load((repo / ".copier-answers.yml").read_text())
    assert answers["repo_slug"] == "churn-model-v2"
    assert answers["package_name"] == "churn_model_v2"
    assert answers["namespace_prefix"] == "churn-model-v2"
    assert (repo / "src" / "churn_model_v2" / "__init__.py").is_file()


def test_reserved_names_cover_the_whole_standard_library() -> None:
    config = yaml.safe_load(COPIER_YML.read_text())
    reserved = set(config["reserved_package_names"]["default"].split())
    public_stdlib = {name for name in sys.stdlib_module_names if not name.startswith("_")}
    assert public_stdlib - reserved == set()


def test_existing_non_empty_destination_is_refused_untouched(tmp_path: Path) -> None:
    destination = tmp_path / "repo"
    destination.mkdir()
    (destination / "notes.txt").write_text("mine")
    with pytest.raises(GenerationError, match="exists and is not empty"):
        render(destination)
    assert [p.name for p in destination.iterdir()] == ["notes.txt"]


def test_cli_reports_a_bad_answer_on_one_line_and_exits_2(tmp_path: Path) -> None:
    destination = tmp_path / "repo"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelyard.cli",
            "new",
            str(destination),
            "--defaults",
            "--vcs-ref",
            "HEAD",
            "-d",
            "project_name=Fraud Detector",
            "-d",
            "namespace_prefix=NO",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert 'namespace_prefix "NO" is not a DNS-1123 label' in result.stderr
    assert "Traceback" not in result.stderr
    assert not destination.exists()


def test_data_pairs_must_have_an_equals_sign() -> None:
    assert parse_data(["a=1", "b=x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(GenerationError, match="must look like question=value"):
        parse_data(["project_name"])

"""The exact set of files a render must produce for given answers.

Written out by hand on purpose: a file that appears or vanishes by accident (a stray
condition, a missing suffix) fails the render matrix instead of shipping unnoticed.
"""

from __future__ import annotations

from typing import Any

ALWAYS = {
    ".copier-answers.yml",
    ".dvc/.gitignore",
    ".dvc/config",
    ".dvcignore",
    ".dockerignore",
    ".gitignore",
    ".yamllint.yaml",
    "Dockerfile",
    "train.Dockerfile",
    "README.md",
    "pyproject.toml",
    "bench/bench_serve.py",
    "bench/loadgen.py",
    "bench/mlserver_runtime.py",
    "bench/peer_server.py",
    "configs/default.yaml",
    "configs/smoke.yaml",
    "deploy/argocd/applications.yaml",
    "deploy/argocd/appproject.yaml",
    "deploy/argocd/kustomization.yaml",
    "deploy/base/deployment.yaml",
    "deploy/base/hpa.yaml",
    "deploy/base/kustomization.yaml",
    "deploy/base/networkpolicy.yaml",
    "deploy/base/pdb.yaml",
    "deploy/base/server-config.env",
    "deploy/base/service.yaml",
    "deploy/base/serviceaccount.yaml",
    "deploy/components/monitoring/dashboard.json",
    "deploy/components/monitoring/kustomization.yaml",
    "deploy/components/monitoring/prometheusrule.yaml",
    "deploy/components/monitoring/servicemonitor.yaml",
    "deploy/training/kustomization.yaml",
    "deploy/training/launcher-rbac.yaml",
    "deploy/training/namespace.yaml",
    "deploy/training/serviceaccounts.yaml",
    "deploy/training/volumes.yaml",
    "deploy/training/job/output-reader.yaml",
    "deploy/training/job/trainjob.yaml",
    "tests/conftest.py",
    "tests/fake_kubectl.py",
    "tests/serving_fixtures.py",
    "tests/test_config.py",
    "tests/test_data.py",
    "tests/test_datasets.py",
    "tests/test_distributed.py",
    "tests/test_download.py",
    "tests/test_gate.py",
    "tests/fake_gh.py",
    "tests/test_ci_setup.py",
    "tests/test_gitops_overlay.py",
    "tests/test_gitops_repo.py",
    "tests/test_metrics.py",
    "tests/test_pipeline.py",
    "tests/test_provenance.py",
    "tests/test_serve_abuse.py",
    "tests/test_serve_batching.py",
    "tests/test_serve_http.py",
    "tests/test_serve_monitoring.py",
    "tests/test_serve_process.py",
    "tests/test_serve_protocol.py",
    "tests/test_serve_tritonclient.py",
    "tests/test_serve_runtime.py",
    "tests/test_training.py",
    "tests/test_trainjob.py",
}

PACKAGE_MODULES = {
    "__init__.py",
    "__main__.py",
    "artifacts.py",
    "approvals.py",
    "champion.py",
    "ci_setup.py",
    "cli.py",
    "config.py",
    "data.py",
    "datasets.py",
    "download.py",
    "drift.py",
    "errors.py",
    "evaluate.py",
    "export.py",
    "families/__init__.py",
    "families/interface.py",
    "families/hparams.py",
    "families/labels.py",
    "gitops/__init__.py",
    "gitops/build.py",
    "gitops/cli.py",
    "gitops/overlay.py",
    "gitops/repo.py",
    "gitops/settings.py",
    "image.py",
    "metrics.py",
    "modeling.py",
    "oci.py",
    "pipeline.py",
    "plots.py",
    "provenance.py",
    "serve/__init__.py",
    "serve/app.py",
    "serve/batching.py",
    "serve/logs.py",
    "serve/memory.py",
    "serve/monitoring.py",
    "serve/metrics.py",
    "serve/protocol.py",
    "serve/runtime.py",
    "serve/server.py",
    "serve/settings.py",
    "serve/text_input.py",
    "train.py",
    "tokenization.py",
    "trainjob.py",
    "distributed.py",
    "verify.py",
}

FAMILY_FILES = {
    "image-cnn": {
        "src/{package}/families/image_cnn/__init__.py",
        "src/{package}/families/image_cnn/cifar10.py",
        "src/{package}/families/image_cnn/image_folder.py",
        "src/{package}/families/image_cnn/layout.py",
        "src/{package}/families/image_cnn/model.py",
        "src/{package}/families/image_cnn/synthetic.py",
        "tests/test_family_image_cnn.py",
    },
    "sequence-rnn": {
        "src/{package}/families/sequence_rnn/__init__.py",
        "src/{package}/families/sequence_rnn/layout.py",
        "src/{package}/families/sequence_rnn/model.py",
        "src/{package}/families/sequence_rnn/sensor_csv.py",
        "src/{package}/families/sequence_rnn/synthetic.py",
        "src/{package}/families/sequence_rnn/uci_har.py",
        "tests/test_family_sequence_rnn.py",
    },
    "text-transformer": {
        "src/{package}/families/text_transformer/__init__.py",
        "src/{package}/families/text_transformer/encoder.py",
        "src/{package}/families/text_transformer/layout.py",
        "src/{package}/families/text_transformer/model.py",
        "src/{package}/families/text_transformer/public_datasets.py",
        "src/{package}/families/text_transformer/synthetic.py",
        "src/{package}/families/text_transformer/text_table.py",
        "tests/test_family_text_transformer.py",
    },
}

OVERLAY_FILES = ("kustomization.yaml", "deployment-resources.yaml", "hpa-bounds.yaml")


def ci_files(
    ci_systems: list[str], environments: list[str], gpu_runner_label: str = ""
) -> set[str]:
    files = set()
    if "github" in ci_systems:
        files |= {".github/workflows/ci.yml", ".github/workflows/release.yml"}
        if len(environments) > 1:
            files.add(".github/workflows/promote.yml")
        if gpu_runner_label:
            # actionlint must know the self-hosted label that train runs on.
            files.add(".github/actionlint.yaml")
    if "gitlab" in ci_systems:
        files.add(".gitlab-ci.yml")
    if "jenkins" in ci_systems:
        files.add("Jenkinsfile")
    return files


def expected_files(answers: dict[str, Any]) -> set[str]:
    package = answers.get("package_name", "fraud_detector")
    family = answers.get("model_family", "image-cnn")
    environments = answers.get("environments", ["dev", "staging", "prod"])
    ci_systems = answers.get("ci_systems", ["github", "gitlab", "jenkins"])
    files = set(ALWAYS)
    files |= {f"src/{package}/{module}" for module in PACKAGE_MODULES}
    files |= {path.format(package=package) for path in FAMILY_FILES[family]}
    files |= {f"deploy/overlays/{env}/{name}" for env in environments for name in OVERLAY_FILES}
    files |= ci_files(ci_systems, environments, answers.get("gpu_runner_label", ""))
    return files

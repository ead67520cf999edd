"""Cluster training: deploy/training and the launcher's TrainJob, checked as a cluster would.

No cluster runs here (tests/README.md). What stands in:
- `kubectl kustomize deploy/training` renders the objects an administrator applies once;
  built-in kinds pass kubernetes-validate in strict mode;
- the generated `train` with `train.launcher: cluster` runs against the generated repo's
  tests/fake_kubectl.py on PATH; the TrainJob and reader Pod it sends pass the real Kubeflow
  Trainer CRD schema (../shared/schemas/crds/) and kubernetes-validate, unknown fields
  rejected;
- the TrainJob's runtime patches must name the replicated job and container that the real
  torch-distributed runtime (../shared/schemas/kubeflow-trainer-runtimes/) defines, and the
  launcher's Role must grant every call the launcher made.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import k8s
import pytest
import yaml

from modelyard.paths import REPO_ROOT

from ci_tools import tool_env
from conftest import render
from matrix import NON_DEFAULT_TEXT

RUNTIME = REPO_ROOT.parent / "shared" / "schemas" / "kubeflow-trainer-runtimes"
RUNTIME_FILE = RUNTIME / "torch_distributed.yaml"
IMAGE = "registry.example.com/models/churn-train@sha256:" + "c" * 64
CASES = [
    {},
    {
        name: NON_DEFAULT_TEXT[name]
        for name in ("project_name", "repo_slug", "package_name", "namespace_prefix")
    },
]

# What each kubectl call of the launcher asks the API server for: (group, resource, verb).
# kubectl logs -l lists the pods first; wait lists and watches; cp reads the pod and execs tar.
CALL_PERMISSIONS = {
    ("create", "TrainJob"): [("trainer.kubeflow.org", "trainjobs", "create")],
    ("create", "Pod"): [("", "pods", "create")],
    ("get", "trainjob"): [("trainer.kubeflow.org", "trainjobs", "get")],
    ("get", "pods"): [("", "pods", "list")],
    ("logs", ""): [("", "pods", "list"), ("", "pods/log", "get")],
    ("wait", ""): [("", "pods", "list"), ("", "pods", "watch")],
    ("cp", ""): [("", "pods", "get"), ("", "pods/exec", "create")],
    ("delete", "pod"): [("", "pods", "delete")],
    ("delete", "trainjob"): [("trainer.kubeflow.org", "trainjobs", "delete")],
}


@pytest.fixture(scope="module", params=CASES, ids=["defaults", "non-default"])
def repo(request, tmp_path_factory) -> tuple[dict[str, Any], Path]:
    repo = render(tmp_path_factory.mktemp("cluster") / "repo", request.param)
    answers = yaml.safe_load((repo / ".copier-answers.yml").read_text(encoding="utf-8"))
    return answers, repo


def launch(repo: Path, scratch: Path, *overrides: str, outcome: str = "Complete") -> list[dict]:
    """Run the generated `train` on the cluster launcher against the fake kubectl."""
    answers = yaml.safe_load((repo / ".copier-answers.yml").read_text(encoding="utf-8"))
    bin_dir, state, output = scratch / "bin", scratch / "state", scratch / "job-output"
    for folder in (bin_dir, state, output):
        folder.mkdir(parents=True)
    shim = bin_dir / "kubectl"
    shim.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" "{repo / "tests" / "fake_kubectl.py"}" "$@"\n'
    )
    shim.chmod(0o755)
    # What rank 0 would have left on the volume; the launcher only copies and annotates it.
    (output / "model.pt").write_bytes(b"checkpoint")
    (output / "metrics.json").write_text(json.dumps({"final_validation_accuracy": 0.9}))
    environment = {
        **tool_env(),
        "PATH": f"{bin_dir}{os.pathsep}{tool_env()['PATH']}",
        "PYTHONPATH": str(repo / "src"),
        "FAKE_KUBECTL_DIR": str(state),
        "FAKE_KUBECTL_OUTPUT": str(output),
        "FAKE_TRAINJOB_OUTCOME": outcome,
        "FAKE_TRAINJOB_POLLS": "0",
        "TRAINING_IMAGE": IMAGE,
    }
    arguments = [
        "train", "--config", "configs/default.yaml", "--set",
        f"artifacts_dir={scratch / 'artifacts'}", "--set", "train.launcher=cluster",
        *[f"--set={item}" for item in overrides],
    ]  # fmt: skip
    # As `python -m <package>`, with torch made unimportable: launching a TrainJob must
    # not need it (a CI job that only launches installs none, and neither does this venv).
    script = (
        "import json, sys\n"
        "sys.modules['torch'] = None\n"
        f"from {answers['package_name']}.cli import main\n"
        "sys.exit(main(json.loads(sys.argv[1])))\n"
    )
    command = [sys.executable, "-c", script, json.dumps(arguments)]
    result = subprocess.run(
        command, cwd=repo, env=environment, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == (0 if outcome == "Complete" else 1), result.stdout + result.stderr
    return [json.loads(line) for line in (state / "calls.jsonl").read_text().splitlines()]


def created(calls: list[dict], kind: str) -> dict[str, Any]:
    [document] = [
        yaml.safe_load(call["stdin"])
        for call in calls
        if call["argv"][0] == "create" and yaml.safe_load(call["stdin"])["kind"] == kind
    ]
    return document


OVERRIDES = ("cluster.num_nodes=3", "cluster.procs_per_node=2", "cluster.gpus_per_node=2")


@pytest.fixture(scope="module")
def launched(repo, tmp_path_factory) -> tuple[dict[str, Any], list[dict], Path]:
    answers, path = repo
    scratch = tmp_path_factory.mktemp("launch")
    return answers, launch(path, scratch, *OVERRIDES), scratch


def test_the_training_namespace_objects_validate_strictly(repo):
    answers, path = repo
    docs = k8s.kustomize(path / "deploy" / "training", path / "deploy")
    namespace = f"{answers['namespace_prefix']}-training"
    kinds = sorted((doc["kind"], doc["metadata"]["name"]) for doc in docs)
    assert kinds == [
        ("Namespace", namespace),
        ("PersistentVolumeClaim", "training-data"),
        ("PersistentVolumeClaim", "training-output"),
        ("Role", "training-launcher"),
        ("RoleBinding", "training-launcher"),
        ("ServiceAccount", "trainer"),
        ("ServiceAccount", "training-launcher"),
    ]
    for doc in docs:
        k8s.validate(doc, {})
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace, doc["metadata"]
    [binding] = [doc for doc in docs if doc["kind"] == "RoleBinding"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "training-launcher", "namespace": namespace}
    ]


def test_the_launched_trainjob_validates_and_pins_image_gpus_nodes_and_command(
    launched, crd_validators
):
    answers, calls, scratch = launched
    job = created(calls, "TrainJob")
    k8s.validate(job, crd_validators)
    assert job["metadata"]["namespace"] == f"{answers['namespace_prefix']}-training"
    trainer = job["spec"]["trainer"]
    assert trainer["image"] == IMAGE
    assert trainer["numNodes"] == 3 and trainer["numProcPerNode"] == 2
    resources = trainer["resourcesPerNode"]
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == 2
    name = job["metadata"]["name"]
    # The same profile and overrides as the launching run, then: train here, onto the volume.
    overrides = [
        f"artifacts_dir={scratch / 'artifacts'}", "train.launcher=cluster", *OVERRIDES,
        "train.launcher=local", f"artifacts_dir=/workspace/output/{name}",
    ]  # fmt: skip
    assert trainer["command"] == [
        "torchrun", "-m", answers["package_name"], "train", "--config", "configs/default.yaml",
        *[part for override in overrides for part in ("--set", override)],
    ]  # fmt: skip
    reader = created(calls, "Pod")
    k8s.validate(reader, crd_validators)
    assert reader["spec"]["containers"][0]["image"] == IMAGE


def test_the_runtime_patches_name_what_the_torch_runtime_defines(launched, crd_validators):
    _, calls, _ = launched
    job = created(calls, "TrainJob")
    runtime = yaml.safe_load(RUNTIME_FILE.read_text(encoding="utf-8"))
    k8s.validate(runtime, crd_validators)
    assert job["spec"]["runtimeRef"] == {
        "apiGroup": "trainer.kubeflow.org",
        "kind": runtime["kind"],
        "name": runtime["metadata"]["name"],
    }
    runtime_jobs = {
        replicated["name"]: replicated["template"]["spec"]["template"]["spec"]
        for replicated in runtime["spec"]["template"]["spec"]["replicatedJobs"]
    }
    [patch] = job["spec"]["runtimePatches"]
    for replicated in patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]:
        assert replicated["name"] in runtime_jobs, replicated["name"]
        pod = replicated["template"]["spec"]["template"]["spec"]
        names = {container["name"] for container in runtime_jobs[replicated["name"]]["containers"]}
        assert {container["name"] for container in pod["containers"]} <= names
        # Every mount names a volume of the same patch.
        volumes = {volume["name"] for volume in pod["volumes"]}
        for container in pod["containers"]:
            assert {mount["name"] for mount in container["volumeMounts"]} <= volumes


def test_the_launcher_role_grants_every_call_it_made(repo, launched):
    _, path = repo
    _, calls, _ = launched
    docs = k8s.kustomize(path / "deploy" / "training", path / "deploy")
    [role] = [doc for doc in docs if doc["kind"] == "Role"]
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    for call in calls:
        verb = call["argv"][0]
        if verb == "create":
            key = (verb, yaml.safe_load(call["stdin"])["kind"])
        elif verb in ("get", "delete"):
            key = (verb, call["argv"][1])
        else:
            key = (verb, "")
        assert key in CALL_PERMISSIONS, f"no permissions known for kubectl {call['argv']}"
        for needed in CALL_PERMISSIONS[key]:
            assert needed in granted, (call["argv"], needed)
    # Nothing beyond what the calls need.
    assert granted == {needed for key in CALL_PERMISSIONS for needed in CALL_PERMISSIONS[key]}


def test_a_misspelt_trainjob_field_is_rejected(launched, crd_validators):
    _, calls, _ = launched
    job = created(calls, "TrainJob")
    job["spec"]["trainer"]["numNode"] = job["spec"]["trainer"].pop("numNodes")
    with pytest.raises(AssertionError, match="numNode"):
        k8s.validate(job, crd_validators)

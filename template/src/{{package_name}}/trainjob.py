"""Train on the cluster: a Kubeflow Trainer TrainJob, followed to the end, its output fetched.

`train` comes here when the profile says `train.launcher: cluster`. It renders
deploy/training/job/trainjob.yaml for this run (the training image by digest, torchrun
with the same profile and overrides, the `cluster` section's nodes, processes, GPUs,
CPU and memory), creates it with kubectl, streams the pods' logs, and waits for the
TrainJob's Complete or Failed condition. On Complete it copies the job's output
(model.pt, metrics.json, plots/) from the output volume into the artifacts folder, where
evaluate, export and verify read it as if training had run here. On Failed it exits
non-zero with the TrainJob's reason and message.

kubectl is whatever is on PATH, with the cluster and credentials of its kubeconfig (in CI,
a token of the training-launcher ServiceAccount; see deploy/training/). No torch here.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from . import artifacts
from .config import Config
from .errors import ArtifactError, StageError
from .provenance import UNKNOWN_COMMIT, git_commit

TRAINING_DIR = Path("deploy") / "training"
TRAINJOB_TEMPLATE = TRAINING_DIR / "job" / "trainjob.yaml"
READER_TEMPLATE = TRAINING_DIR / "job" / "output-reader.yaml"
KUSTOMIZATION = TRAINING_DIR / "kustomization.yaml"
IMAGE_VARIABLE = "TRAINING_IMAGE"
# Where the training image has the repository and where the pods mount the volumes.
WORKDIR = "/workspace"
OUTPUT_MOUNT = f"{WORKDIR}/output"
TRAINER_CONTAINER = "node"
READER_CONTAINER = "reader"
# JobSet, which Trainer runs the TrainJob as, labels every pod with the TrainJob's name.
POD_SELECTOR = "jobset.sigs.k8s.io/jobset-name={name}"
# What the job's output must hold for the later stages.
REQUIRED_OUTPUTS = (artifacts.CHECKPOINT, artifacts.METRICS)
# The launcher outlives the TrainJob's own deadline by this much, to see its Failed condition.
DEADLINE_GRACE_SECONDS = 120
KUBECTL_TIMEOUT_SECONDS = 120
# How often the TrainJob's status is read: its pods' logs stream meanwhile.
POLL_SECONDS = 10.0


class ClusterError(StageError):
    """kubectl is missing, the cluster refused a request, or the output cannot be fetched."""


class TrainJobFailed(StageError):
    """The TrainJob ended with its Failed condition."""

    exit_code = 1


def run(config: Config) -> dict[str, Any]:
    """Launch, follow and fetch one TrainJob for `config`; return the metrics it wrote."""
    image = training_image(config)
    kubectl = _kubectl()
    namespace = training_namespace()
    name = job_name(git_commit())
    manifest = render_trainjob(config, image, name, namespace)
    artifacts.discard_later_outputs("train", config.artifacts)
    _call(kubectl, ["create", "-f", "-"], stdin=yaml.safe_dump(manifest, sort_keys=False))
    print(f"created TrainJob {namespace}/{name} ({_size(config)}) with {image}", flush=True)
    deadline = config.cluster.timeout_minutes * 60 + DEADLINE_GRACE_SECONDS
    try:
        outcome = follow(kubectl, namespace, name, deadline, POLL_SECONDS, config.cluster.num_nodes)
    except BaseException:
        # Timed out, cancelled or interrupted: free the GPUs instead of leaving a job
        # nobody waits for.
        _delete_trainjob(kubectl, namespace, name)
        raise
    if outcome["type"] == "Failed":
        raise TrainJobFailed(
            f"TrainJob {namespace}/{name} failed: {outcome['reason']}: {outcome['message']} "
            f"(logs: kubectl logs -n {namespace} -l {POD_SELECTOR.format(name=name)})"
        )
    print(f"TrainJob {namespace}/{name} completed; fetching its output", flush=True)
    fetch_output(kubectl, namespace, name, image, config.artifacts)
    return _record_origin(config.artifacts, namespace, name, image)


def training_image(config: Config) -> str:
    """The profile's cluster.image, else TRAINING_IMAGE; a tag alone is refused."""
    image = config.cluster.image or os.environ.get(IMAGE_VARIABLE, "").strip()
    if not image:
        raise ClusterError(
            f"no training image: set cluster.image in {config.source} or {IMAGE_VARIABLE} to "
            "REPOSITORY@sha256:... (build it from train.Dockerfile; README, 'Training on the "
            "cluster')"
        )
    repository, _, digest = image.partition("@")
    if not repository or not digest.startswith("sha256:") or len(digest) != 71:
        raise ClusterError(
            f"training image {image!r} is not pinned by digest: use REPOSITORY@sha256:<64 hex> "
            "so that every node runs the same bytes"
        )
    return image


def training_namespace() -> str:
    """The namespace of deploy/training (one source: its kustomization.yaml)."""
    kustomization = _read_yaml(KUSTOMIZATION)
    namespace = kustomization.get("namespace")
    if not isinstance(namespace, str) or not namespace:
        raise ClusterError(f"{KUSTOMIZATION} names no namespace")
    return namespace


def job_name(commit: str) -> str:
    """Unique per run and short: pods are named after it, with JobSet's suffixes."""
    revision = commit[:8] if commit != UNKNOWN_COMMIT else time.strftime("%Y%m%d")
    return f"train-{revision}-{secrets.token_hex(3)}"


def render_trainjob(config: Config, image: str, name: str, namespace: str) -> dict[str, Any]:
    """job/trainjob.yaml filled in for this run."""
    manifest = _read_yaml(TRAINJOB_TEMPLATE)
    manifest["metadata"]["name"] = name
    manifest["metadata"]["namespace"] = namespace
    spec = manifest["spec"]
    spec["activeDeadlineSeconds"] = config.cluster.timeout_minutes * 60
    trainer = spec["trainer"]
    trainer["image"] = image
    trainer["command"] = [*trainer["command"], *_train_arguments(config, name)]
    trainer["numNodes"] = config.cluster.num_nodes
    trainer["numProcPerNode"] = config.cluster.procs_per_node
    trainer["resourcesPerNode"] = _resources(config)
    return manifest


def render_reader(image: str, name: str, namespace: str) -> dict[str, Any]:
    """job/output-reader.yaml filled in for the TrainJob `name`."""
    manifest = _read_yaml(READER_TEMPLATE)
    manifest["metadata"]["name"] = f"{name}-output"
    manifest["metadata"]["namespace"] = namespace
    [container] = manifest["spec"]["containers"]
    container["image"] = image
    return manifest


def _train_arguments(config: Config, name: str) -> list[str]:
    """`-m <package> train` with the same profile and overrides, writing to the volume."""
    source = Path(config.source)
    if source.is_absolute():
        try:
            source = source.relative_to(Path.cwd())
        except ValueError as error:
            raise ClusterError(
                f"{config.source} is outside the repository: the training image only has "
                "the repository's configs/"
            ) from error
    arguments = ["-m", __package__, "train", "--config", source.as_posix()]
    for override in (*config.overrides, "train.launcher=local", _output_override(name)):
        arguments += ["--set", override]
    return arguments


def _output_override(name: str) -> str:
    return f"artifacts_dir={OUTPUT_MOUNT}/{name}"


def _resources(config: Config) -> dict[str, Any]:
    cluster = config.cluster
    requests: dict[str, Any] = {"cpu": cluster.cpu, "memory": cluster.memory}
    limits: dict[str, Any] = {"memory": cluster.memory}
    if cluster.gpus_per_node:
        # Extended resources are whole devices, requested and limited alike.
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = cluster.gpus_per_node
    return {"requests": requests, "limits": limits}


def _size(config: Config) -> str:
    cluster = config.cluster
    gpus = f", {cluster.gpus_per_node} GPU(s) each" if cluster.gpus_per_node else ", CPU only"
    return f"{cluster.num_nodes} node(s) x {cluster.procs_per_node} process(es){gpus}"


def follow(
    kubectl: str,
    namespace: str,
    name: str,
    timeout_seconds: float,
    poll_seconds: float,
    nodes: int = 1,
) -> dict[str, str]:
    """Wait for the TrainJob's Complete or Failed condition, streaming its pods' logs."""
    deadline = time.monotonic() + timeout_seconds
    logs: subprocess.Popen[bytes] | None = None
    try:
        while True:
            status = json.loads(
                _call(kubectl, ["get", "trainjob", name, "-n", namespace, "-o", "json"])
            )
            outcome = terminal_condition(status)
            if logs is None and _has_pods(kubectl, namespace, name):
                logs = _stream_logs(kubectl, namespace, name, nodes)
            if outcome is not None:
                return outcome
            if time.monotonic() >= deadline:
                raise ClusterError(
                    f"TrainJob {namespace}/{name} did not finish within {timeout_seconds:.0f} s; "
                    "deleted it (raise cluster.timeout_minutes for longer runs)"
                )
            time.sleep(poll_seconds)
    finally:
        if logs is not None:
            _stop_logs(logs)


def terminal_condition(trainjob: dict[str, Any]) -> dict[str, str] | None:
    """The TrainJob's Complete or Failed condition when it holds, else None."""
    for condition in trainjob.get("status", {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return {
                "type": condition["type"],
                "reason": condition.get("reason", ""),
                "message": condition.get("message", ""),
            }
    return None


def fetch_output(kubectl: str, namespace: str, name: str, image: str, destination: Path) -> None:
    """Copy the job's output folder off the volume through a reader pod, then delete it."""
    reader = render_reader(image, name, namespace)
    pod = reader["metadata"]["name"]
    _call(kubectl, ["create", "-f", "-"], stdin=yaml.safe_dump(reader, sort_keys=False))
    try:
        _call(
            kubectl,
            ["wait", "--for=condition=Ready", f"pod/{pod}", "-n", namespace, "--timeout=300s"],
            timeout=330,
        )
        with tempfile.TemporaryDirectory(prefix="trainjob-", dir=destination.parent) as folder:
            copied = Path(folder) / "output"
            source = f"{pod}:{OUTPUT_MOUNT}/{name}"
            _call(
                kubectl,
                ["cp", "-n", namespace, "-c", READER_CONTAINER, source, str(copied)],
                timeout=1800,
            )
            missing = [item for item in REQUIRED_OUTPUTS if not (copied / item).is_file()]
            if missing:
                raise ArtifactError(
                    f"TrainJob {namespace}/{name} completed but its output lacks "
                    f"{', '.join(missing)}: did rank 0 write to {OUTPUT_MOUNT}/{name}?"
                )
            destination.mkdir(parents=True, exist_ok=True)
            for item in sorted(copied.iterdir()):
                target = destination / item.name
                if target.is_dir():
                    shutil.rmtree(target)
                shutil.move(str(item), str(target))
    finally:
        _call(kubectl, ["delete", "pod", pod, "-n", namespace, "--wait=false"], check=False)
    print(f"fetched {', '.join(REQUIRED_OUTPUTS)} and plots into {destination}", flush=True)


def _record_origin(out: Path, namespace: str, name: str, image: str) -> dict[str, Any]:
    """metrics.json says where the model was trained: the evidence a reviewer asks for."""
    path = out / artifacts.METRICS
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ArtifactError(f"{path} from the TrainJob is not JSON: {error}") from error
    metrics["trained_by"] = {"trainjob": f"{namespace}/{name}", "image": image}
    path.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    print(f"final validation accuracy {metrics.get('final_validation_accuracy')}; wrote {path}")
    return metrics


def _has_pods(kubectl: str, namespace: str, name: str) -> bool:
    selector = POD_SELECTOR.format(name=name)
    found = _call(kubectl, ["get", "pods", "-n", namespace, "-l", selector, "-o", "name"])
    return bool(found.strip())


def _stream_logs(kubectl: str, namespace: str, name: str, nodes: int) -> subprocess.Popen[bytes]:
    """`kubectl logs --follow` of every pod of the job, straight into this job's log."""
    command = [
        kubectl, "logs", "-n", namespace, "-l", POD_SELECTOR.format(name=name),
        "-c", TRAINER_CONTAINER, "--follow", "--prefix", "--ignore-errors",
        f"--max-log-requests={nodes + 1}",
    ]  # fmt: skip
    return subprocess.Popen(command)


def _stop_logs(logs: subprocess.Popen[bytes]) -> None:
    # The stream ends by itself when the pods finish; give it a moment to flush.
    try:
        logs.wait(timeout=30)
    except subprocess.TimeoutExpired:
        logs.terminate()
        logs.wait(timeout=10)


def _delete_trainjob(kubectl: str, namespace: str, name: str) -> None:
    _call(
        kubectl,
        ["delete", "trainjob", name, "-n", namespace, "--wait=false", "--ignore-not-found"],
        check=False,
    )


def _kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        raise ClusterError(
            "kubectl is not on PATH: install it, with a kubeconfig for the training namespace "
            "(README, 'Training on the cluster')"
        )
    return found


def _call(
    kubectl: str,
    arguments: list[str],
    stdin: str | None = None,
    timeout: float = KUBECTL_TIMEOUT_SECONDS,
    check: bool = True,
) -> str:
    """Run kubectl; a failure is one line naming the command and kubectl's own error."""
    try:
        result = subprocess.run(
            [kubectl, *arguments],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise ClusterError(
            f"kubectl {' '.join(arguments[:3])} timed out after {timeout} s"
        ) from error
    if check and result.returncode != 0:
        reason = result.stderr.strip().splitlines()[-1:] or [f"exit code {result.returncode}"]
        raise ClusterError(f"kubectl {' '.join(arguments[:3])} failed: {reason[0]}")
    return result.stdout


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ClusterError(f"{path} not found: run train from the repository root")
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise ClusterError(f"{path} must hold one Kubernetes object")
    return document

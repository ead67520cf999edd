"""The images of a generated repository: linted, really built and run; serving probed, pushed.

Four groups:
- hadolint is clean on the Dockerfile and train.Dockerfile of every case of the matrix;
- the `build-image` / `push-image` entry points, run with stand-in builders on PATH: the
  command lines they run, the files they write, and the one-line errors they give;
- (marker `container`) a real podman build of a repository whose smoke pipeline exported
  the model, run read-only as its non-root user, probed over HTTP against onnxruntime
  in-process, then pushed to the local registry and pulled back by the recorded digest;
- (marker `container`) a real podman build of train.Dockerfile, run the way the TrainJob
  runs it: torchrun with two processes, as the image's user, writing to a mounted volume.

The container tests need what tests/container/setup-podman.sh installs (ci/setup.sh runs
it as root). Without it they fail, never skip: a CI machine without podman is broken.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelyard.probe import (
    ProbeError,
    free_port,
    infer_json,
    onnxruntime_reference,
    output_named,
    wait_until_ready,
)
from modelyard.venv import install_repo

from ci_tools import tool, tool_env
from conftest import commit_all, git, render
from matrix import build_cases, case_id
from podman_state import PODMAN_ENV
from registry import Registry

SETUP_HINT = "run tests/container/setup-podman.sh as root (ci/setup.sh does)"
TEST_PATH = "modelyard-tests/fraud-detector"
SIZE_BUDGET_BYTES = 350 * 1000 * 1000  # podman reports sizes in decimal megabytes
IMAGE_USER = "10001:10001"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
CASES = build_cases()

# --- hadolint on every render ------------------------------------------------------------


@pytest.mark.parametrize("answers", CASES, ids=[case_id(case) for case in CASES])
def test_dockerfile_is_hadolint_clean(render_repo, answers: dict[str, Any]) -> None:
    hadolint = tool("hadolint")
    repo = render_repo(answers)
    dockerfile = (repo / "Dockerfile").read_text()
    result = subprocess.run(
        [hadolint, "--no-color", "Dockerfile"], cwd=repo, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    version = answers.get("python_version", "3.11")
    package = answers.get("package_name", "fraud_detector")
    assert f"ARG BASE_IMAGE=python:{version}-slim\n" in dockerfile
    assert f'ENTRYPOINT ["python", "-m", "{package}"]' in dockerfile
    assert (repo / ".dockerignore").is_file()
    training = subprocess.run(
        [hadolint, "--no-color", "train.Dockerfile"], cwd=repo, capture_output=True, text=True
    )
    assert training.returncode == 0, training.stdout + training.stderr
    assert f"ARG BASE_IMAGE=python:{version}-slim\n" in (repo / "train.Dockerfile").read_text()


# --- build-image / push-image with stand-in builders --------------------------------------

# A stand-in builder: records the arguments of its build or registry push, one per line
# (other calls, such as saving the archive, go to FAKE_LOG.other), and for `push` writes
# the digest podman would write. FAKE_EXIT makes it fail the way a broken build does;
# FAKE_NOT_LOCAL makes the image absent from local storage.
FAKE_BUILDER = """#!/bin/sh
case "$1 $2" in
    "build "*|"push --digestfile") printf '%s\\n' "$@" > "$FAKE_LOG" ;;
    "image exists"|"inspect --type") exit "${FAKE_NOT_LOCAL:-0}" ;;
    "login "*) read -r secret; printf '%s stdin=%s\\n' "$*" "$secret" >> "$FAKE_LOG.other" ;;
    *) printf '%s\\n' "$*" >> "$FAKE_LOG.other" ;;
esac
if [ "$1" = push ] && [ "$2" = --digestfile ]; then
    printf '%s' "$FAKE_DIGEST" > "$3"
fi
exit "${FAKE_EXIT:-0}"
"""
# docker has no --digestfile: the entry point asks `docker image inspect` after the push.
FAKE_DOCKER = """#!/bin/sh
printf '%s\\n' "$@" >> "$FAKE_LOG"
if [ "$1" = image ] && [ "$2" = inspect ]; then
    printf '[{"RepoDigests": ["other.example/x@sha256:%064d", "%s@%s"]}]' 0 \
        "$IMAGE_REPOSITORY" "$FAKE_DIGEST"
fi
"""
DIGEST = "sha256:" + "ab" * 32
EXPORT = {
    "model_name": "fraud-detector",
    "model_version": "0.1.0+g0123456789ab",
    "git_commit": "0123456789abcdef0123456789abcdef01234567",
    "metrics_digest": "sha256:" + "cd" * 32,
}


@dataclass
class EntryPoints:
    """A rendered repository with an exported model and a PATH that holds only git."""

    repo: Path
    bin_dir: Path
    commit: str

    def add_builder(self, name: str, script: str = FAKE_BUILDER) -> None:
        path = self.bin_dir / name
        path.write_text(script)
        path.chmod(0o755)

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environment = {
            "PATH": str(self.bin_dir),
            "PYTHONPATH": str(self.repo / "src"),
            "FAKE_LOG": str(self.repo / "builder-args.txt"),
            "FAKE_DIGEST": DIGEST,
            "IMAGE_REPOSITORY": "registry.test/team/fraud-detector",
            **env,
        }
        return subprocess.run(
            [sys.executable, "-m", "fraud_detector", *args],
            cwd=self.repo,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def builder_args(self) -> list[str]:
        return (self.repo / "builder-args.txt").read_text().splitlines()


def _commit_all(repo: Path) -> str:
    git("init", "-q", cwd=repo)
    return commit_all(repo, "v1")


@pytest.fixture
def entry_points(render_repo, tmp_path: Path) -> EntryPoints:
    repo = render_repo()
    artifacts = repo / "artifacts"
    artifacts.mkdir()
    (artifacts / "model.onnx").write_bytes(b"stand-in: the builder is fake too")
    (artifacts / "export.json").write_text(json.dumps(EXPORT))
    commit = _commit_all(repo)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # Only git: the real podman / docker of this machine must not be found.
    (bin_dir / "git").symlink_to(tool("git"))
    return EntryPoints(repo, bin_dir, commit)


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_build_passes_labels_tag_and_extra_flags(entry_points: EntryPoints) -> None:
    entry_points.add_builder("podman")
    entry_points.add_builder("docker")  # podman comes first when both are on PATH
    result = entry_points.run(
        "build-image",
        IMAGE_BUILD_ARGS="--pull=never -v '/a b:/c:ro'",
        SOURCE_DATE_EPOCH="1700000000",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    reference = f"registry.test/team/fraud-detector:{entry_points.commit[:12]}"
    assert f"built {reference}" in result.stdout
    args = entry_points.builder_args()
    assert args[:3] == ["build", "--format", "docker"]
    build_args = [
        value for flag, value in zip(args, args[1:], strict=False) if flag == "--build-arg"
    ]
    assert build_args == [
        "SOURCE_URL=",
        f"REVISION={entry_points.commit}",
        f"VERSION={EXPORT['model_version']}",
        "CREATED=2023-11-14T22:13:20Z",
        f"MODEL_NAME={EXPORT['model_name']}",
        f"MODEL_VERSION={EXPORT['model_version']}",
        f"METRICS_DIGEST={EXPORT['metrics_digest']}",
    ]
    assert args[args.index("--tag") + 1] == reference
    assert args[-4:] == ["--pull=never", "-v", "/a b:/c:ro", "."]


def test_build_records_the_origin_url_without_credentials(entry_points: EntryPoints) -> None:
    origin = "https://ci:s3cret@git.example.com/t/m.git"
    git("remote", "add", "origin", origin, cwd=entry_points.repo)
    entry_points.add_builder("buildah")
    result = entry_points.run("build-image")
    assert result.returncode == 0, result.stdout + result.stderr
    args = entry_points.builder_args()
    assert args[0] == "build" and "SOURCE_URL=https://git.example.com/t/m.git" in args
    assert not any("s3cret" in arg for arg in args)


def test_build_uses_the_builder_asked_for(entry_points: EntryPoints) -> None:
    entry_points.add_builder("podman")
    entry_points.add_builder("docker")
    result = entry_points.run("build-image", "--tag", "candidate-1", IMAGE_BUILDER="docker")
    assert result.returncode == 0, result.stdout + result.stderr
    args = entry_points.builder_args()
    # docker has no --format; the tag given replaces the commit.
    assert args[0] == "build" and "--format" not in args
    assert "registry.test/team/fraud-detector:candidate-1" in args


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("build-image",), {}, "no image builder found: install one of buildah, podman, docker"),
        (("build-image",), {"IMAGE_BUILDER": "kaniko"}, "unknown image builder 'kaniko'"),
        (("push-image", "--builder", "podman"), {}, "image builder 'podman' is not on PATH"),
    ],
    ids=["none-on-path", "unknown-name", "named-but-missing"],
)
def test_missing_builder_is_a_clear_error(
    entry_points: EntryPoints, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    assert message in _one_line_error(entry_points.run(*args, **env))


def test_failed_build_is_a_clear_error(entry_points: EntryPoints) -> None:
    entry_points.add_builder("podman")
    error = _one_line_error(entry_points.run("build-image", FAKE_EXIT="3"))
    assert "podman build failed with exit code 3" in error


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"IMAGE_REPOSITORY": "registry.test/Team/x:latest"}, "is not REGISTRY/PATH"),
        ({"IMAGE_BUILD_ARGS": "--label 'unclosed"}, "IMAGE_BUILD_ARGS is not valid shell quoting"),
        ({"SOURCE_DATE_EPOCH": "yesterday"}, "SOURCE_DATE_EPOCH='yesterday' is not a Unix"),
    ],
    ids=["repository-with-tag", "bad-quoting", "bad-epoch"],
)
def test_bad_settings_are_clear_errors(
    entry_points: EntryPoints, env: dict[str, str], message: str
) -> None:
    entry_points.add_builder("podman")
    assert message in _one_line_error(entry_points.run("build-image", **env))


def test_build_without_an_exported_model_is_a_clear_error(entry_points: EntryPoints) -> None:
    entry_points.add_builder("podman")
    (entry_points.repo / "artifacts" / "model.onnx").unlink()
    error = _one_line_error(entry_points.run("build-image"))
    assert "artifacts/model.onnx is missing: run the export stage" in error


def test_build_outside_git_needs_a_commit_or_a_tag(entry_points: EntryPoints) -> None:
    entry_points.add_builder("podman")
    shutil.rmtree(entry_points.repo / ".git")
    assert "pass --tag" in _one_line_error(entry_points.run("build-image"))
    # CI names the commit in its own variables when the checkout is not a git repository.
    result = entry_points.run("build-image", CI_COMMIT_SHA="f" * 40)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "registry.test/team/fraud-detector:ffffffffffff" in entry_points.builder_args()


def test_push_writes_the_digest_and_the_dotenv(entry_points: EntryPoints) -> None:
    entry_points.add_builder("podman")
    result = entry_points.run("push-image", IMAGE_PUSH_ARGS="--tls-verify=false")
    assert result.returncode == 0, result.stdout + result.stderr
    args = entry_points.builder_args()
    reference = f"registry.test/team/fraud-detector:{entry_points.commit[:12]}"
    assert args[0:2] == ["push", "--digestfile"] and args[3:] == ["--tls-verify=false", reference]
    artifacts = entry_points.repo / "artifacts"
    assert (artifacts / "image-digest.txt").read_text() == f"{DIGEST}\n"
    assert (artifacts / "image.env").read_text() == (
        f"IMAGE_DIGEST={DIGEST}\nIMAGE_REF=registry.test/team/fraud-detector@{DIGEST}\n"
    )


def test_push_with_docker_reads_the_digest_of_this_repository(entry_points: EntryPoints) -> None:
    entry_points.add_builder("docker", FAKE_DOCKER)
    result = entry_points.run("push-image", "--builder", "docker", "--tag", "rc1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (entry_points.repo / "artifacts" / "image-digest.txt").read_text() == f"{DIGEST}\n"
    args = entry_points.builder_args()
    reference = "registry.test/team/fraud-detector:rc1"
    # Is the image local (no archive to load)? Push it. Which digest did the registry give?
    assert args == ["image", "inspect", reference, "push", reference, "image", "inspect", reference]


def test_build_saves_an_archive_for_the_push_job(entry_points: EntryPoints) -> None:
    entry_points.add_builder("podman")
    result = entry_points.run("build-image", "--tag", "rc2")
    assert result.returncode == 0, result.stdout + result.stderr
    saved = (entry_points.repo / "builder-args.txt.other").read_text().splitlines()
    reference = "registry.test/team/fraud-detector:rc2"
    assert saved == [f"save --format docker-archive --output artifacts/image.tar {reference}"]


def test_push_on_another_runner_loads_the_archive(entry_points: EntryPoints) -> None:
    entry_points.add_builder("podman")
    reference = "registry.test/team/fraud-detector:rc3"
    missing = _one_line_error(entry_points.run("push-image", "--tag", "rc3", FAKE_NOT_LOCAL="1"))
    assert f"image {reference} is not in podman's local storage and artifacts/image.tar" in missing
    (entry_points.repo / "artifacts" / "image.tar").write_bytes(b"stand-in archive")
    result = entry_points.run("push-image", "--tag", "rc3", FAKE_NOT_LOCAL="1")
    assert result.returncode == 0, result.stdout + result.stderr
    loaded = (entry_points.repo / "builder-args.txt.other").read_text().splitlines()
    assert loaded == ["load --input artifacts/image.tar"]
    assert entry_points.builder_args()[-1] == reference


def test_push_logs_in_with_the_password_on_stdin(entry_points: EntryPoints) -> None:
    entry_points.add_builder("podman")
    result = entry_points.run(
        "push-image",
        REGISTRY_USERNAME="ci-bot",
        REGISTRY_PASSWORD="s3cret-token",
        REGISTRY_HOST="registry.test",
        IMAGE_LOGIN_ARGS="--tls-verify=false",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    calls = (entry_points.repo / "builder-args.txt.other").read_text().splitlines()
    assert calls == [
        "login --username ci-bot --password-stdin --tls-verify=false registry.test "
        "stdin=s3cret-token"
    ]
    assert "s3cret-token" not in result.stdout + result.stderr


def test_push_never_sends_credentials_to_another_registry(entry_points: EntryPoints) -> None:
    entry_points.add_builder("podman")
    result = entry_points.run(
        "push-image",
        REGISTRY_USERNAME="ci-bot",
        REGISTRY_PASSWORD="s3cret-token",
        REGISTRY_HOST="ghcr.io",
    )
    assert result.returncode != 0
    assert "credentials are for ghcr.io (REGISTRY_HOST), but the image goes to registry.test" in (
        _one_line_error(result)
    )
    other = entry_points.repo / "builder-args.txt.other"
    assert not other.exists() or "login" not in other.read_text()
    assert "s3cret-token" not in result.stdout + result.stderr


def test_push_never_sends_credentials_that_name_no_registry(entry_points: EntryPoints) -> None:
    """Jenkins binds the `registry` credential without a host: REGISTRY_HOST must say it."""
    entry_points.add_builder("podman")
    result = entry_points.run(
        "push-image", REGISTRY_USERNAME="ci-bot", REGISTRY_PASSWORD="s3cret-token"
    )
    assert result.returncode != 0
    assert "REGISTRY_HOST is not: set it to the registry they are for" in _one_line_error(result)
    other = entry_points.repo / "builder-args.txt.other"
    assert not other.exists() or "login" not in other.read_text()


def test_push_refuses_a_digest_that_is_not_one(entry_points: EntryPoints) -> None:
    entry_points.add_builder("podman")
    error = _one_line_error(entry_points.run("push-image", FAKE_DIGEST="latest"))
    assert "gave 'latest', not a sha256 digest" in error
    assert not (entry_points.repo / "artifacts" / "image-digest.txt").exists()


# --- a real build, run and push with podman -------------------------------------------------


def _podman_environment() -> dict[str, str]:
    return {**tool_env(), **PODMAN_ENV}


def podman(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [tool("podman"), *args],
        env=_podman_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert result.returncode == 0, f"podman {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


@dataclass(frozen=True)
class Built:
    repo: Path
    python: Path
    repository: str
    reference: str
    export: dict[str, Any]
    commit: str

    def stage(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), "-m", "fraud_detector", *args],
            cwd=self.repo,
            env={**_podman_environment(), "IMAGE_REPOSITORY": self.repository, **env},
            capture_output=True,
            text=True,
            timeout=600,
        )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> Iterator[Built]:
    """The default repository, smoke-trained and exported, built into an image by podman."""
    tool("podman")
    base = podman("image", "exists", "localhost/python:3.11-slim", check=False)
    assert base.returncode == 0, (
        f"the base image localhost/python:3.11-slim is missing: {SETUP_HINT}"
    )

    repo = render(tmp_path_factory.mktemp("image") / "fraud-detector")
    commit = _commit_all(repo)
    started = time.perf_counter()
    python = install_repo(repo, repo / ".venv", extras=("train",))
    print(f"\ninstall with the train extra: {time.perf_counter() - started:.1f} s")
    repository = f"{registry.address}/{TEST_PATH}"
    reference = f"{repository}:{commit[:12]}"
    stub = Built(repo, python, repository, reference, {}, commit)

    started = time.perf_counter()
    pipeline = stub.stage("pipeline", "--config", "configs/smoke.yaml")
    assert pipeline.returncode == 0, pipeline.stdout[-3000:] + pipeline.stderr[-3000:]
    print(f"smoke pipeline: {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    # `FROM python:3.11-slim` resolves to localhost/python:3.11-slim without pulling; pip
    # inside the build reaches PyPI through the host's network and CA bundle.
    build = stub.stage(
        "build-image",
        "--builder",
        "podman",
        IMAGE_BUILD_ARGS=f"--pull=never --network host -v {CA_BUNDLE}:{CA_BUNDLE}:ro",
    )
    assert build.returncode == 0, build.stdout[-5000:] + build.stderr[-3000:]
    print(f"podman build: {time.perf_counter() - started:.1f} s")
    assert f"built {reference}" in build.stdout

    export = json.loads((repo / "artifacts" / "export.json").read_text())
    image_id = _inspect(reference)["Id"]
    try:
        yield Built(repo, python, repository, reference, export, commit)
    finally:
        podman("rmi", "--force", image_id, check=False)


def _inspect(reference: str) -> dict[str, Any]:
    return json.loads(podman("image", "inspect", reference).stdout)[0]


def _wait_until_ready(base_url: str, container: str) -> None:
    def running() -> bool:
        state = podman("inspect", "--format", "{{.State.Status}}", container).stdout.strip()
        return state == "running"

    try:
        wait_until_ready(base_url, running)
    except ProbeError as error:
        logs = podman("logs", container, check=False)
        raise AssertionError(f"{error}:\n{logs.stdout}{logs.stderr}") from error


@pytest.mark.container
def test_image_has_no_torch_and_fits_the_size_budget(built: Built) -> None:
    no_torch = podman(
        "run", "--rm", "--entrypoint", "python", built.reference, "-c", "import torch", check=False
    )
    assert no_torch.returncode == 1, no_torch.stdout + no_torch.stderr
    assert "No module named 'torch'" in no_torch.stderr
    no_compiler = podman(
        "run",
        "--rm",
        "--entrypoint",
        "python",
        built.reference,
        "-c",
        "import shutil; print([c for c in ('gcc', 'cc', 'g++') if shutil.which(c)])",
    )
    assert no_compiler.stdout.strip() == "[]"

    size = _inspect(built.reference)["Size"]
    history = podman("history", "--format", "{{.Size}}\t{{.CreatedBy}}", built.reference)
    print(f"\nimage {built.reference}: {size / 1e6:.1f} MB")
    for line in history.stdout.splitlines():
        layer_size, created_by = line.split("\t", 1)
        if layer_size != "0 B":
            print(f"  {layer_size:>8}  {created_by[:90]}")
    assert size < SIZE_BUDGET_BYTES, f"{size / 1e6:.1f} MB is over the 350 MB budget"


@pytest.mark.container
def test_image_metadata(built: Built) -> None:
    image = _inspect(built.reference)
    config = image["Config"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.revision"] == built.commit
    assert labels["org.opencontainers.image.version"] == built.export["model_version"]
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", labels["org.opencontainers.image.created"]
    )
    assert "org.opencontainers.image.source" in labels
    assert labels["io.modelyard.model.name"] == built.export["model_name"]
    assert labels["io.modelyard.model.version"] == built.export["model_version"]
    assert labels["io.modelyard.model.metrics-digest"] == built.export["metrics_digest"]
    assert config["User"] == IMAGE_USER
    assert "8080/tcp" in config["ExposedPorts"]
    # Exec form: no shell in the way ("CMD-SHELL" would need /bin/sh and quoting).
    assert image["Healthcheck"]["Test"][0] == "CMD"


@pytest.mark.container
def test_container_serves_like_onnxruntime_in_process(built: Built) -> None:
    expected = onnxruntime_reference(built.python, built.repo, "fraud_detector", batch=4, seed=11)
    port = free_port()
    # No --user: the image's own user must be non-root. Only /tmp is writable.
    container = podman(
        "run", "--detach", "--read-only", "--publish", f"127.0.0.1:{port}:8080", built.reference
    ).stdout.strip()
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(base_url, container)
        uid = podman("exec", container, "python", "-c", "import os; print(os.getuid())")
        assert uid.stdout.strip() == IMAGE_USER.split(":")[0]
        write = podman("exec", container, "python", "-c", "open('/app/x', 'w')", check=False)
        assert "Read-only file system" in write.stderr
        podman("exec", container, "python", "-c", "open('/tmp/x', 'w').write('ok')")
        # The image's HEALTHCHECK, run the way the engine runs it.
        assert podman("healthcheck", "run", container, check=False).returncode == 0

        answer = infer_json(
            base_url, built.export["model_name"], expected["tensor"], request_id="image-parity"
        )
        logits = output_named(answer)
        rows = expected["logits"]
        assert logits["shape"] == [len(rows), len(rows[0])]
        flat = [value for row in rows for value in row]
        assert logits["data"] == pytest.approx(flat, rel=1e-5, abs=1e-5)
        print(f"\ninfer over HTTP == onnxruntime in-process for {len(rows)} inputs")

        # PID 1 is the server: SIGTERM makes it drain and exit 0 (137 would mean podman
        # had to kill it after the timeout).
        podman("stop", "--time", "30", container)
        exit_code = podman("inspect", "--format", "{{.State.ExitCode}}", container).stdout
        logs = podman("logs", container, check=False)
        assert exit_code.strip() == "0", logs.stdout + logs.stderr
    finally:
        podman("rm", "--force", container, check=False)


@pytest.mark.container
def test_push_records_the_digest_that_pulls_the_same_image(
    built: Built, registry: Registry
) -> None:
    image_id = _inspect(built.reference)["Id"]
    # The push job of a real CI runs on another machine: only the build's archive is there.
    podman("rmi", "--force", built.reference)
    started = time.perf_counter()
    push = built.stage("push-image", "--builder", "podman", IMAGE_PUSH_ARGS="--tls-verify=false")
    assert push.returncode == 0, push.stdout + push.stderr
    assert f"loading {built.reference} from artifacts/image.tar" in push.stdout
    assert _inspect(built.reference)["Id"] == image_id
    print(f"\npush: {time.perf_counter() - started:.1f} s")
    artifacts = built.repo / "artifacts"
    digest = (artifacts / "image-digest.txt").read_text().strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    dotenv = dict(line.split("=", 1) for line in (artifacts / "image.env").read_text().splitlines())
    repository = built.repository
    pinned = f"{repository}@{digest}"
    assert dotenv == {"IMAGE_DIGEST": digest, "IMAGE_REF": pinned}
    assert registry.manifest_digest(repository, digest) == digest

    # Forget the local image, then pull it back by digest alone.
    podman("rmi", "--force", built.reference)
    try:
        podman("pull", "--tls-verify=false", pinned, timeout=300)
        assert _inspect(pinned)["Id"] == image_id
    finally:
        # The other tests of this module use the tag, whatever order they run in.
        podman("tag", pinned, built.reference, check=False)


# --- the training image ---------------------------------------------------------------

# torch from this machine's wheel folder (the CPU build of the pinned version, which pip
# prefers to PyPI's as 2.13.0+cpu sorts above 2.13.0); no PyTorch index can be reached.
LOCAL_WHEELS = "/opt/wheels"


@pytest.mark.container
def test_training_image_runs_torchrun_as_the_trainjob_does(tmp_path: Path) -> None:
    base = podman("image", "exists", "localhost/python:3.11-slim", check=False)
    assert base.returncode == 0, f"the base image is missing: {SETUP_HINT}"
    repo = render(tmp_path / "fraud-detector")
    tag = "localhost/modelyard-tests/fraud-detector-train:test"
    started = time.perf_counter()
    podman(
        "build", "--pull=never", "--network", "host", "--file", "train.Dockerfile",
        "--volume", f"{CA_BUNDLE}:{CA_BUNDLE}:ro",
        "--volume", f"{LOCAL_WHEELS}:{LOCAL_WHEELS}:ro",
        "--build-arg", "TORCH_INDEX_URL=https://pypi.org/simple",
        "--build-arg", f"PIP_FIND_LINKS={LOCAL_WHEELS}",
        "--tag", tag, str(repo),
        timeout=900,
    )  # fmt: skip
    print(f"\npodman build train.Dockerfile: {time.perf_counter() - started:.1f} s")
    output = tmp_path / "output"
    output.mkdir()
    # The TrainJob's fsGroup makes the volume writable for the image's user; here, the mode.
    output.chmod(0o777)
    try:
        versions = podman(
            "run", "--rm", tag, "python", "-c", "import torch; print(torch.__version__)"
        )
        assert versions.stdout.strip() == "2.13.0+cpu"
        started = time.perf_counter()
        run = podman(
            "run", "--rm", "--network", "none", "--volume", f"{output}:/workspace/output",
            tag, "torchrun", "--standalone", "--nproc-per-node", "2",
            "-m", "fraud_detector", "train", "--config", "configs/smoke.yaml",
            "--set", "artifacts_dir=/workspace/output/train-test",
            timeout=600,
        )  # fmt: skip
        print(f"torchrun x2 in the training image: {time.perf_counter() - started:.1f} s")
        assert "x 2 processes (gloo)" in run.stdout
        metrics = json.loads((output / "train-test" / "metrics.json").read_text())
        assert metrics["world_size"] == 2
        assert (output / "train-test" / "model.pt").is_file()
        user = podman("run", "--rm", tag, "id", "-u").stdout.strip()
        assert user == IMAGE_USER.split(":")[0]
    finally:
        podman("rmi", "--force", tag, check=False)

"""The generated `gitops` stage end to end, in both GitOps modes, against local bare repositories.

config-repo: `seed` fills the empty config repository, `set-image --push` and `promote --push`
land one commit each there, and Kustomize renders the promoted digest from a fresh clone.
same-repo: a CI-like shallow checkout pushes its deploy commit to the model repository
itself, marked [skip ci], without touching the checkout's files.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from ci_tools import tool, tool_env
from conftest import git

REPOSITORY = "registry.example.com/tests/gitops-example"
DIGEST = "sha256:" + "ab" * 32
NEVER_DEPLOYED = "sha256:" + "0" * 64


def gitops(repo: Path, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m <package> gitops ...` of the rendered repository `repo`."""
    answers = yaml.safe_load((repo / ".copier-answers.yml").read_text("utf-8"))
    environment = {**tool_env(), "PYTHONPATH": str(repo / "src")}
    environment.pop("GITOPS_REPO_URL", None)
    return subprocess.run(
        [sys.executable, "-m", answers["package_name"], "gitops", *argv],
        cwd=cwd or repo,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


def succeeded(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def deployed_image(checkout: Path, environment: str) -> str:
    rendered = subprocess.run(
        [tool("kubectl"), "kustomize", str(checkout / "deploy" / "overlays" / environment)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (deployment,) = [doc for doc in yaml.safe_load_all(rendered) if doc["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container["image"]


SET_IMAGE = [
    "set-image", "--push", "--env", "dev", "--image", f"{REPOSITORY}@{DIGEST}",
    "--model-version", "1.4.0+g1a2b3c", "--metrics-digest", "sha256:" + "cd" * 32,
]  # fmt: skip


def test_config_repo_mode_seeds_deploys_and_promotes(render_repo, tmp_path):
    config = tmp_path / "config.git"
    git("init", "--quiet", "--bare", "--initial-branch", "main", str(config), cwd=tmp_path)
    repo = render_repo(
        {
            "gitops_mode": "config-repo",
            "gitops_repo_url": f"file://{config}",
            "environments": ["dev", "prod"],
        }
    )

    # No --repo anywhere: the URL comes from the answers (gitops/settings.py).
    succeeded(gitops(repo, "seed"))
    succeeded(gitops(repo, *SET_IMAGE))
    output = succeeded(gitops(repo, "promote", "--push", "--from", "dev", "--to", "prod"))

    assert "prod now runs" in output and "pushed" in output
    subjects = git("log", "--format=%s", "main", cwd=config).splitlines()
    assert subjects == [
        "Promote fraud-detector 1.4.0+g1a2b3c from dev to prod",
        "Deploy fraud-detector 1.4.0+g1a2b3c to dev",
        "Seed deploy/ of fraud-detector from its model repository",
    ]
    body = git("log", "-1", "--format=%b", "main", cwd=config)
    assert f"image: {REPOSITORY}@{DIGEST}" in body and "[skip ci]" not in body
    checkout = tmp_path / "argocd-view"
    git("clone", "--quiet", str(config), str(checkout), cwd=tmp_path)
    assert deployed_image(checkout, "prod") == f"{REPOSITORY}@{DIGEST}"
    assert deployed_image(checkout, "dev") == f"{REPOSITORY}@{DIGEST}"
    # The model repository's deploy/ is only the seed: it still says "never deployed".
    assert NEVER_DEPLOYED in (repo / "deploy/overlays/prod/kustomization.yaml").read_text()


def test_same_repo_mode_commits_to_the_model_repository(render_repo, tmp_path):
    repo = render_repo({"environments": ["dev", "staging"]})
    origin = tmp_path / "origin.git"
    git("init", "--quiet", "--bare", "--initial-branch", "main", str(origin), cwd=tmp_path)
    git("init", "--quiet", "--initial-branch", "main", cwd=repo)
    git("add", "--all", cwd=repo)
    git("commit", "--quiet", "-m", "Generated", cwd=repo)
    git("push", "--quiet", str(origin), "main", cwd=repo)
    # What a CI job sees: a shallow clone, detached at the commit that started the pipeline.
    ci = tmp_path / "ci"
    git("clone", "--quiet", "--depth", "1", f"file://{origin}", str(ci), cwd=tmp_path)
    git("checkout", "--quiet", "--detach", cwd=ci)

    succeeded(gitops(ci, *SET_IMAGE))
    succeeded(gitops(ci, "promote", "--push", "--from", "dev", "--to", "staging"))

    subjects = git("log", "--format=%s", "main", cwd=origin).splitlines()
    assert subjects[:2] == [
        "Promote fraud-detector 1.4.0+g1a2b3c from dev to staging",
        "Deploy fraud-detector 1.4.0+g1a2b3c to dev",
    ]
    # The deploy commit must not start the pipeline that made it.
    assert "[skip ci]" in git("log", "-1", "--format=%b", "main", cwd=origin)
    assert git("status", "--porcelain", cwd=ci) == ""
    fresh = tmp_path / "argocd-view"
    git("clone", "--quiet", str(origin), str(fresh), cwd=tmp_path)
    assert deployed_image(fresh, "staging") == f"{REPOSITORY}@{DIGEST}"


def test_gitops_needs_neither_pyyaml_nor_torch_nor_onnxruntime(default_repo, tmp_path):
    """A deploy job installs only the `deploy` extra: the stage must import nothing else."""
    shutil.copytree(default_repo / "deploy", tmp_path / "deploy")
    blocked = ("yaml", "torch", "onnx", "onnxruntime", "numpy", "prometheus_client")
    script = (
        "import sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None  # importing it now raises ImportError\n"
        "from fraud_detector.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    argv = [arg for arg in SET_IMAGE if arg != "--push"]
    result = subprocess.run(
        [sys.executable, "-c", script, "gitops", *argv],
        cwd=tmp_path,
        env={**tool_env(), "PYTHONPATH": str(default_repo / "src")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert DIGEST in (tmp_path / "deploy/overlays/dev/kustomization.yaml").read_text()


def test_the_generated_gitops_tests_pass(render_repo, default_repo):
    """The generated repository's own gitops tests: in full where only dev exists (its
    fixtures must make up the other environments), and the round trip of every shipped
    overlay where all three exist."""
    only_dev = render_repo({"gitops_mode": "config-repo", "environments": ["dev"]})
    for repo, selection in (
        (only_dev, ["tests/test_gitops_overlay.py", "tests/test_gitops_repo.py"]),
        (default_repo, ["tests/test_gitops_overlay.py", "-k", "every_shipped_overlay"]),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *selection],
            cwd=repo,
            env={**tool_env(), "PYTHONPATH": str(repo / "src")},
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
        print(result.stdout.strip().splitlines()[-1])

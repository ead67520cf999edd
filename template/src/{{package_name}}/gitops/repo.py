"""Commit an edit to the repository Argo CD reads and push it, without losing a concurrent one.

Every edit happens in a workspace of its own (a fresh clone of a config repository, or a
temporary `git worktree` of this checkout), never in the working tree a person or a CI job
is using. A push that the remote rejects because another deploy pushed first is not an
error: the workspace fetches the new branch head, rebases its one commit onto it (or, when
both touched the same overlay, redoes the edit on top of it) and pushes again. An edit is
a pure function of the files it changes, so redoing it can never undo the other deploy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import StageError

REMOTE = "origin"
# The trailer every deploy commit ends with, naming the environment it deployed.
DEPLOY_TRAILER = "Modelyard-Deploy"
# Who commits when the machine has no git identity (a bare CI runner).
FALLBACK_IDENTITY = ("gitops", "gitops@example.invalid")

# An edit applied inside a workspace: returns the paths (relative to the workspace root)
# it changed, an empty list when everything already was as wanted.
Edit = Callable[[Path], list[Path]]


class GitError(StageError):
    """A git command failed, or the remote refused a push for a reason a retry cannot fix."""


def redact(url: str) -> str:
    """A URL fit to print: `https://user:token@host/x` -> `https://***@host/x`."""
    return re.sub(r"(?<=://)[^/@\s]+@", "***@", url)


# The transports a GitOps repository is reached by. Anything else (ext::, which runs a
# command, or fd::) is refused by git itself before it connects.
ALLOWED_PROTOCOLS = "https:ssh:git:file"


def checked_url(url: str) -> str:
    """`url`, unless git could read it as an option or it holds whitespace."""
    if not url or url.startswith("-") or any(char.isspace() for char in url):
        raise GitError(
            f"{redact(url)!r} is not a git URL (https://HOST/PATH.git, ssh://..., "
            "git@HOST:PATH.git or file:///PATH)"
        )
    return url


def checked_branch(branch: str, cwd: Path) -> str:
    """`branch`, if git accepts it as a branch name (never an option)."""
    valid = not branch.startswith("-") and (
        git("check-ref-format", "--branch", branch, cwd=cwd, check=False).returncode == 0
    )
    if not valid:
        raise GitError(f"{branch!r} is not a valid git branch name")
    return branch


# With GITOPS_TOKEN set, git answers an HTTPS password prompt with it (username
# GITOPS_USERNAME, default x-access-token as GitHub wants; GitLab takes any name for a
# project access token). The helper reads the token from the environment when git asks:
# it is never written to .git/config, a URL or a command line.
_TOKEN_HELPER = (
    '!f() { test "$1" = get || exit 0; '
    'printf "username=%s\\npassword=%s\\n" '
    '"${GITOPS_USERNAME:-x-access-token}" "$GITOPS_TOKEN"; }; f'
)


def _token_config(environ: dict[str, str]) -> dict[str, str]:
    """GIT_CONFIG_* entries adding the token helper, after any the caller already set."""
    if not environ.get("GITOPS_TOKEN"):
        return {}
    count = int(environ.get("GIT_CONFIG_COUNT", "0") or 0)
    return {
        "GIT_CONFIG_COUNT": str(count + 1),
        f"GIT_CONFIG_KEY_{count}": "credential.helper",
        f"GIT_CONFIG_VALUE_{count}": _TOKEN_HELPER,
    }


def git(
    *args: str, cwd: Path, check: bool = True, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        **_token_config(dict(os.environ)),
        "GIT_ALLOW_PROTOCOL": ALLOWED_PROTOCOLS,
        # Never wait for a password on a terminal that nobody watches.
        "GIT_TERMINAL_PROMPT": "0",
        # Messages in English, whatever the runner's locale, for the errors we relay.
        "LC_ALL": "C",
    }
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=input_text,
            capture_output=True,
            text=True,
            env=environment,
            check=False,
        )
    except FileNotFoundError:
        raise GitError("git is not installed (the gitops stage needs it with --push)") from None
    if check and result.returncode != 0:
        command = redact(" ".join(args))
        raise GitError(f"git {command} failed: {_last_line(result.stderr or result.stdout)}")
    return result


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return redact(lines[-1]) if lines else "no output"


def deploy_commit(checkout: Path) -> str | None:
    """The checkout's HEAD when a deploy made it (it carries DEPLOY_TRAILER), else None."""
    result = git(
        "log", "-1", f"--format=%H %(trailers:key={DEPLOY_TRAILER},valueonly,separator=%x2C)",
        cwd=checkout, check=False,
    )  # fmt: skip
    commit, _, environments = result.stdout.strip().partition(" ")
    return commit if result.returncode == 0 and environments.strip() else None


@dataclasses.dataclass(frozen=True)
class Workspace:
    root: Path
    branch: str
    # The remote as it may be printed (credentials redacted).
    label: str


@contextlib.contextmanager
def cloned(url: str, branch: str) -> Iterator[Workspace]:
    """A fresh clone of `url` at `branch`, removed afterwards (an empty repository works)."""
    scratch = Path(tempfile.mkdtemp(prefix="gitops-"))
    root = scratch / "repository"
    try:
        # `--` everywhere: a URL or branch that begins with "-" must never become an option
        # (`--upload-pack=...` would run a command).
        url = checked_url(url)
        branch = checked_branch(branch, scratch)
        heads = git("ls-remote", "--heads", "--", url, branch, cwd=scratch).stdout
        if heads.strip():
            git(
                "clone", "--quiet", "--depth", "1", "--branch", branch, "--", url, str(root),
                cwd=scratch,
            )  # fmt: skip
        else:
            # An empty repository (a config repo before its seed): start the branch here.
            git("init", "--quiet", f"--initial-branch={branch}", "--", str(root), cwd=scratch)
            git("remote", "add", "--", REMOTE, url, cwd=root)
        yield Workspace(root=root, branch=branch, label=redact(url))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def worktree(checkout: Path, branch: str) -> Iterator[Workspace]:
    """A temporary worktree of the checkout at the remote's `branch` head.

    It shares the checkout's git configuration, so the credentials a CI checkout was given
    push from it too, and the checkout's own files are left alone.
    """
    probe = git("rev-parse", "--show-toplevel", cwd=checkout, check=False)
    if probe.returncode != 0:
        raise GitError(
            f"{checkout} is not inside a git checkout: run from the repository or pass --repo URL"
        )
    top = Path(probe.stdout.strip())
    url = git("remote", "get-url", REMOTE, cwd=top, check=False).stdout.strip()
    if not url:
        raise GitError(f"the checkout at {top} has no remote {REMOTE!r} to push to")
    branch = checked_branch(branch, top)
    git("fetch", "--quiet", "--", REMOTE, branch, cwd=top)
    head = git("rev-parse", "FETCH_HEAD", cwd=top).stdout.strip()
    scratch = Path(tempfile.mkdtemp(prefix="gitops-"))
    root = scratch / "worktree"
    git("worktree", "add", "--quiet", "--detach", str(root), head, cwd=top)
    try:
        yield Workspace(root=root, branch=branch, label=redact(url))
    finally:
        git("worktree", "remove", "--force", str(root), cwd=top, check=False)
        shutil.rmtree(scratch, ignore_errors=True)


def publish(
    workspace: Workspace,
    edit: Edit,
    message: str,
    *,
    attempts: int = 5,
    report: Callable[[str], None] = print,
) -> str | None:
    """Apply `edit`, commit it with `message` and push it to the workspace's branch.

    Returns the commit that landed, or None when the branch already had what `edit` wants
    (nothing is committed then: one commit per change, never an empty one).
    """
    if attempts < 1:
        raise GitError(f"attempts must be at least 1, not {attempts}")
    root, branch = workspace.root, workspace.branch
    base = _head(root)
    if not _commit(root, edit, message):
        return None
    for attempt in range(1, attempts + 1):
        pushed = git(
            "push", "--quiet", "--", REMOTE, f"HEAD:refs/heads/{branch}", cwd=root, check=False
        )
        if pushed.returncode == 0:
            return _head(root)
        upstream = _fetch(root, branch)
        if upstream is None or upstream == base:
            # The branch did not move: no race, a real refusal (rights, protection, ...).
            raise GitError(
                f"push to {branch} of {workspace.label} was rejected: {_last_line(pushed.stderr)}"
            )
        if attempt == attempts:
            break
        report(
            f"{branch} of {workspace.label} moved on to {upstream[:12]} (another deploy pushed "
            f"first): rebasing and retrying ({attempt}/{attempts - 1})"
        )
        if not _rebase(root, base, upstream):
            # Both changed the same lines: take theirs and redo this edit on top of it.
            report("the same lines changed there: redoing the edit on top of it")
            git("reset", "--quiet", "--hard", upstream, cwd=root)
            if not _commit(root, edit, message):
                return None
        elif _head(root) == upstream:
            return None  # the rebase found this change already upstream
        base = upstream
        # Spread retries out so that racing deploys do not collide again in lockstep.
        time.sleep(random.uniform(0.05, 0.25) * attempt)
    raise GitError(
        f"gave up after {attempts} pushes to {branch} of {workspace.label}: it kept moving; "
        "run the deploy again"
    )


def _head(root: Path) -> str | None:
    result = git("rev-parse", "--verify", "--quiet", "HEAD", cwd=root, check=False)
    return result.stdout.strip() or None


def _fetch(root: Path, branch: str) -> str | None:
    """The remote branch head, fetched; None when the remote has no such branch."""
    listed = git("ls-remote", "--heads", "--", REMOTE, branch, cwd=root).stdout.split()
    if not listed:
        return None
    git("fetch", "--quiet", "--", REMOTE, branch, cwd=root)
    return git("rev-parse", "FETCH_HEAD", cwd=root).stdout.strip()


def _identity(root: Path) -> list[str]:
    if git("config", "user.email", cwd=root, check=False).stdout.strip():
        return []
    # GIT_AUTHOR_* / GIT_COMMITTER_* variables, where CI sets them, still take precedence.
    name, email = FALLBACK_IDENTITY
    return ["-c", f"user.name={name}", "-c", f"user.email={email}"]


def _commit(root: Path, edit: Edit, message: str) -> bool:
    changed = edit(root)
    if not changed:
        return False
    git("add", "--", *(str(path) for path in changed), cwd=root)
    if git("diff", "--cached", "--quiet", cwd=root, check=False).returncode == 0:
        return False
    git(*_identity(root), "commit", "--quiet", "--file", "-", cwd=root, input_text=message)
    return True


def _rebase(root: Path, base: str | None, upstream: str) -> bool:
    """Move this workspace's one commit onto `upstream`; False (and undone) on a conflict."""
    since = [base] if base else ["--root"]
    result = git(
        *_identity(root), "rebase", "--quiet", "--onto", upstream, *since, cwd=root, check=False
    )
    if result.returncode == 0:
        return True
    git("rebase", "--abort", cwd=root, check=False)
    return False

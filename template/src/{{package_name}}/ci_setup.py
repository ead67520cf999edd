"""`python -m <package> ci-setup github --repo OWNER/NAME`: the GitHub environments the
deploy and promote jobs name, protected as this repository expects.

GitHub creates an environment a job names on first use, unprotected: anyone who may run
the Promote workflow would then deploy to prod. This command creates (or updates) every
environment in gitops/settings.py through the GitHub REST API, with GitHub's own CLI:
- deploys only from the default branch (a custom deployment branch policy);
- for each environment in approvals.py, required reviewers (the team named there, or
  `--reviewer`) and `prevent_self_review`, so the person who started a promotion cannot
  approve it.

`--check` changes nothing and exits 1 naming every environment that is not protected so.
It needs `gh` on PATH, logged in with the rights to administer the repository.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

from .approvals import APPROVERS
from .errors import StageError
from .gitops.settings import ENVIRONMENTS, GITOPS_BRANCH


class SetupError(StageError):
    """The platform could not be set up or checked as asked."""


def gh_api(path: str, method: str = "GET", body: Any = None) -> Any:
    """One call of the GitHub REST API through `gh api`; its JSON answer (None if empty)."""
    if shutil.which("gh") is None:
        raise SetupError("gh (GitHub's CLI) is not on PATH: install it and run `gh auth login`")
    command = ["gh", "api", "--method", method, "-H", "Accept: application/vnd.github+json"]
    command += [path] if body is None else ["--input", "-", path]
    result = subprocess.run(
        command,
        input=None if body is None else json.dumps(body),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        raise SetupError(
            f"gh api {method} {path} failed: {message[-1] if message else 'no output'}"
        )
    return json.loads(result.stdout) if result.stdout.strip() else None


def reviewer(spec: str, owner: str) -> dict[str, Any]:
    """`team:SLUG` (a team of the repository's organisation) or `user:LOGIN`, as GitHub's
    reviewer object (it wants numeric ids)."""
    kind, _, name = spec.partition(":")
    if kind == "team" and name:
        return {"type": "Team", "id": gh_api(f"orgs/{owner}/teams/{name}")["id"]}
    if kind == "user" and name:
        return {"type": "User", "id": gh_api(f"users/{name}")["id"]}
    raise SetupError(f"reviewer {spec!r} is not team:SLUG or user:LOGIN")


def desired(environment: str, reviewers: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "deployment_branch_policy": {"protected_branches": False, "custom_branch_policies": True}
    }
    if environment in APPROVERS:
        body |= {"reviewers": reviewers, "prevent_self_review": True}
    return body


def apply(repo: str, reviewer_specs: dict[str, list[str]]) -> None:
    owner = repo.partition("/")[0]
    # Every reviewer is looked up before anything changes: a typo protects nothing by half.
    reviewers = {
        environment: [reviewer(spec, owner) for spec in reviewer_specs.get(environment, [])]
        for environment in ENVIRONMENTS
    }
    for environment in ENVIRONMENTS:
        body = desired(environment, reviewers[environment])
        gh_api(f"repos/{repo}/environments/{environment}", "PUT", body)
        policies = gh_api(f"repos/{repo}/environments/{environment}/deployment-branch-policies")
        names = {policy["name"] for policy in (policies or {}).get("branch_policies", [])}
        if GITOPS_BRANCH not in names:
            gh_api(
                f"repos/{repo}/environments/{environment}/deployment-branch-policies",
                "POST",
                {"name": GITOPS_BRANCH, "type": "branch"},
            )
        approvers = ", ".join(reviewer_specs.get(environment, [])) or "none needed"
        print(f"{environment}: deploys from {GITOPS_BRANCH} only; approvers: {approvers}")


def problems(repo: str) -> list[str]:
    """What is missing, per environment, from what `apply` sets up."""
    found = []
    for environment in ENVIRONMENTS:
        try:
            state = gh_api(f"repos/{repo}/environments/{environment}")
        except SetupError as error:
            found.append(f"{environment}: {error}")
            continue
        rules = {rule["type"]: rule for rule in state.get("protection_rules", [])}
        policy = state.get("deployment_branch_policy") or {}
        if not policy.get("custom_branch_policies"):
            found.append(f"{environment}: any branch may deploy (no deployment branch policy)")
        if environment in APPROVERS:
            review = rules.get("required_reviewers")
            if not review or not review.get("reviewers"):
                found.append(f"{environment}: no required reviewers: anyone who may run the "
                             "Promote workflow deploys")  # fmt: skip
            elif not review.get("prevent_self_review"):
                found.append(f"{environment}: whoever starts a promotion may approve it")
    return found


def github(args: argparse.Namespace) -> int:
    if args.repo.count("/") != 1 or not all(args.repo.split("/")):
        raise SetupError(f"--repo {args.repo!r} is not OWNER/NAME")
    if args.check:
        found = problems(args.repo)
        for line in found:
            print(line)
        if found:
            print(f"run `python -m {__package__} ci-setup github --repo {args.repo}` to fix")
            return 1
        print(f"{', '.join(ENVIRONMENTS)}: protected as the pipelines expect")
        return 0
    reviewer_specs: dict[str, list[str]] = {
        environment: [f"team:{group}"] for environment, group in APPROVERS.items()
    }
    for given in args.reviewer:
        environment, _, spec = given.partition("=")
        if environment not in APPROVERS:
            raise SetupError(
                f"--reviewer {given!r}: name an environment that needs approval "
                f"({', '.join(APPROVERS) or 'none here'}) as ENV=team:SLUG or ENV=user:LOGIN"
            )
        reviewer_specs.setdefault(environment, [])
        if reviewer_specs[environment] == [f"team:{APPROVERS[environment]}"]:
            reviewer_specs[environment] = []  # given reviewers replace the default team
        reviewer_specs[environment].append(spec)
    apply(args.repo, reviewer_specs)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__} ci-setup",
        description="Set up what the CI platform must hold for the pipelines: protected "
        "environments with approvers.",
    )
    platforms = parser.add_subparsers(dest="platform", required=True, metavar="PLATFORM")
    sub = platforms.add_parser("github", help="GitHub environments, branch policies, reviewers")
    sub.add_argument("--repo", required=True, help="OWNER/NAME of this repository on GitHub")
    sub.add_argument(
        "--reviewer",
        action="append",
        default=[],
        metavar="ENV=team:SLUG|ENV=user:LOGIN",
        help="who approves ENV (repeatable; default: the team approvals.py names)",
    )
    sub.add_argument("--check", action="store_true", help="change nothing; exit 1 if unprotected")
    sub.set_defaults(handler=github)
    args = parser.parse_args(argv)
    return args.handler(args)

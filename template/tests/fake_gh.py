"""A stand-in for GitHub's CLI `gh api`, for the ci-setup tests: the REST endpoints
ci-setup calls, answered as GitHub answers them (ids for teams and users, environments
read back with their protection rules, 404 for what does not exist, 422 for a body GitHub
refuses), with the state in the JSON file FAKE_GH_STATE. Every call is logged there too.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    state_path = Path(os.environ["FAKE_GH_STATE"])
    state = json.loads(state_path.read_text())
    if argv[:1] != ["api"]:
        print(f"fake gh: only `gh api` is supported, not {argv}", file=sys.stderr)
        return 2
    method, path, body = "GET", "", None
    arguments = iter(argv[1:])
    for argument in arguments:
        if argument == "--method":
            method = next(arguments)
        elif argument == "-H":
            next(arguments)
        elif argument == "--input":
            assert next(arguments) == "-"
            body = json.loads(sys.stdin.read())
        else:
            path = argument
    state["calls"].append([method, path, body])
    status, answer = respond(state, method, path, body)
    state_path.write_text(json.dumps(state))
    if status >= 400:
        print(f"gh: {answer} (HTTP {status})", file=sys.stderr)
        return 1
    print(json.dumps(answer))
    return 0


def respond(state: dict, method: str, path: str, body: dict | None) -> tuple[int, object]:
    if match := re.fullmatch(r"orgs/[^/]+/teams/([^/]+)", path):
        team = state["teams"].get(match[1])
        return (200, {"id": team, "slug": match[1]}) if team else (404, "Not Found")
    if match := re.fullmatch(r"users/([^/]+)", path):
        user = state["users"].get(match[1])
        return (200, {"id": user, "login": match[1]}) if user else (404, "Not Found")
    if match := re.fullmatch(r"repos/[^/]+/[^/]+/environments/([^/]+)", path):
        name = match[1]
        if method == "PUT":
            policy = (body or {}).get("deployment_branch_policy")
            if policy and policy["protected_branches"] == policy["custom_branch_policies"]:
                return 422, "Validation Failed: exactly one of the two policies"
            if len((body or {}).get("reviewers") or []) > 6:
                return 422, "Validation Failed: at most 6 reviewers"
            state["environments"][name] = {"body": body, "branch_policies": state[
                "environments"].get(name, {}).get("branch_policies", [])}  # fmt: skip
            return 200, read_back(name, state["environments"][name])
        if name not in state["environments"]:
            return 404, "Not Found"
        return 200, read_back(name, state["environments"][name])
    if match := re.fullmatch(
        r"repos/[^/]+/[^/]+/environments/([^/]+)/deployment-branch-policies", path
    ):
        environment = state["environments"].get(match[1])
        if environment is None:
            return 404, "Not Found"
        if method == "POST":
            environment["branch_policies"].append({"name": body["name"], "type": body["type"]})
            return 200, environment["branch_policies"][-1]
        policies = environment["branch_policies"]
        return 200, {"total_count": len(policies), "branch_policies": policies}
    return 404, "Not Found"


def read_back(name: str, stored: dict) -> dict:
    """An environment as GET /repos/{owner}/{repo}/environments/{name} returns it."""
    body = stored["body"] or {}
    rules = []
    if body.get("reviewers"):
        rules.append({
            "type": "required_reviewers",
            "prevent_self_review": bool(body.get("prevent_self_review")),
            "reviewers": [
                {"type": r["type"], "reviewer": {"id": r["id"]}} for r in body["reviewers"]
            ],
        })  # fmt: skip
    if body.get("deployment_branch_policy"):
        rules.append({"type": "branch_policy"})
    return {
        "name": name,
        "protection_rules": rules,
        "deployment_branch_policy": body.get("deployment_branch_policy"),
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Emit `approvals.py` of a generated repository: who approves which environment.

The approvers of the spec's `approval: true` environments, as plain Python: the
generated repository's `ci-setup` command (environments with required reviewers on
GitHub) and its README read them. Environments a repository was generated without are
left out by the code itself, through gitops.settings.ENVIRONMENTS, so no Jinja is needed.
"""

from __future__ import annotations

from .pipeline import Pipeline


def emit(pipeline: Pipeline) -> str:
    entries = "".join(
        f'    "{env.name}": "{env.approvers}",\n' for env in pipeline.environments if env.approval
    )
    return (
        '"""Emitted from the template\'s ci/pipeline.yml by `modelyard render-ci`: who approves\n'
        "deploys to each environment (the spec's `approval: true` environments).\n"
        "\n"
        "Each value is a group: the GitHub team (`python -m <package> ci-setup github`), the\n"
        "GitLab group of the protected environment's approval rule, and the Jenkins users or\n"
        "groups of the promotion input's `submitter`.\n"
        '"""\n'
        "\n"
        "from .gitops.settings import ENVIRONMENTS\n"
        "\n"
        "_APPROVERS = {\n"
        f"{entries}"
        "}\n"
        "# Only the environments this repository has.\n"
        "APPROVERS: dict[str, str] = {\n"
        "    environment: group for environment, group in _APPROVERS.items() "
        "if environment in ENVIRONMENTS\n"
        "}\n"
    )

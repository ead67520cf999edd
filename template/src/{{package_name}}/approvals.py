"""Emitted from the template's ci/pipeline.yml by `modelyard render-ci`: who approves
deploys to each environment (the spec's `approval: true` environments).

Each value is a group: the GitHub team (`python -m <package> ci-setup github`), the
GitLab group of the protected environment's approval rule, and the Jenkins users or
groups of the promotion input's `submitter`.
"""

from .gitops.settings import ENVIRONMENTS

_APPROVERS = {
    "prod": "prod-approvers",
}
# Only the environments this repository has.
APPROVERS: dict[str, str] = {
    environment: group for environment, group in _APPROVERS.items() if environment in ENVIRONMENTS
}

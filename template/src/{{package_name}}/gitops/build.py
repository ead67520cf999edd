"""Which CI build made a release, so that an older build never replaces a newer one.

Builds of one repository finish out of order: a slow pipeline for commit A can reach its
deploy after the pipeline for A's child B has deployed. Each CI system numbers its
pipelines in the order they started (GitHub's run number of the workflow, GitLab's
pipeline IID of the project, Jenkins' build number of the branch job), and a re-run keeps
its number. The overlay records the number of the build that deployed it; a deploy from a
lower number of the same system leaves the overlay alone.

Numbers of different systems are not comparable (a repository that moved from Jenkins to
GitHub starts again at 1), and neither are those of a Jenkins job that was re-created or a
workflow file that was renamed: the next deploy then needs `--allow-older` once.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping

from ..errors import StageError

# What each CI system sets in every job: (system, the variable telling it is that system,
# the value it has there, None for any, the variable with the pipeline's number). Local
# runners say they are not the real thing (gitlab-ci-local sets GITLAB_CI=false).
SYSTEMS = (
    ("github", "GITHUB_ACTIONS", "true", "GITHUB_RUN_NUMBER"),
    ("gitlab", "GITLAB_CI", "true", "CI_PIPELINE_IID"),
    ("jenkins", "JENKINS_URL", None, "BUILD_NUMBER"),
)
_BUILD = re.compile(r"(?P<system>[a-z]+)-(?P<number>[1-9][0-9]{0,17})")


class BuildError(StageError):
    """A build identifier that is not SYSTEM-NUMBER."""


@dataclasses.dataclass(frozen=True)
class Build:
    system: str
    number: int

    @classmethod
    def parse(cls, text: str) -> Build:
        match = _BUILD.fullmatch(text.strip())
        if not match:
            raise BuildError(
                f"build {text!r} is not SYSTEM-NUMBER (for example github-42, gitlab-7, "
                "jenkins-130)"
            )
        return cls(system=match["system"], number=int(match["number"]))

    def newer_than(self, other: Build) -> bool:
        """True only when both come from one system and this one started later."""
        return self.system == other.system and self.number > other.number

    def __str__(self) -> str:
        return f"{self.system}-{self.number}"


def current(environ: Mapping[str, str] = os.environ) -> Build | None:
    """The CI build this process runs in, None outside CI (a person deploying by hand)."""
    for system, marker, expected, number in SYSTEMS:
        found = environ.get(marker, "")
        value = environ.get(number, "")
        ours = found == expected if expected is not None else bool(found)
        if ours and value.isdigit() and int(value) > 0:
            return Build(system=system, number=int(value))
    return None

"""The champion: the model that a profile's runs must not fall behind.

A champion record is the held-out evaluation of the model the last environment (prod)
runs. Promoting a model into that environment writes it, in the same GitOps commit as the
overlay (`gitops promote`); `accept-champion` writes one by hand. There is one file per
profile (`deploy/champions/<profile>.json`), and each record says which family, profile
and data it was measured on, so that:
- a smoke run's accuracy on synthetic data never gates a real run (another profile's
  champion is refused, whatever file the config names);
- a champion of another model family is refused;
- a champion measured on other data (a new dataset version) is reported and not
  compared: accuracies on different test sets say nothing about each other.

Standard library only: the GitOps jobs that record champions install neither torch nor
PyYAML.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from .errors import ArtifactError

# What an evaluation records about itself: export.json's `evaluation`, the overlay's
# `modelyard.io/evaluation` annotation and every champion record carry these keys.
EVALUATION_KEYS = ("accuracy", "profile", "family", "data_sha256")
# Champions live beside the overlays, in the deploy directory that Argo CD reads
# (gitops/settings.py's DEPLOY_DIR; a test holds the two equal), so that a promotion
# records one in the same commit as the overlay it changes.
DEFAULT_DEPLOY_DIR = "deploy"
RECORDED_BY_PROMOTION = "promotion to the last environment"


def champion_file(profile: str, deploy_dir: str | Path = DEFAULT_DEPLOY_DIR) -> Path:
    """Where a profile's champion is recorded."""
    return Path(deploy_dir) / "champions" / f"{profile}.json"


@dataclasses.dataclass(frozen=True)
class Champion:
    accuracy: float
    profile: str
    family: str
    data_sha256: str
    metrics_digest: str
    # How it became the champion: RECORDED_BY_PROMOTION, or "accept-champion".
    recorded_by: str
    model_version: str | None = None
    image: str | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"


def evaluation_facts(value: Any, where: str) -> dict[str, Any]:
    """`value` checked as an evaluation record (EVALUATION_KEYS); ArtifactError if not."""
    if not isinstance(value, dict) or any(key not in value for key in EVALUATION_KEYS):
        raise ArtifactError(
            f"{where} is not an evaluation record: it needs {', '.join(EVALUATION_KEYS)} "
            "(written by evaluate since the release that made champions per profile)"
        )
    accuracy = value["accuracy"]
    if isinstance(accuracy, bool) or not isinstance(accuracy, int | float):
        raise ArtifactError(f"{where} has accuracy {accuracy!r}: expected a number in [0, 1]")
    if not 0 <= accuracy <= 1:
        raise ArtifactError(f"{where} has accuracy {accuracy!r}: expected a number in [0, 1]")
    for key in EVALUATION_KEYS[1:]:
        if not isinstance(value[key], str) or not value[key]:
            raise ArtifactError(f"{where} has {key} {value[key]!r}: expected a non-empty string")
    return {key: value[key] for key in EVALUATION_KEYS}


def read(path: Path) -> Champion | None:
    """The champion recorded in `path`, or None when there is none."""
    if not path.is_file():
        return None
    where = f"champion {path}"
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ArtifactError(
            f"{where} is unreadable ({error}): rewrite it with `accept-champion` or delete it"
        ) from error
    facts = evaluation_facts(value, where)
    return Champion(
        accuracy=float(facts["accuracy"]),
        profile=facts["profile"],
        family=facts["family"],
        data_sha256=facts["data_sha256"],
        metrics_digest=str(value.get("metrics_digest", "")),
        recorded_by=str(value.get("recorded_by", "")),
        model_version=value.get("model_version"),
        image=value.get("image"),
    )


def write(path: Path, champion: Champion) -> bool:
    """Record `champion` in `path`; True when the file changed."""
    text = champion.to_json()
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True


def check_comparable(champion: Champion, path: Path, profile: str, family: str) -> None:
    """Refuse a champion of another profile or family (ArtifactError): its accuracy says
    nothing about this run, and comparing would gate real runs on smoke metrics."""
    if champion.family != family:
        raise ArtifactError(
            f"champion {path} is a {champion.family} model and this is {family}: delete it or "
            "point gate.champion_metrics at this family's champion"
        )
    if champion.profile != profile:
        raise ArtifactError(
            f"champion {path} was measured with profile {champion.profile!r} and this run "
            f"uses {profile!r}: each profile has its own champion "
            f"({champion_file('<profile>')}); fix gate.champion_metrics"
        )

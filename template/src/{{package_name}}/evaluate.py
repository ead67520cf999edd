"""Held-out evaluation and the quality gate.

`run` scores the checkpoint on the test split (accuracy, per-class precision/recall/F1,
confusion matrix), writes `evaluation.json` with a `metrics_digest`, and fails with
GateFailed (exit 1) when accuracy is below `gate.min_accuracy` or more than
`gate.max_regression` below the profile's champion (champion.py: a champion of another
profile or family is refused, one measured on other data is not compared).
`accept_champion` records an evaluation that passed as the champion by hand; a promotion
to the last environment records one as well (gitops).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from . import artifacts, champion, data, modeling, provenance
from .config import Config, GateConfig
from .errors import ArtifactError, GateFailed
from .metrics import classification_metrics

# The table lists at most this many classes; evaluation.json always has all of them.
MAX_PRINTED_CLASSES = 20
# Accuracies are rounded to 6 decimals: a value exactly at a threshold passes.
TOLERANCE = 1e-9


@dataclasses.dataclass(frozen=True)
class GateResult:
    # One sentence per check, passed or not, in the order the checks ran.
    reasons: tuple[str, ...]
    # The sentences of the checks that failed; the gate passes when there are none.
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


def check_gate(
    metrics: dict[str, Any],
    gate: GateConfig,
    champion_accuracy: float | None,
    champion_path: str,
    no_champion_reason: str | None = None,
) -> GateResult:
    """Decide whether `metrics` may ship; every reason is a sentence a reviewer can read.
    Without a champion accuracy, `no_champion_reason` says why (default: none recorded)."""
    accuracy = metrics["accuracy"]
    reasons, failures = [], []
    score = f"held-out accuracy {accuracy:.4f} ({metrics['correct']}/{metrics['examples']} correct)"
    if accuracy + TOLERANCE < gate.min_accuracy:
        failures.append(f"{score} is below gate.min_accuracy {gate.min_accuracy:.4f}")
        reasons.append(failures[-1])
    else:
        reasons.append(f"{score} meets gate.min_accuracy {gate.min_accuracy:.4f}")
    if champion_accuracy is None:
        reasons.append(
            no_champion_reason or f"no champion recorded in {champion_path}, so no regression check"
        )
    else:
        floor = champion_accuracy - gate.max_regression
        if accuracy + TOLERANCE < floor:
            failures.append(
                f"accuracy {accuracy:.4f} is {champion_accuracy - accuracy:.4f} below the "
                f"champion's {champion_accuracy:.4f} ({champion_path}); gate.max_regression "
                f"{gate.max_regression:.4f} allows no less than {floor:.4f}"
            )
            reasons.append(failures[-1])
        else:
            reasons.append(
                f"within gate.max_regression {gate.max_regression:.4f} of the champion's "
                f"{champion_accuracy:.4f} ({champion_path})"
            )
    return GateResult(tuple(reasons), tuple(failures))


def champion_to_compare(config: Config, data_sha256: str) -> tuple[float | None, str | None]:
    """The champion accuracy to gate against, or None and the reason there is none."""
    path = config.champion_path
    recorded = champion.read(path)
    if recorded is None:
        return None, None
    champion.check_comparable(recorded, path, config.profile, config.model.family)
    if recorded.data_sha256 != data_sha256:
        return None, (
            f"the champion in {path} was measured on data {recorded.data_sha256[:19]}, this "
            f"run on {data_sha256[:19]}: accuracies on different data are not compared, so "
            "no regression check (promote or accept a model trained on this data to compare)"
        )
    return recorded.accuracy, None


def run(config: Config) -> dict[str, Any]:
    """Evaluate on the test split, write evaluation.json, raise GateFailed if the gate fails."""
    checkpoint = modeling.load_checkpoint(config, needed_by="evaluate")
    artifacts.discard_later_outputs("evaluate", config.artifacts)
    splits = data.load_splits(config)
    if splits.test.class_names != checkpoint.class_names:
        raise ArtifactError(
            f"the model was trained on classes {list(checkpoint.class_names)}, but the "
            f"dataset has {list(splits.test.class_names)}: train again on this dataset"
        )
    _check_same_data(config, splits.data_sha256)
    device = modeling.resolve_device(config.train.device)
    logits = modeling.predict_logits(
        checkpoint.model.to(device), splits.test.x, checkpoint.encoder, device
    )
    metrics = classification_metrics(splits.test.y, logits.argmax(axis=1), checkpoint.class_names)
    champion_path = config.champion_path
    champion_accuracy, no_champion_reason = champion_to_compare(config, splits.data_sha256)
    result = check_gate(
        metrics, config.gate, champion_accuracy, str(champion_path), no_champion_reason
    )
    evaluation = {
        "metrics": metrics,
        "metrics_digest": provenance.metrics_digest(metrics),
        "checkpoint_sha256": provenance.file_sha256(modeling.checkpoint_path(config)),
        # What the champion records: the gate compares like with like (champion.py).
        "evaluation": {
            "accuracy": metrics["accuracy"],
            "profile": config.profile,
            "family": config.model.family,
            "data_sha256": splits.data_sha256,
        },
        "gate": {
            "passed": result.passed,
            "reasons": list(result.reasons),
            "failures": list(result.failures),
            "min_accuracy": config.gate.min_accuracy,
            "max_regression": config.gate.max_regression,
            "champion_metrics": str(champion_path),
        },
    }
    out = config.artifacts / artifacts.EVALUATION
    out.write_text(json.dumps(evaluation, indent=2) + "\n", encoding="utf-8")
    summary = config.artifacts / artifacts.EVALUATION_SUMMARY
    summary.write_text(format_markdown(metrics, result), encoding="utf-8")
    print(format_report(metrics, result))
    print(f"wrote {out}")
    if not result.passed:
        raise GateFailed("quality gate failed: " + "; ".join(result.failures))
    return evaluation


def format_report(metrics: dict[str, Any], result: GateResult) -> str:
    """The per-class table, the accuracy and the verdict, as printed by `evaluate`."""
    per_class = metrics["per_class"]
    width = max(12, *(len(row["class"]) for row in per_class))
    lines = [f"{'class':<{width}} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}"]
    for row in per_class[:MAX_PRINTED_CLASSES]:
        lines.append(
            f"{row['class']:<{width}} {row['precision']:>9.4f} {row['recall']:>9.4f} "
            f"{row['f1']:>9.4f} {row['support']:>8d}"
        )
    if len(per_class) > MAX_PRINTED_CLASSES:
        lines.append(
            f"... {len(per_class) - MAX_PRINTED_CLASSES} more classes in {artifacts.EVALUATION}"
        )
    lines.append(
        f"{'macro avg':<{width}} {metrics['macro_precision']:>9.4f} "
        f"{metrics['macro_recall']:>9.4f} {metrics['macro_f1']:>9.4f} {metrics['examples']:>8d}"
    )
    lines.append(f"accuracy {metrics['accuracy']:.4f} on {metrics['examples']} held-out examples")
    lines.append(f"quality gate: {'PASSED' if result.passed else 'FAILED'}")
    lines.extend(f"  - {reason}" for reason in result.reasons)
    return "\n".join(lines)


def format_markdown(metrics: dict[str, Any], result: GateResult) -> str:
    """The verdict and the per-class table in Markdown (CI job summaries show it)."""
    verdict = "passed :white_check_mark:" if result.passed else "FAILED :x:"
    lines = [
        f"### Quality gate {verdict}",
        "",
        f"Accuracy **{metrics['accuracy']:.4f}** on {metrics['examples']} held-out examples.",
        "",
        *(f"- {reason}" for reason in result.reasons),
        "",
        "| class | precision | recall | f1 | support |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in metrics["per_class"][:MAX_PRINTED_CLASSES]:
        lines.append(
            f"| {row['class']} | {row['precision']:.4f} | {row['recall']:.4f} "
            f"| {row['f1']:.4f} | {row['support']} |"
        )
    lines.append(
        f"| **macro avg** | {metrics['macro_precision']:.4f} | {metrics['macro_recall']:.4f} "
        f"| {metrics['macro_f1']:.4f} | {metrics['examples']} |"
    )
    return "\n".join(lines) + "\n"


def _check_same_data(config: Config, data_sha256: str) -> None:
    """The test split must come from the data the model was trained on."""
    metrics_path = config.artifacts / artifacts.METRICS
    artifacts.require(metrics_path, "evaluate", "train", config.source)
    try:
        trained_on = json.loads(metrics_path.read_text(encoding="utf-8")).get("data_sha256")
    except (OSError, ValueError, AttributeError) as error:
        raise ArtifactError(f"{metrics_path} is unreadable ({error}): train again") from error
    if trained_on != data_sha256:
        raise ArtifactError(
            f"the model was trained on data {trained_on}, but {config.data.path or 'the data'} "
            f"now holds {data_sha256}: train again on this data, or restore the data it was "
            "trained on (`dvc checkout`)"
        )


def read_evaluation(config: Config, needed_by: str) -> dict[str, Any]:
    """evaluation.json of the last `evaluate` run; an ArtifactError says to run it."""
    path = config.artifacts / artifacts.EVALUATION
    artifacts.require(path, needed_by, "evaluate", config.source)
    try:
        evaluation: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        passed = evaluation["gate"]["passed"]
        digest = evaluation["metrics_digest"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ArtifactError(f"{path} is unreadable ({error!r}): run evaluate again") from error
    if not isinstance(passed, bool) or not isinstance(digest, str):
        raise ArtifactError(f"{path} lacks gate.passed or metrics_digest: run evaluate again")
    return evaluation


def accept_champion(config: Config) -> Path:
    """Record the last evaluation, which must have passed the gate, as the champion."""
    evaluation = read_evaluation(config, needed_by="accept-champion")
    if not evaluation["gate"]["passed"]:
        raise GateFailed(
            f"{config.artifacts / artifacts.EVALUATION} records a failed quality gate: a model "
            "that failed the gate cannot become the champion"
        )
    facts = champion.evaluation_facts(
        evaluation.get("evaluation"), str(config.artifacts / artifacts.EVALUATION)
    )
    if facts["profile"] != config.profile:
        raise ArtifactError(
            f"{config.artifacts / artifacts.EVALUATION} was evaluated with profile "
            f"{facts['profile']!r}, not {config.profile!r}: a champion is recorded for the "
            "profile it was measured with"
        )
    record = champion.Champion(
        accuracy=float(facts["accuracy"]),
        profile=facts["profile"],
        family=facts["family"],
        data_sha256=facts["data_sha256"],
        metrics_digest=evaluation["metrics_digest"],
        recorded_by="accept-champion",
        model_version=provenance.model_version(provenance.git_commit()),
    )
    path = config.champion_path
    champion.write(path, record)
    print(
        f"recorded accuracy {record.accuracy:.4f} ({record.metrics_digest}) of profile "
        f"{record.profile} as the champion in {path}; commit it so that later runs of this "
        "profile are gated against it"
    )
    return path

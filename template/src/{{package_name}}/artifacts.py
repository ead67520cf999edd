"""The files each stage writes under `config.artifacts`, and clearing what a rerun makes stale.

When a stage runs again, whatever the later stages wrote describes a model that no longer
exists: a failed gate must not leave an earlier run's model.onnx lying around to be
served. So each stage first removes the outputs of the stages after it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .errors import ArtifactError

# Where CI jobs keep them: the Dockerfile copies the model from here, the CI files pass
# these paths between jobs (the template's tests hold its ci/pipeline.yml to this module),
# and the image and gitops stages read and write here.
ARTIFACTS_DIR = "artifacts"

CHECKPOINT = "model.pt"
METRICS = "metrics.json"
PLOTS = "plots"
EVALUATION = "evaluation.json"
# The same verdict as a Markdown table, for CI job summaries and merge request comments.
EVALUATION_SUMMARY = "evaluation.md"
ONNX = "model.onnx"
EXPORT = "export.json"
# A text model's tokenizer beside the model (the model carries the same bytes).
TOKENIZER = "tokenizer.json"
PARITY = "parity.json"
# build-image saves the image here, for the push job (possibly on another machine).
IMAGE_ARCHIVE = "image.tar"
# push-image: the digest for people and scripts, and a dotenv for the deploy job.
IMAGE_DIGEST = "image-digest.txt"
IMAGE_DOTENV = "image.env"

# In pipeline order. A new model makes a built image stale too.
STAGE_OUTPUTS: dict[str, tuple[str, ...]] = {
    "train": (CHECKPOINT, METRICS, PLOTS),
    "evaluate": (EVALUATION, EVALUATION_SUMMARY),
    "export": (ONNX, EXPORT, TOKENIZER),
    "verify": (PARITY,),
    "build": (IMAGE_ARCHIVE,),
    "push": (IMAGE_DIGEST, IMAGE_DOTENV),
}


def discard_later_outputs(stage: str, artifacts_dir: Path) -> None:
    """Delete what the stages after `stage` wrote into `artifacts_dir`."""
    stages = list(STAGE_OUTPUTS)
    for later in stages[stages.index(stage) + 1 :]:
        for name in STAGE_OUTPUTS[later]:
            path = artifacts_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


# What each stage's outputs are to the stages after it, for the missing-artifact message.
_PRODUCED_BY = {
    "train": "a trained model",
    "evaluate": "an evaluated model",
    "export": "an exported model",
}


def require(path: Path, needed_by: str, stage: str, config_source: str) -> None:
    """Raise an ArtifactError naming the stage to run when its output `path` is missing."""
    if not path.is_file():
        raise ArtifactError(
            f"{path} not found: {needed_by} needs {_PRODUCED_BY[stage]}; run "
            f"`python -m {__package__} {stage} --config {config_source}` first"
        )

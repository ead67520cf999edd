"""Export the gated checkpoint to a single-file ONNX model with provenance metadata.

The ONNX model takes `input` float32 [batch, C, H, W] in [0, 1] and returns `logits`
float32 [batch, num_classes]; the batch axis is dynamic and the opset pinned by
`export.opset`. Its metadata (model name and version, git commit, metrics digest, class
names, input shape) lets the server, and anyone holding the file, trace it back; the
reference distribution of the training data (drift.py) lets the server's metrics show
drift.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from . import MODEL_NAME, artifacts, data, drift, evaluate, modeling, provenance
from .config import Config
from .errors import ArtifactError, GateFailed, StageError
from .families import get_family

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
BATCH_AXIS = "batch"
REGISTRATION_LOGGER = "torch.onnx._internal.exporter._registration"


class ExportFailed(StageError):
    """torch.onnx could not export the model, or the result breaks the ONNX contract."""


def run(config: Config) -> dict[str, Any]:
    """Export model.pt to model.onnx and write export.json; refuses an ungated model."""
    checkpoint = modeling.load_checkpoint(config, needed_by="export")
    evaluation = evaluate.read_evaluation(config, needed_by="export")
    if not evaluation["gate"]["passed"]:
        raise GateFailed(
            f"{config.artifacts / artifacts.EVALUATION} records a failed quality gate: "
            "nothing is exported"
        )
    if evaluation.get("checkpoint_sha256") != provenance.file_sha256(
        modeling.checkpoint_path(config)
    ):
        raise ArtifactError(
            f"{config.artifacts / artifacts.EVALUATION} was computed for another "
            f"{artifacts.CHECKPOINT}: run evaluate again before exporting"
        )

    artifacts.discard_later_outputs("export", config.artifacts)
    commit = provenance.git_commit()
    input_shape = list(checkpoint.model_config.input_shape)
    facts: dict[str, Any] = {
        "model_name": MODEL_NAME,
        "model_version": provenance.model_version(commit),
        "git_commit": commit,
        "metrics_digest": evaluation["metrics_digest"],
        "opset": config.export.opset,
        "input_shape": input_shape,
        "num_classes": checkpoint.model_config.num_classes,
        "class_names": list(checkpoint.class_names),
    }
    facts["reference_distribution"] = reference_distribution(config, checkpoint)
    model_proto = export_onnx(checkpoint.model, input_shape, config.export.opset, config.seed)
    set_metadata(model_proto, onnx_metadata(facts))
    check_contract(model_proto, input_shape, facts["num_classes"], config.export.opset)

    onnx_path = config.artifacts / artifacts.ONNX
    # One self-contained file: the serving image copies exactly one artifact.
    onnx.save_model(model_proto, onnx_path, save_as_external_data=False)
    facts["onnx_sha256"] = provenance.file_sha256(onnx_path)
    export_path = config.artifacts / artifacts.EXPORT
    export_path.write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    print(
        f"exported {onnx_path} ({onnx_path.stat().st_size / 1024:.0f} KiB, opset "
        f"{config.export.opset}, version {facts['model_version']}); wrote {export_path}"
    )
    return facts


def reference_distribution(config: Config, checkpoint: modeling.Checkpoint) -> dict[str, Any]:
    """The training split as drift monitoring sees it (drift.py), from at most
    drift.MAX_REFERENCE_ROWS seeded rows: the server compares live traffic with it."""
    train = data.load_splits(config).train
    if len(train) > drift.MAX_REFERENCE_ROWS:
        rows = np.random.default_rng(config.seed).choice(
            len(train), drift.MAX_REFERENCE_ROWS, replace=False
        )
        train = train.subset(np.sort(rows))
    logits = modeling.predict_logits(checkpoint.model.cpu(), train.x, torch.device("cpu"))
    reference = drift.build_reference(
        data.to_model_input(train.x),
        logits,
        INPUT_NAME,
        get_family(checkpoint.model_config.family).summary_axis,
    )
    return json.loads(reference.to_json())


def export_onnx(model: nn.Module, input_shape: list[int], opset: int, seed: int) -> onnx.ModelProto:
    """The dynamo exporter's ONNX graph with a dynamic batch axis, in memory."""
    model = model.cpu().eval()
    # Batch 2, not 1: torch.export specialises a dimension of size 1 to a constant.
    example = torch.rand((2, *input_shape), generator=torch.Generator().manual_seed(seed))
    try:
        with warnings.catch_warnings(), _quiet_logger(REGISTRATION_LOGGER):
            # The exporter's deprecation chatter and its "torchvision is not installed"
            # notes say nothing about this model.
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                dynamic_shapes=({0: torch.export.Dim(BATCH_AXIS)},),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                external_data=False,
                verbose=False,
            )
    except Exception as error:  # the exporter raises many types; all mean the same here
        raise ExportFailed(f"torch.onnx.export failed: {error}") from error
    if program is None:
        raise ExportFailed("torch.onnx.export returned no program")
    return program.model_proto


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def onnx_metadata(facts: dict[str, Any]) -> dict[str, str]:
    """ONNX metadata_props: strings only, so lists are JSON."""
    return {
        "model_name": facts["model_name"],
        "model_version": facts["model_version"],
        "git_commit": facts["git_commit"],
        "metrics_digest": facts["metrics_digest"],
        "class_names": json.dumps(facts["class_names"]),
        "input_shape": json.dumps(facts["input_shape"]),
        drift.METADATA_KEY: json.dumps(facts["reference_distribution"], separators=(",", ":")),
    }


def set_metadata(model_proto: onnx.ModelProto, metadata: dict[str, str]) -> None:
    del model_proto.metadata_props[:]
    for key, value in metadata.items():
        model_proto.metadata_props.add(key=key, value=value)
    model_proto.producer_name = MODEL_NAME


def check_contract(
    model_proto: onnx.ModelProto, input_shape: list[int], num_classes: int, opset: int
) -> None:
    """onnx.checker plus the interface the server relies on."""
    try:
        onnx.checker.check_model(model_proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise ExportFailed(f"the exported model fails onnx.checker: {error}") from error
    default_opsets = [
        entry.version for entry in model_proto.opset_import if entry.domain in ("", "ai.onnx")
    ]
    expected = {
        "opset": [opset],
        "inputs": [(INPUT_NAME, onnx.TensorProto.FLOAT, [BATCH_AXIS, *input_shape])],
        "outputs": [(OUTPUT_NAME, onnx.TensorProto.FLOAT, [BATCH_AXIS, num_classes])],
    }
    actual = {
        "opset": default_opsets,
        "inputs": [_describe(value) for value in model_proto.graph.input],
        "outputs": [_describe(value) for value in model_proto.graph.output],
    }
    for key, wanted in expected.items():
        if actual[key] != wanted:
            raise ExportFailed(f"the exported model has {key} {actual[key]}, expected {wanted}")


def _describe(value: onnx.ValueInfoProto) -> tuple[str, int, list[int | str]]:
    tensor = value.type.tensor_type
    dims: list[int | str] = [dim.dim_param or dim.dim_value for dim in tensor.shape.dim]
    return value.name, tensor.elem_type, dims


def read_export(config: Config, needed_by: str) -> tuple[Path, dict[str, Any]]:
    """model.onnx and export.json of the last `export` run."""
    onnx_path = config.artifacts / artifacts.ONNX
    export_path = config.artifacts / artifacts.EXPORT
    for path in (onnx_path, export_path):
        artifacts.require(path, needed_by, "export", config.source)
    try:
        facts: dict[str, Any] = json.loads(export_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ArtifactError(f"{export_path} is unreadable ({error}): run export again") from error
    if not isinstance(facts, dict):
        raise ArtifactError(f"{export_path} must hold a JSON object: run export again")
    return onnx_path, facts

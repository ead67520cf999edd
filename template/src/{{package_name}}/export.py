"""Export the gated checkpoint to a single-file ONNX model with provenance metadata.

The ONNX model takes the family's input (`ModelInput`: `input` float32 [batch, C, H, W]
in [0, 1] for images, `input` float32 [batch, sequence, features] for series, `input_ids`
int64 [batch, sequence] for text) and returns `logits` float32 [batch, num_classes]; the
batch and sequence axes are dynamic and the opset pinned by `export.opset`. Its metadata
(model name and version, git commit, metrics digest, the data's sha256, class names,
input shape) lets the server, and anyone holding the file, trace it back; the reference
distribution of the training data (drift.py) lets the server's metrics show drift; a text
model also carries its tokenizer (`input_encoder`), so the file is all a server needs.
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

from . import (
    MODEL_NAME,
    artifacts,
    champion,
    data,
    drift,
    evaluate,
    modeling,
    provenance,
    tokenization,
)
from .config import Config
from .errors import ArtifactError, GateFailed, StageError
from .families import ModelInput, get_family
from .families.interface import SEQUENCE_AXIS

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
    family = get_family(checkpoint.model_config.family)
    model_input = family.model_input(checkpoint.model_config, checkpoint.encoder)
    evaluated = champion.evaluation_facts(
        evaluation.get("evaluation"), str(config.artifacts / artifacts.EVALUATION)
    )
    facts: dict[str, Any] = {
        "model_name": MODEL_NAME,
        "model_version": provenance.model_version(commit),
        "git_commit": commit,
        "metrics_digest": evaluation["metrics_digest"],
        "data_sha256": evaluated["data_sha256"],
        # The gate's verdict in the champion's terms: deploys carry it to the overlays,
        # and a promotion to the last environment records it as the champion.
        "evaluation": evaluated,
        "opset": config.export.opset,
        "family": checkpoint.model_config.family,
        "input_shape": list(checkpoint.model_config.input_shape),
        "num_classes": checkpoint.model_config.num_classes,
        "class_names": list(checkpoint.class_names),
        "input_encoder": checkpoint.encoder.serving_metadata(),
    }
    facts["reference_distribution"] = reference_distribution(
        config, checkpoint, model_input.name, evaluated["data_sha256"]
    )
    model_proto = export_onnx(checkpoint.model, model_input, config.export.opset, config.seed)
    set_metadata(model_proto, onnx_metadata(facts))
    check_contract(model_proto, model_input, facts["num_classes"], config.export.opset)

    onnx_path = config.artifacts / artifacts.ONNX
    # One self-contained file: the serving image copies exactly one artifact.
    onnx.save_model(model_proto, onnx_path, save_as_external_data=False)
    facts["onnx_sha256"] = provenance.file_sha256(onnx_path)
    export_path = config.artifacts / artifacts.EXPORT
    export_path.write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    tokenizer_path = config.artifacts / artifacts.TOKENIZER
    also = (
        f" and {tokenizer_path}"
        if tokenization.write_tokenizer_file(facts["input_encoder"], tokenizer_path)
        else ""
    )
    print(
        f"exported {onnx_path} ({onnx_path.stat().st_size / 1024:.0f} KiB, opset "
        f"{config.export.opset}, version {facts['model_version']}); wrote {export_path}{also}"
    )
    return facts


def reference_distribution(
    config: Config, checkpoint: modeling.Checkpoint, input_name: str, evaluated_data_sha256: str
) -> dict[str, Any]:
    """The training split as drift monitoring sees it (drift.py), from at most
    drift.MAX_REFERENCE_ROWS seeded rows: the server compares live traffic with it."""
    splits = data.load_splits(config)
    if splits.data_sha256 != evaluated_data_sha256:
        raise ArtifactError(
            f"{config.data.path or 'the data'} changed since evaluate ran: run evaluate again"
        )
    train = splits.train
    if len(train) > drift.MAX_REFERENCE_ROWS:
        rows = np.random.default_rng(config.seed).choice(
            len(train), drift.MAX_REFERENCE_ROWS, replace=False
        )
        train = train.subset(np.sort(rows))
    encoder = checkpoint.encoder
    logits = modeling.predict_logits(checkpoint.model.cpu(), train.x, encoder, torch.device("cpu"))
    reference = drift.build_reference(
        encoder.encode(train.x),
        logits,
        input_name,
        get_family(checkpoint.model_config.family).input_summary(encoder),
    )
    return json.loads(reference.to_json())


def export_onnx(
    model: nn.Module, model_input: ModelInput, opset: int, seed: int
) -> onnx.ModelProto:
    """The dynamo exporter's ONNX graph with dynamic batch (and sequence) axes, in memory."""
    model = model.cpu().eval()
    generator = np.random.default_rng(seed)
    # Size 2 or more on every dynamic axis: torch.export specialises a size of 1 to a
    # constant.
    sequence_length = None
    if model_input.sequence_axis is not None:
        sequence_length = min(8, model_input.max_length or 8)
    example = torch.from_numpy(model_input.random(2, sequence_length, generator))
    dynamic_axes: dict[int, Any] = {0: torch.export.Dim(BATCH_AXIS)}
    if model_input.sequence_axis is not None:
        bounds = {} if model_input.max_length is None else {"max": model_input.max_length}
        dynamic_axes[model_input.sequence_axis] = torch.export.Dim(SEQUENCE_AXIS, **bounds)
    try:
        with warnings.catch_warnings(), _quiet_logger(REGISTRATION_LOGGER):
            # The exporter's deprecation chatter and its "torchvision is not installed"
            # notes say nothing about this model.
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            # nn.LSTM/GRU re-assign their flattened weights while traced; harmless.
            warnings.filterwarnings("ignore", "The tensor attributes .* assigned during export")
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                dynamic_shapes=(dynamic_axes,),
                input_names=[model_input.name],
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
    metadata = {
        "model_name": facts["model_name"],
        "model_version": facts["model_version"],
        "git_commit": facts["git_commit"],
        "metrics_digest": facts["metrics_digest"],
        "data_sha256": facts["data_sha256"],
        "family": facts["family"],
        "class_names": json.dumps(facts["class_names"]),
        "input_shape": json.dumps(facts["input_shape"]),
        drift.METADATA_KEY: json.dumps(facts["reference_distribution"], separators=(",", ":")),
    }
    if facts["input_encoder"] is not None:
        # What the server needs besides the graph to take raw input (a tokenizer).
        metadata[tokenization.METADATA_KEY] = json.dumps(facts["input_encoder"], ensure_ascii=False)
    return metadata


def set_metadata(model_proto: onnx.ModelProto, metadata: dict[str, str]) -> None:
    del model_proto.metadata_props[:]
    for key, value in metadata.items():
        model_proto.metadata_props.add(key=key, value=value)
    model_proto.producer_name = MODEL_NAME


def check_contract(
    model_proto: onnx.ModelProto, model_input: ModelInput, num_classes: int, opset: int
) -> None:
    """onnx.checker plus the interface the server relies on."""
    try:
        onnx.checker.check_model(model_proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise ExportFailed(f"the exported model fails onnx.checker: {error}") from error
    default_opsets = [
        entry.version for entry in model_proto.opset_import if entry.domain in ("", "ai.onnx")
    ]
    element_type = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(model_input.dtype))
    dims = [SEQUENCE_AXIS if size is None else size for size in model_input.shape]
    expected = {
        "opset": [opset],
        "inputs": [(model_input.name, element_type, [BATCH_AXIS, *dims])],
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

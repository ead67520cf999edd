"""ONNX vs PyTorch parity: the exported file must compute what the checkpoint computes.

For every `verify.batch_sizes` entry (and, for inputs with a sequence axis, every
`verify.sequence_lengths` entry the model takes), seeded inputs of the family's kind
(`ModelInput.random`: pixels in [0, 1], series, or token ids with padding) go through the
PyTorch model and through onnxruntime; the logits must agree within `verify.atol` +
`verify.rtol` * |x| and give the same argmax. The ONNX metadata must match export.json,
and the file the hash recorded there. Writes `parity.json`; a mismatch is a ParityError
(exit 1).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import onnx
import onnxruntime
import torch

from . import artifacts, export, modeling, provenance
from .config import Config, ConfigError
from .errors import ParityError
from .families import ModelInput, get_family


@dataclasses.dataclass(frozen=True)
class BatchParity:
    batch_size: int
    # None for inputs without a sequence axis (images).
    sequence_length: int | None
    max_abs_diff: float
    within_tolerance: bool
    argmax_agreement: float

    @property
    def passed(self) -> bool:
        return self.within_tolerance and self.argmax_agreement == 1.0


def compare_logits(
    batch_size: int,
    sequence_length: int | None,
    expected: np.ndarray,
    actual: np.ndarray,
    atol: float,
    rtol: float,
) -> BatchParity:
    """Compare PyTorch logits (`expected`) with onnxruntime's (`actual`)."""
    if expected.shape != actual.shape:
        return BatchParity(batch_size, sequence_length, float("inf"), False, 0.0)
    difference = np.abs(expected.astype(np.float64) - actual.astype(np.float64))
    return BatchParity(
        batch_size=batch_size,
        sequence_length=sequence_length,
        max_abs_diff=float(difference.max()),
        within_tolerance=bool(np.all(difference <= atol + rtol * np.abs(expected))),
        argmax_agreement=float(np.mean(expected.argmax(axis=1) == actual.argmax(axis=1))),
    )


def metadata_mismatches(onnx_metadata: dict[str, str], facts: dict[str, Any]) -> list[str]:
    """Metadata keys whose ONNX value differs from what export.json says it should be."""
    expected = export.onnx_metadata(facts)
    return [
        f"{key}: ONNX has {onnx_metadata.get(key)!r}, export.json says {value!r}"
        for key, value in expected.items()
        if onnx_metadata.get(key) != value
    ]


def run(config: Config) -> dict[str, Any]:
    """Check parity and metadata, write parity.json, raise ParityError on any mismatch."""
    checkpoint = modeling.load_checkpoint(config, needed_by="verify")
    onnx_path, facts = export.read_export(config, needed_by="verify")
    problems = []
    onnx_sha256 = provenance.file_sha256(onnx_path)
    if facts.get("onnx_sha256") != onnx_sha256:
        problems.append(
            f"{onnx_path} has sha256 {onnx_sha256}, export.json records {facts.get('onnx_sha256')}"
        )
    try:
        loaded = onnx.load(onnx_path, load_external_data=False)
        metadata = {entry.key: entry.value for entry in loaded.metadata_props}
        mismatches = metadata_mismatches(metadata, facts)
    except KeyError as error:
        mismatches = [f"export.json lacks {error}"]
    problems.extend(f"metadata {item}" for item in mismatches)

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(onnx_path), options, providers=["CPUExecutionProvider"]
    )
    generator = np.random.default_rng(config.seed)
    model_input = get_family(checkpoint.model_config.family).model_input(
        checkpoint.model_config, checkpoint.encoder
    )
    results = []
    for batch_size in config.verify.batch_sizes:
        for length in sequence_lengths(config, model_input):
            inputs = model_input.random(batch_size, length, generator)
            with torch.no_grad():
                expected = checkpoint.model(torch.from_numpy(inputs)).numpy()
            (actual,) = session.run([export.OUTPUT_NAME], {model_input.name: inputs})
            results.append(
                compare_logits(
                    batch_size, length, expected, actual, config.verify.atol, config.verify.rtol
                )
            )
    failed = [result for result in results if not result.passed]
    problems.extend(
        f"batch {result.batch_size}{_length(result)}: max |diff| {result.max_abs_diff:.3g} "
        f"(atol {config.verify.atol:g}, rtol {config.verify.rtol:g}), argmax agreement "
        f"{result.argmax_agreement:.1%}"
        for result in failed
    )

    report = {
        "passed": not problems,
        "atol": config.verify.atol,
        "rtol": config.verify.rtol,
        "onnx_sha256": onnx_sha256,
        "metadata_matches_export": not mismatches,
        "batches": [{**dataclasses.asdict(result), "passed": result.passed} for result in results],
        "problems": problems,
    }
    out = config.artifacts / artifacts.PARITY
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(format_table(results, config.verify.atol, config.verify.rtol))
    print(f"metadata matches export.json: {'yes' if not mismatches else 'NO'}")
    print(f"wrote {out}")
    if problems:
        raise ParityError("ONNX does not match PyTorch: " + "; ".join(problems))
    return report


def sequence_lengths(config: Config, model_input: ModelInput) -> list[int | None]:
    """The sequence lengths to check: None (one pass) for inputs without a sequence axis."""
    if model_input.sequence_axis is None:
        return [None]
    lengths = list(config.verify.sequence_lengths)
    longest = model_input.max_length
    if longest is not None and max(lengths) > longest:
        raise ConfigError(
            f"verify.sequence_lengths {lengths} go beyond the model's {longest} positions "
            f"(model.input_shape): use lengths up to {longest}"
        )
    return lengths


def _length(result: BatchParity) -> str:
    return "" if result.sequence_length is None else f" x length {result.sequence_length}"


def format_table(results: list[BatchParity], atol: float, rtol: float) -> str:
    lines = [
        f"parity ONNX vs PyTorch (atol {atol:g}, rtol {rtol:g})",
        f"{'batch':>6} {'length':>7} {'max |diff|':>12} {'argmax agree':>13} {'result':>7}",
    ]
    lines.extend(
        f"{r.batch_size:>6} {'-' if r.sequence_length is None else r.sequence_length:>7} "
        f"{r.max_abs_diff:>12.3e} {r.argmax_agreement:>13.1%} {'ok' if r.passed else 'FAIL':>7}"
        for r in results
    )
    return "\n".join(lines)

"""The served model: an onnxruntime session loaded once, `predict()` on numpy arrays.

No HTTP here (the transport only translates), and no torch: the serving image has
onnxruntime and numpy and nothing of the training stack. onnxruntime itself is imported
by `load()`, so that the server can listen (and answer its liveness probe) while it loads.

Clients see the model's `signature`; the session takes `model_signature`. They are the
same but for a text model, whose clients send strings that `prepare` tokenizes
(text_input.py).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import drift
from ..errors import StageError
from ..tokenization import METADATA_KEY as INPUT_ENCODER_KEY
from .monitoring import check_reference
from .protocol import Signature, TensorSpec
from .text_input import TextInput, TextInputError

if TYPE_CHECKING:
    import onnxruntime

# onnxruntime's type strings -> Open Inference Protocol datatypes.
_DATATYPE_OF_ORT_TYPE = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
}


class ModelLoadError(StageError):
    """The ONNX file is missing, unreadable, or has inputs this server cannot take."""


class InferenceError(Exception):
    """onnxruntime rejected inputs that passed the protocol checks (a server-side fault)."""


@dataclass(frozen=True)
class ModelInfo:
    """What the export stage wrote into the ONNX metadata (empty when absent)."""

    name: str
    version: str
    git_commit: str
    metrics_digest: str
    class_names: tuple[str, ...]
    # The training data's distribution, for drift monitoring; None for models exported
    # without one.
    reference: drift.Reference | None = None
    # "sha256:<hex>" of the data it was trained on ("" for models exported without it).
    data_sha256: str = ""


class ModelRuntime:
    """One onnxruntime session. `predict` is thread-safe (onnxruntime's `run` is)."""

    def __init__(
        self,
        session: onnxruntime.InferenceSession,
        info: ModelInfo,
        model_signature: Signature,
        text: TextInput | None,
        load_seconds: float,
    ) -> None:
        self._session = session
        self.info = info
        self.model_signature = model_signature
        self.text = text
        self.signature = model_signature
        if text is not None:
            inputs = {text.spec().name: text.spec()}
            self.signature = Signature(inputs=inputs, outputs=model_signature.outputs)
        self.load_seconds = load_seconds

    @classmethod
    def load(cls, path: Path, intra_op_threads: int = 1) -> ModelRuntime:
        started = time.perf_counter()
        if not path.is_file():
            raise ModelLoadError(
                f"model file {path} does not exist: run the export stage first, or pass "
                "--model / SERVER_MODEL_PATH"
            )
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: warnings would break the JSON log stream
        try:
            session = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own pybind exception types
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise ModelLoadError(
                f"cannot load {path} as an ONNX model: {first_line or type(error).__name__}"
            ) from None
        signature = Signature(
            inputs={arg.name: _spec(arg, "input") for arg in session.get_inputs()},
            outputs={arg.name: _spec(arg, "output") for arg in session.get_outputs()},
        )
        text = _text_input(session, path, signature)
        runtime = cls(session, _model_info(session, path, signature), signature, text, 0.0)
        runtime._warm_up()
        runtime.load_seconds = time.perf_counter() - started
        return runtime

    def prepare(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The session's inputs for decoded client inputs (a text model tokenizes)."""
        return inputs if self.text is None else self.text.prepare(inputs)

    def predict(
        self, model_inputs: dict[str, np.ndarray], output_names: list[str]
    ) -> list[np.ndarray]:
        try:
            return self._session.run(output_names, model_inputs)
        except Exception as error:
            raise InferenceError(str(error).strip().splitlines()[0]) from error

    def _warm_up(self) -> None:
        # The first run allocates onnxruntime's buffers; doing it here keeps that cost out
        # of the first real request (and out of the cold-start time a client sees).
        batch = {
            spec.name: np.full([1 if d == -1 else d for d in spec.shape], "", dtype=object)
            if spec.datatype == "BYTES"
            else np.zeros([1 if d == -1 else d for d in spec.shape], dtype=spec.dtype)
            for spec in self.signature.inputs.values()
        }
        self.predict(self.prepare(batch), list(self.signature.outputs))


def _spec(arg: onnxruntime.NodeArg, kind: str) -> TensorSpec:
    datatype = _DATATYPE_OF_ORT_TYPE.get(arg.type)
    if datatype is None:
        raise ModelLoadError(
            f"model {kind} '{arg.name}' has type {arg.type}, which this server does not "
            f"serve (supported: {', '.join(sorted(_DATATYPE_OF_ORT_TYPE))})"
        )
    # A named (symbolic) or unknown dimension is dynamic: -1, as the protocol writes it.
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in arg.shape)
    return TensorSpec(arg.name, datatype, shape)


def _model_info(
    session: onnxruntime.InferenceSession, path: Path, signature: Signature
) -> ModelInfo:
    metadata = session.get_modelmeta().custom_metadata_map

    def json_list(key: str) -> list:
        text = metadata.get(key)
        if text is None:
            return []
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, list):
            raise ModelLoadError(f"{path}: metadata '{key}' must be a JSON list, got {text!r}")
        return value

    return ModelInfo(
        name=metadata.get("model_name", ""),
        version=metadata.get("model_version") or "1",
        git_commit=metadata.get("git_commit", ""),
        metrics_digest=metadata.get("metrics_digest", ""),
        class_names=tuple(str(name) for name in json_list("class_names")),
        reference=_reference(metadata.get(drift.METADATA_KEY), signature, path),
        data_sha256=metadata.get("data_sha256", ""),
    )


def _text_input(
    session: onnxruntime.InferenceSession, path: Path, signature: Signature
) -> TextInput | None:
    text = session.get_modelmeta().custom_metadata_map.get(INPUT_ENCODER_KEY)
    if text is None:
        return None
    try:
        return TextInput.from_metadata(text, signature)
    except ImportError as error:
        raise ModelLoadError(
            f"{path} is a text model and this server lacks {error.name}: install the "
            "package's serve extra of a text-transformer repository"
        ) from None
    except TextInputError as error:
        raise ModelLoadError(f"{path}: metadata '{INPUT_ENCODER_KEY}' {error}") from None


def _reference(text: str | None, signature: Signature, path: Path) -> drift.Reference | None:
    if text is None:
        return None
    try:
        reference = drift.Reference.from_json(text)
    except ValueError as error:
        raise ModelLoadError(f"{path}: metadata '{drift.METADATA_KEY}' {error}") from None
    mismatch = check_reference(reference, signature)
    if mismatch is not None:
        raise ModelLoadError(f"{path}: metadata '{drift.METADATA_KEY}' {mismatch}")
    return reference

"""Open Inference Protocol v2 (the KServe / Triton / MLServer REST API): decoding inference
requests into numpy arrays and encoding results, as JSON tensors or with the binary
tensor data extension that Triton clients use.

Binary extension, as Triton specifies it (docs/protocol/extension_binary_data.md): the
body is a JSON header followed by raw little-endian, row-major tensor bytes; the HTTP
header `Inference-Header-Content-Length` gives the JSON header's length; each binary input
carries `parameters.binary_data_size`, and the bytes follow in the order of the inputs.
An output comes back binary when the request sets `parameters.binary_data_output` or the
output's own `parameters.binary_data` (the latter wins). A `BYTES` input (a text model's
strings) is a JSON list of strings, or in binary each element's length as a 4-byte
little-endian integer followed by its bytes; either way it must be UTF-8.

Pure functions over bytes and arrays - no sockets, no model - so every 4xx case is a unit
test. Speed matters here because for a small model this code costs as much as the model:
orjson parses and writes JSON, numpy converts JSON lists in C, binary tensors are views on
the request body, never copies.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

# Protocol datatype names and the numpy dtype of their little-endian binary form; BYTES
# (length-prefixed strings) is decoded to an object array of str and only ever an input.
BYTES = "BYTES"
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype("bool"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    BYTES: np.dtype(object),
}
_DATATYPE_OF_DTYPE: dict[np.dtype, str] = {
    dtype.newbyteorder("="): name for name, dtype in DATATYPES.items() if name != BYTES
}
_BYTES_LENGTH = np.dtype("<u4")

JSON_CONTENT_TYPE = "application/json"
BINARY_CONTENT_TYPE = "application/octet-stream"
HEADER_LENGTH_HEADER = "Inference-Header-Content-Length"


class ProtocolError(Exception):
    """The request breaks the protocol or does not fit the model. `status` is the HTTP code
    to answer with; the message says what is wrong in terms the client can act on."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One model input or output; -1 in `shape` marks a dynamic axis (the batch)."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    # The most elements a request may send (BYTES: each becomes a Python string and a row
    # of token ids, so the count bounds memory and compute); None: the body size does.
    max_elements: int | None = None

    @property
    def dtype(self) -> np.dtype:
        return DATATYPES[self.datatype]


@dataclass(frozen=True, slots=True)
class RequestedOutput:
    name: str
    binary: bool


@dataclass(frozen=True, slots=True)
class Signature:
    """The model's inputs and outputs by name, in the model's order."""

    inputs: Mapping[str, TensorSpec]
    outputs: Mapping[str, TensorSpec]
    # Every output, as JSON / as binary: what a request that names no outputs gets.
    all_outputs: Mapping[bool, tuple[RequestedOutput, ...]] = field(init=False)

    def __post_init__(self) -> None:
        every = {
            binary: tuple(RequestedOutput(n, binary) for n in self.outputs)
            for binary in (False, True)
        }
        object.__setattr__(self, "all_outputs", every)


@dataclass(frozen=True, slots=True)
class InferRequest:
    id: str | None
    inputs: dict[str, np.ndarray]
    outputs: tuple[RequestedOutput, ...]


def error_body(message: str) -> bytes:
    """The protocol's error response: `{"error": "<message>"}`."""
    return orjson.dumps({"error": message})


def parse_header_length(value: str | None) -> int | None:
    """The `Inference-Header-Content-Length` HTTP header, or None when absent."""
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        raise ProtocolError(
            f"{HEADER_LENGTH_HEADER} is {value!r}: give the JSON header's length in bytes"
        ) from None
    if length < 0:
        raise ProtocolError(f"{HEADER_LENGTH_HEADER} is {length}: it must be >= 0")
    return length


def decode_infer_request(
    body: bytes, header_length: int | None, signature: Signature
) -> InferRequest:
    """Parse and validate an inference request against the model's signature."""
    if header_length is None:
        header_bytes: bytes | memoryview = body
        binary = memoryview(b"")
    else:
        if header_length == 0:
            raise ProtocolError(
                f"{HEADER_LENGTH_HEADER} is 0 (a body of raw tensor bytes without a JSON "
                "header): this server needs the JSON header that describes the inputs"
            )
        if header_length > len(body):
            raise ProtocolError(
                f"{HEADER_LENGTH_HEADER} is {header_length} but the body has only {len(body)} bytes"
            )
        view = memoryview(body)
        header_bytes, binary = view[:header_length], view[header_length:]
    header = _load_json_object(header_bytes)

    request_id = header.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError(f"'id' must be a string, got {_describe(request_id)}")
    parameters = _parameters(header)
    binary_default = _flag(parameters, "binary_data_output", "the request's parameters")

    inputs = header.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ProtocolError(
            "'inputs' must be a non-empty list of tensors "
            "({name, shape, datatype, data}), got " + _describe(inputs)
        )
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for position, tensor in enumerate(inputs):
        name, array, offset = _decode_input(
            position, tensor, signature, binary, offset, header_length is not None
        )
        if name in arrays:
            raise ProtocolError(f"input '{name}' is given twice")
        arrays[name] = array
    if offset != len(binary):
        raise ProtocolError(
            f"the body has {len(binary)} bytes of binary data after the JSON header but "
            f"the inputs' binary_data_size add up to {offset}"
        )
    if len(arrays) != len(signature.inputs):  # names are known and unique: some are missing
        missing = [name for name in signature.inputs if name not in arrays]
        raise ProtocolError(
            f"missing input(s) {', '.join(repr(n) for n in missing)}: the model takes "
            + _names(signature.inputs)
        )
    outputs = _decode_requested_outputs(header.get("outputs"), signature, binary_default)
    return InferRequest(request_id, arrays, outputs)


def encode_infer_response(
    model_name: str,
    model_version: str,
    request_id: str | None,
    outputs: Iterable[tuple[RequestedOutput, np.ndarray]],
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary tensors follow it
    (the value of the response's `Inference-Header-Content-Length`; None: all JSON)."""
    described: list[dict[str, Any]] = []
    chunks: list[np.ndarray] = []
    for requested, array in outputs:
        datatype = _DATATYPE_OF_DTYPE.get(array.dtype.newbyteorder("="))
        if datatype is None:
            raise ValueError(f"output '{requested.name}' has unsupported dtype {array.dtype}")
        # Little-endian and contiguous: what the binary extension and orjson both need.
        # On little-endian machines with onnxruntime's outputs this copies nothing.
        flat = np.ascontiguousarray(array, dtype=DATATYPES[datatype]).reshape(-1)
        entry: dict[str, Any] = {
            "name": requested.name,
            "datatype": datatype,
            "shape": list(array.shape),
        }
        if requested.binary:
            entry["parameters"] = {"binary_data_size": flat.nbytes}
            chunks.append(flat)
        else:
            entry["data"] = flat
        described.append(entry)
    response: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request_id is not None:
        response["id"] = request_id
    response["outputs"] = described
    header = orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return header, None
    return b"".join([header, *chunks]), len(header)


def model_metadata(
    name: str, version: str, signature: Signature, parameters: Mapping[str, Any]
) -> bytes:
    """GET /v2/models/<name>: computed once per model, served as cached bytes."""

    def tensors(specs: Mapping[str, TensorSpec]) -> list[dict[str, Any]]:
        return [
            {"name": spec.name, "datatype": spec.datatype, "shape": list(spec.shape)}
            for spec in specs.values()
        ]

    return orjson.dumps(
        {
            "name": name,
            "versions": [version],
            "platform": "onnxruntime_onnx",
            "inputs": tensors(signature.inputs),
            "outputs": tensors(signature.outputs),
            "parameters": dict(parameters),
        }
    )


def server_metadata(name: str, version: str) -> bytes:
    """GET /v2: the server and the protocol extensions it supports."""
    return orjson.dumps({"name": name, "version": version, "extensions": ["binary_tensor_data"]})


def _load_json_object(data: bytes | memoryview) -> dict[str, Any]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise ProtocolError(f"the request's JSON is malformed: {error}") from None
    if not isinstance(value, dict):
        raise ProtocolError(
            f"the request must be a JSON object with an 'inputs' list, got {_describe(value)}"
        )
    return value


def _decode_input(
    position: int,
    tensor: object,
    signature: Signature,
    binary: memoryview,
    offset: int,
    has_binary_section: bool,
) -> tuple[str, np.ndarray, int]:
    if not isinstance(tensor, dict):
        raise ProtocolError(
            f"inputs[{position}] must be an object with name, shape, datatype and data, "
            f"got {_describe(tensor)}"
        )
    name = tensor.get("name")
    if not isinstance(name, str):
        raise ProtocolError(f"inputs[{position}] needs a 'name' string, got {_describe(name)}")
    spec = signature.inputs.get(name)
    if spec is None:
        raise ProtocolError(f"unknown input '{name}': the model takes {_names(signature.inputs)}")
    datatype = tensor.get("datatype")
    if datatype != spec.datatype:
        raise ProtocolError(
            f"input '{name}' has datatype {_describe(datatype)} but the model expects "
            f"{spec.datatype}"
        )
    shape = _shape(tensor.get("shape"), spec)
    count = math.prod(shape)
    if spec.max_elements is not None and count > spec.max_elements:
        raise ProtocolError(
            f"input '{name}' has {count} elements; this model takes at most "
            f"{spec.max_elements} per request: split the request"
        )
    dtype = spec.dtype
    parameters = tensor.get("parameters")
    size = None if parameters is None else _parameters(tensor, name).get("binary_data_size")
    if size is None:
        if "data" not in tensor:
            raise ProtocolError(
                f"input '{name}' has no 'data' (nor parameters.binary_data_size for binary data)"
            )
        if spec.datatype == BYTES:
            return name, _strings_from_json(name, tensor["data"], shape, count), offset
        array = _array_from_json(name, tensor["data"], dtype, shape, count)
        return name, array, offset
    if not has_binary_section:
        raise ProtocolError(
            f"input '{name}' has parameters.binary_data_size but the request has no "
            f"{HEADER_LENGTH_HEADER} header saying where the JSON ends"
        )
    if "data" in tensor:
        raise ProtocolError(f"input '{name}' has both 'data' and parameters.binary_data_size")
    if spec.datatype == BYTES:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ProtocolError(f"input '{name}' has binary_data_size {_describe(size)}")
        if offset + size > len(binary):
            raise ProtocolError(
                f"input '{name}' needs bytes {offset}..{offset + size} of the binary data but "
                f"the body has only {len(binary)} after the JSON header"
            )
        strings = _strings_from_binary(name, binary[offset : offset + size], count)
        return name, strings.reshape(shape), offset + size
    expected = count * dtype.itemsize
    if isinstance(size, bool) or not isinstance(size, int) or size != expected:
        raise ProtocolError(
            f"input '{name}' has binary_data_size {_describe(size)} but shape {list(shape)} of "
            f"{spec.datatype} is {expected} bytes"
        )
    if offset + size > len(binary):
        raise ProtocolError(
            f"input '{name}' needs bytes {offset}..{offset + size} of the binary data but "
            f"the body has only {len(binary)} after the JSON header"
        )
    array = np.frombuffer(binary, dtype=dtype, count=count, offset=offset).reshape(shape)
    # Policy (README.md): NaN and infinity are refused, as in JSON, whatever the encoding;
    # a model answers them with NaN logits, which a client would read as a prediction.
    if dtype.kind == "f" and not np.isfinite(array).all():
        raise ProtocolError(f"input '{name}': the binary data holds NaN or infinity")
    return name, array, offset + size


def _array_from_json(
    name: str,
    data: object,
    dtype: np.dtype,
    shape: tuple[int, ...],
    count: int,
) -> np.ndarray:
    not_numbers = ProtocolError(
        f"input '{name}': 'data' must be a flat or nested list of numbers"
        + (" (true or false)" if dtype.kind == "b" else " (no strings or booleans)")
    )
    flat = type(data) is list and len(data) == count and count and type(data[0]) is not list
    if flat and dtype.kind != "b":
        # The flat list clients usually send. np.fromiter would turn "1.5" into a number;
        # sum() refuses a string, a list or a null among numbers at C speed (~12 us for
        # 3072, a fifth of the conversion). A boolean among the numbers passes as 0 or 1:
        # finding one costs as much as the conversion (README.md, "Errors").
        try:
            sum(data)  # type: ignore[arg-type]
        except TypeError:
            if any(value is None for value in data):
                raise ProtocolError(
                    f"input '{name}': 'data' holds null where numbers belong"
                ) from None
            raise not_numbers from None
        if type(data[0]) is bool:
            raise not_numbers
        try:
            # An overflow becomes infinity, refused below: no warning per request.
            with np.errstate(over="ignore"):
                array = np.fromiter(data, dtype=dtype, count=count)
        except (ValueError, TypeError, OverflowError):
            raise not_numbers from None
    else:
        array = _array_from_nested(data, dtype, not_numbers)
    if array.size != count:
        raise ProtocolError(
            f"input '{name}' has {array.size} values but shape {list(shape)} needs {count}"
        )
    # numpy turns a JSON null into NaN (JSON has no NaN of its own), and a number beyond
    # the type's range (1e39 for FP32) into infinity: neither is an input a model can use.
    if dtype.kind == "f" and not np.isfinite(array).all():
        if np.isnan(array).any():
            raise ProtocolError(f"input '{name}': 'data' holds null where numbers belong")
        raise ProtocolError(
            f"input '{name}': 'data' holds a number beyond {np.dtype(dtype).name}'s range"
        )
    return array.reshape(shape)


def _strings_from_json(name: str, data: object, shape: tuple[int, ...], count: int) -> np.ndarray:
    """A JSON list (flat, or nested as `shape`) of strings as an object array of str."""
    strings = np.empty(count, dtype=object)
    flat = data
    if type(data) is list and data and type(data[0]) is list:
        try:
            flat = np.asarray(data, dtype=object).reshape(-1).tolist()
        except ValueError:  # ragged lists
            flat = None
    if type(flat) is not list or len(flat) != count:
        raise ProtocolError(
            f"input '{name}' must hold {count} strings for shape {list(shape)} in 'data'"
        )
    for index, value in enumerate(flat):
        if type(value) is not str:
            raise ProtocolError(
                f"input '{name}': 'data' holds {_describe(value)} where a string belongs"
            )
        strings[index] = value
    return strings.reshape(shape)


def _strings_from_binary(name: str, data: memoryview, count: int) -> np.ndarray:
    """`count` length-prefixed UTF-8 strings that fill `data` exactly."""
    strings = np.empty(count, dtype=object)
    offset = 0
    for index in range(count):
        if offset + 4 > len(data):
            raise ProtocolError(
                f"input '{name}': the binary data ends after {index} of {count} strings"
            )
        (length,) = np.frombuffer(data, dtype=_BYTES_LENGTH, count=1, offset=offset)
        start, offset = offset + 4, offset + 4 + int(length)
        if offset > len(data):
            raise ProtocolError(
                f"input '{name}': string {index} is {int(length)} bytes long, past the end "
                "of its binary data"
            )
        try:
            strings[index] = str(data[start:offset], "utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(f"input '{name}': string {index} is not UTF-8") from None
    if offset != len(data):
        raise ProtocolError(
            f"input '{name}' has {len(data) - offset} bytes after its {count} strings"
        )
    return strings


def _array_from_nested(data: object, dtype: np.dtype, not_numbers: ProtocolError) -> np.ndarray:
    # numpy infers the dtype first, so that a string or a boolean among the numbers shows
    # in it instead of being converted; then one cast.
    try:
        values = np.asarray(data)
    except (ValueError, TypeError):  # ragged lists
        raise not_numbers from None
    kind = values.dtype.kind
    if kind == "O":  # null, or integers beyond int64: a slow path for rare requests
        if any(isinstance(value, str | bool) for value in values.flat):
            raise not_numbers
    elif kind != "b" if dtype.kind == "b" else kind not in "iuf":
        raise not_numbers
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            return values.astype(dtype, copy=False)
    except (ValueError, TypeError):
        raise not_numbers from None


def _shape(value: object, spec: TensorSpec) -> tuple[int, ...]:
    # Fast path first: this runs for every input of every request.
    if type(value) is list and len(value) == len(spec.shape):
        shape = tuple(value)
        if all(
            # A dimension is a count: -1 ("any size") belongs in the model's shape only.
            type(got) is int and got > 0 and (got == want or want == -1)
            for got, want in zip(shape, spec.shape, strict=True)
        ):
            return shape
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value)
    ):
        raise ProtocolError(
            f"input '{spec.name}' needs 'shape' as a list of positive integers (-1 is the "
            f"model's 'any size', not a size), got {_describe(value)}"
        )
    if 0 in value and len(value) == len(spec.shape):
        raise ProtocolError(f"input '{spec.name}' has shape {value}: it holds no values")
    raise ProtocolError(
        f"input '{spec.name}' has shape {value} but the model expects "
        f"{list(spec.shape)} (-1: any size)"
    )


def _decode_requested_outputs(
    value: object, signature: Signature, binary_default: bool
) -> tuple[RequestedOutput, ...]:
    if value is None:
        return signature.all_outputs[binary_default]
    if not isinstance(value, list) or not value:
        raise ProtocolError(f"'outputs' must be a non-empty list, got {_describe(value)}")
    requested = []
    for position, output in enumerate(value):
        name = output.get("name") if isinstance(output, dict) else None
        if not isinstance(name, str):
            raise ProtocolError(f"outputs[{position}] needs a 'name' string")
        if name not in signature.outputs:
            raise ProtocolError(
                f"unknown output '{name}': the model's outputs are {_names(signature.outputs)}"
            )
        parameters = _parameters(output, name)
        binary = binary_default
        if "binary_data" in parameters:
            binary = _flag(parameters, "binary_data", f"the parameters of output '{name}'")
        requested.append(RequestedOutput(name, binary))
    return tuple(requested)


def _parameters(holder: Mapping[str, Any], name: str | None = None) -> Mapping[str, Any]:
    """`holder["parameters"]`; `name` names the tensor that holds them (None: the request)."""
    parameters = holder.get("parameters")
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        owner = "the request" if name is None else f"tensor '{name}'"
        raise ProtocolError(f"'parameters' of {owner} must be an object")
    return parameters


def _flag(parameters: Mapping[str, Any], key: str, owner: str) -> bool:
    value = parameters.get(key, False)
    if not isinstance(value, bool):
        raise ProtocolError(f"{key} in {owner} must be true or false, got {_describe(value)}")
    return value


def _names(specs: Mapping[str, TensorSpec]) -> str:
    return ", ".join(f"'{name}'" for name in specs)


def _describe(value: object) -> str:
    if value is None:
        return "nothing"
    try:
        text = orjson.dumps(value, default=repr).decode()
    except orjson.JSONEncodeError:  # integers beyond 64 bits
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."

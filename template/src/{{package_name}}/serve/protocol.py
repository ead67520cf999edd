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
test. Speed matters here because for a small model this code costs as much as the model.
simdjson (pysimdjson) parses requests: a tensor's `data` goes from the parsed document to
a flat buffer of doubles or int64 in C, never through a list of Python floats, which
halves the decode time against orjson + `np.asarray` (bench/bench_serve.py, "JSON
decode") and checks in the same pass that every value is a number. orjson writes
responses; binary tensors are views on the request body, never copies.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import simdjson

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
    header = _parse_header(header_bytes)

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


def _parse_header(data: bytes | memoryview) -> dict[str, Any]:
    """The request's JSON object as Python values, except each input's `data`, which stays
    a lazy simdjson value for `_array_from_json` to read in C."""
    try:
        # A parser per request: one is cheap (50 ns), and a parser cannot be reused while
        # any value of its last document is still referenced.
        document = simdjson.Parser().parse(data)
    except (ValueError, RuntimeError) as error:  # UnicodeDecodeError is a ValueError
        raise ProtocolError(f"the request's JSON is malformed: {error}") from None
    if not isinstance(document, simdjson.Object):
        raise ProtocolError(
            "the request must be a JSON object with an 'inputs' list, got "
            + _describe(_plain(document))
        )
    header = {key: _plain(document[key]) for key in document if key != "inputs"}
    inputs = document.get("inputs")
    header["inputs"] = (
        [_tensor_header(tensor) for tensor in inputs]
        if isinstance(inputs, simdjson.Array)
        else inputs
    )
    return header


def _tensor_header(tensor: object) -> object:
    if not isinstance(tensor, simdjson.Object):
        return _plain(tensor)
    return {key: tensor[key] if key == "data" else _plain(tensor[key]) for key in tensor}


def _plain(value: object) -> object:
    """A simdjson object or array as Python dicts and lists (scalars already are)."""
    if isinstance(value, simdjson.Object):
        return value.as_dict()
    if isinstance(value, simdjson.Array):
        return value.as_list()
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
            strings = _strings_from_json(name, _plain(tensor["data"]), shape, count)
            return name, strings, offset
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


# What simdjson's `as_buffer` writes for each numeric kind: doubles, int64 or uint64.
_BUFFER_TYPES = {
    "f": ("d", np.dtype("<f8")),
    "i": ("i", np.dtype("<i8")),
    "u": ("u", np.dtype("<u8")),
}


def _array_from_json(
    name: str,
    data: object,
    dtype: np.dtype,
    shape: tuple[int, ...],
    count: int,
) -> np.ndarray:
    """A tensor's JSON `data` (flat, or nested in any way: Triton flattens nested lists
    whatever their structure and checks only the count) as an array of `dtype`.

    Policy (README.md, "Errors"): only JSON numbers are numbers. Strings ("1.5"), booleans
    and null are refused, as are a fraction in an integer tensor, a number beyond the
    type's range (1e39 for FP32), and so NaN and infinity, which JSON cannot spell."""
    not_numbers = ProtocolError(
        f"input '{name}': 'data' must be a flat or nested list of numbers"
        + (" (true or false)" if dtype.kind == "b" else " (no strings or booleans)")
    )
    if not isinstance(data, simdjson.Array):
        raise not_numbers
    if dtype.kind == "b":
        array = _booleans(data.as_list(), not_numbers)
    else:
        buffer_type, buffer_dtype = _BUFFER_TYPES[dtype.kind]
        try:
            values = np.frombuffer(data.as_buffer(of_type=buffer_type), dtype=buffer_dtype)
        except TypeError:  # an element that is not a number of that kind
            if None in _flatten(data.as_list()):
                raise ProtocolError(
                    f"input '{name}': 'data' holds null where numbers belong"
                ) from None
            if dtype.kind != "f":
                raise ProtocolError(
                    f"input '{name}': 'data' must be a flat or nested list of integers"
                ) from None
            raise not_numbers from None
        except ValueError:  # beyond int64 / uint64
            raise _beyond_range(name, dtype) from None
        array = _narrowed(name, values, dtype)
    if array.size != count:
        raise ProtocolError(
            f"input '{name}' has {array.size} values but shape {list(shape)} needs {count}"
        )
    return array.reshape(shape)


def _narrowed(name: str, values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """`values` (float64, int64 or uint64) as `dtype`, refusing what does not fit."""
    if dtype.kind == "f":
        # A double beyond the type's range becomes infinity, refused below.
        with np.errstate(over="ignore"):
            array = values.astype(dtype)
        if not np.isfinite(array).all():
            raise _beyond_range(name, dtype)
        return array
    if values.dtype != dtype.newbyteorder("=") and values.size:
        limits = np.iinfo(dtype)
        if values.min() < limits.min or values.max() > limits.max:
            raise _beyond_range(name, dtype)
    return values.astype(dtype, copy=False)


def _booleans(values: list[Any], not_booleans: ProtocolError) -> np.ndarray:
    flat = _flatten(values)
    if not all(type(value) is bool for value in flat):
        raise not_booleans
    return np.array(flat, dtype=bool)


def _flatten(values: list[Any]) -> list[Any]:
    """Nested lists' elements in order (an error path and BOOL tensors only)."""
    flat: list[Any] = []
    for value in values:
        if type(value) is list:
            flat += _flatten(value)
        else:
            flat.append(value)
    return flat


def _beyond_range(name: str, dtype: np.dtype) -> ProtocolError:
    return ProtocolError(f"input '{name}': 'data' holds a number beyond {dtype.name}'s range")


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

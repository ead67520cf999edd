"""The served model as an MLServer custom runtime, for `bench_serve.py --mlserver`: the
same ONNX file behind MLServer (FastAPI, uvicorn), with and without its adaptive
batching, measured by the same client. MLServer has no ONNX runtime of its own; this is
what its documentation shows for a custom one (an `MLModel` with `load` and `predict`).

MLServer pins FastAPI and Starlette below what the bench's other peers use, so it runs
from a virtual environment of its own:

    python -m venv .mlserver && .mlserver/bin/pip install mlserver==1.7.1 onnxruntime
    python bench/bench_serve.py --mlserver .mlserver/bin/mlserver

Imported by MLServer, never by this repository's package.
"""

from __future__ import annotations

import numpy as np
import onnxruntime
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class OnnxModel(MLModel):
    async def load(self) -> bool:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # as the generated server runs it
        options.inter_op_num_threads = 1
        uri = self.settings.parameters.uri
        self._session = onnxruntime.InferenceSession(
            uri, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32, copy=False)
        outputs = self._session.run(None, {self._input: x})
        return InferenceResponse(
            model_name=self.name,
            id=payload.id,
            outputs=[
                NumpyCodec.encode_output(name=arg.name, payload=value)
                for arg, value in zip(self._session.get_outputs(), outputs, strict=True)
            ],
        )

"""Serving: an onnxruntime model behind the Open Inference Protocol v2 REST API.

Nothing is imported here on purpose: `python -m <package> serve` must start fast and must
never pull in torch, so each module imports only what it needs, when it needs it.

- `settings`  environment variables and command line flags
- `runtime`   the model: load the ONNX file once, `predict()` numpy arrays (no HTTP)
- `protocol`  Open Inference Protocol JSON and binary tensor encoding (no sockets)
- `app`       routes a parsed request to an endpoint and builds the response (no sockets)
- `metrics`   the Prometheus registry
- `logs`      structured JSON logs on stdout
- `server`    the HTTP transport, graceful drain and `main()`
"""

"""Kubernetes manifests checked the way a cluster would, offline: Kustomize and strict schemas.

- `kustomize` renders a folder with the real `kubectl kustomize`;
- `validate` checks one object: CRD kinds against the real CRD schemas in
  ../shared/schemas/crds/ with unknown fields rejected (as kubectl's strict field
  validation does), built-in kinds with kubernetes-validate in strict mode for the oldest
  and newest Kubernetes the manifests support. A kind neither knows is an error.
"""

from __future__ import annotations

import copy
import hashlib
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from modelyard.paths import REPO_ROOT

from ci_tools import tool

# The oldest Kubernetes the manifests support (the preStop `sleep` action is on by default
# from 1.30) and the newest that kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30", "1.37")
CRD_DIR = REPO_ROOT.parent / "shared" / "schemas" / "crds"
# libyaml where it is built in: the CRDs are megabytes of YAML.
FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

CrdValidators = dict[tuple[str, str], jsonschema.protocols.Validator]

_BUILDS: dict[str, list[dict[str, Any]]] = {}


def kustomize(directory: Path, deploy_dir: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize`, cached by the content of the whole deploy/ tree it reads."""
    digest = hashlib.sha256(str(directory.relative_to(deploy_dir)).encode())
    for path in sorted(deploy_dir.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(deploy_dir)).encode() + path.read_bytes())
    key = digest.hexdigest()
    if key not in _BUILDS:
        result = subprocess.run(
            [tool("kubectl"), "kustomize", str(directory)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"kubectl kustomize {directory}: {result.stderr}"
        _BUILDS[key] = [doc for doc in yaml.load_all(result.stdout, Loader=FAST_LOADER) if doc]
    return copy.deepcopy(_BUILDS[key])


def strict(schema: Any) -> Any:
    """Reject unknown fields as an API server does (kubectl's strict field validation)."""
    if isinstance(schema, dict):
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


def load_crd_validators() -> CrdValidators:
    assert CRD_DIR.is_dir(), f"the CRD schemas are missing: {CRD_DIR}"
    validators = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.load(path.read_text(encoding="utf-8"), Loader=FAST_LOADER)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served", True):
                schema = strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
                validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(
                    schema
                )
    return validators


def validate(doc: dict[str, Any], crd_validators: CrdValidators) -> None:
    key = (doc["apiVersion"], doc["kind"])
    if key in crd_validators:
        errors = sorted(crd_validators[key].iter_errors(doc), key=lambda e: list(e.path))
        assert not errors, f"{doc['kind']} {doc['metadata']['name']}: " + "; ".join(
            f"{'/'.join(map(str, error.path))}: {error.message}" for error in errors
        )
        return
    for version in KUBERNETES_VERSIONS:
        # Raises SchemaNotFoundError for a kind neither list knows: nothing goes unchecked.
        kubernetes_validate.validate(doc, version, strict=True)

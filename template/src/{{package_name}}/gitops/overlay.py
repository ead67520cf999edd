"""The image an environment runs, as its Kustomize overlay records it.

`deploy/overlays/<env>/kustomization.yaml` holds it in two places that always change
together: the `images:` entry that replaces the base's placeholder image by
REPOSITORY@DIGEST, and `commonAnnotations` naming the model version, the digest of the
metrics that let the model through the quality gate, the evaluation itself (accuracy,
profile, family, data: what a promotion to the last environment records as the champion)
and the CI build that deployed it.
Edits are ruamel.yaml round trips, so the comments, key order and quoting a person wrote
survive, and writing what is already there leaves the file unchanged byte for byte.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from ..champion import evaluation_facts
from ..errors import StageError
from ..oci import DIGEST_PATTERN, REFERENCE_PATTERN
from .build import Build

# The image name in deploy/base/deployment.yaml that every overlay's `images:` entry replaces.
IMAGE_PLACEHOLDER = "model-server"
# What a freshly generated overlay holds until its first deploy.
NEVER_DEPLOYED = "sha256:" + "0" * 64
MODEL_VERSION_ANNOTATION = "modelyard.io/model-version"
METRICS_DIGEST_ANNOTATION = "modelyard.io/metrics-digest"
# The CI build that deployed it (gitops/build.py), absent after a deploy by hand.
BUILD_ANNOTATION = "modelyard.io/build"
# The gate's evaluation of the model, as compact JSON (champion.EVALUATION_KEYS).
EVALUATION_ANNOTATION = "modelyard.io/evaluation"

_ENVIRONMENT = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
# Model versions ("0.1.0+g1a2b3c4d5e6f") and metrics digests ("sha256:..."): one token.
_ANNOTATION_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,199}")

_EXAMPLE = "registry.example.com/models/NAME@sha256:<64 hex digits>"


class ImageReferenceError(StageError):
    """An image reference that does not pin an image by its digest."""


class OverlayError(StageError):
    """An environment's overlay is missing or does not have the expected shape."""


@dataclasses.dataclass(frozen=True)
class ImageReference:
    repository: str
    digest: str

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        """REPOSITORY@sha256:HEX (a tag beside the digest is dropped: the digest decides)."""
        text = text.strip()
        match = REFERENCE_PATTERN.fullmatch(text)
        if not match:
            raise ImageReferenceError(
                f"image {text!r} is not an image reference: expected {_EXAMPLE}"
            )
        digest = match["digest"]
        if digest is None:
            named = f"tag {match['tag']!r}" if match["tag"] else "no digest"
            raise ImageReferenceError(
                f"image {text!r} has {named}: deploy by digest ({_EXAMPLE}; push-image "
                "writes it to artifacts/image.env) so that what runs is exactly what was tested"
            )
        if not DIGEST_PATTERN.fullmatch(digest):
            raise ImageReferenceError(
                f"image {text!r} has a malformed digest {digest!r}: expected 'sha256:' "
                "followed by 64 lowercase hex digits"
            )
        return cls(repository=match["repository"], digest=digest)

    def __str__(self) -> str:
        return f"{self.repository}@{self.digest}"


@dataclasses.dataclass(frozen=True)
class Release:
    """What an environment runs: an image by digest and the model it carries."""

    image: ImageReference
    model_version: str
    metrics_digest: str
    build: Build | None = None
    # The evaluation that let it through the gate (champion.EVALUATION_KEYS); None for
    # releases deployed before evaluations were recorded, or by hand.
    evaluation: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        for name in ("model_version", "metrics_digest"):
            value = getattr(self, name)
            if not _ANNOTATION_VALUE.fullmatch(value):
                raise OverlayError(
                    f"{name.replace('_', ' ')} {value!r} must be one token of letters, digits "
                    "and . _ : + - (at most 200 characters), e.g. 0.1.0+g1a2b3c4d or sha256:..."
                )
        if self.evaluation is not None:
            evaluation_facts(self.evaluation, "the release's evaluation")

    @property
    def deployed(self) -> bool:
        return self.image.digest != NEVER_DEPLOYED

    def describe(self) -> str:
        built = f", build {self.build}" if self.build else ""
        return f"{self.image} (model {self.model_version}, metrics {self.metrics_digest}{built})"


def check_environment_name(environment: str) -> None:
    """Environment names become folder names and namespaces: refuse anything else."""
    if not _ENVIRONMENT.fullmatch(environment):
        raise OverlayError(
            f"environment {environment!r} is not a valid name: use lowercase letters, digits "
            "and '-' (for example dev)"
        )


def overlay_environments(deploy_dir: Path) -> list[str]:
    """The environments that have an overlay, sorted by name."""
    overlays = deploy_dir / "overlays"
    if not overlays.is_dir():
        return []
    return sorted(
        path.parent.name for path in overlays.glob("*/kustomization.yaml") if path.is_file()
    )


class Overlay:
    """`<deploy_dir>/overlays/<environment>/kustomization.yaml`."""

    def __init__(self, deploy_dir: Path, environment: str) -> None:
        check_environment_name(environment)
        self.environment = environment
        self.path = deploy_dir / "overlays" / environment / "kustomization.yaml"
        if not self.path.is_file():
            known = ", ".join(overlay_environments(deploy_dir)) or "none"
            raise OverlayError(
                f"no overlay for environment {environment!r}: {self.path} does not exist "
                f"(environments with an overlay: {known})"
            )

    def read(self) -> Release:
        document = self._load()
        entry = self._image_entry(document)
        repository, digest = entry.get("newName"), entry.get("digest")
        if not isinstance(repository, str) or not isinstance(digest, str):
            raise OverlayError(
                f"{self.path}: the images entry {IMAGE_PLACEHOLDER!r} needs `newName` and "
                "`digest` (set them with `gitops set-image`)"
            )
        annotations = self._annotations(document) or {}
        build = annotations.get(BUILD_ANNOTATION)
        evaluation = annotations.get(EVALUATION_ANNOTATION)
        try:
            return Release(
                image=ImageReference.parse(f"{repository}@{digest}"),
                model_version=str(annotations.get(MODEL_VERSION_ANNOTATION, "unreleased")),
                metrics_digest=str(annotations.get(METRICS_DIGEST_ANNOTATION, "none")),
                build=None if build is None else Build.parse(str(build)),
                evaluation=None if evaluation is None else json.loads(str(evaluation)),
            )
        except ValueError as error:
            raise OverlayError(
                f"{self.path}: annotation {EVALUATION_ANNOTATION} is not JSON: {error}"
            ) from None
        except StageError as error:
            raise OverlayError(f"{self.path}: {error}") from None

    def write(self, release: Release) -> bool:
        """Record `release`; True when the file changed, False when it already said so."""
        original = self.path.read_text(encoding="utf-8")
        document = self._load(original)
        entry = self._image_entry(document)
        _assign(entry, "newName", release.image.repository)
        _assign(entry, "digest", release.image.digest)
        # A tag beside the digest would only mislead a reader: the digest decides.
        entry.pop("newTag", None)
        annotations = self._annotations(document)
        if annotations is None:
            annotations = _yaml_map()
            document.insert(list(document).index("images"), "commonAnnotations", annotations)
        _assign(annotations, MODEL_VERSION_ANNOTATION, release.model_version)
        _assign(annotations, METRICS_DIGEST_ANNOTATION, release.metrics_digest)
        if release.build is None:
            annotations.pop(BUILD_ANNOTATION, None)
        else:
            _assign(annotations, BUILD_ANNOTATION, str(release.build))
        if release.evaluation is None:
            annotations.pop(EVALUATION_ANNOTATION, None)
        else:
            compact = json.dumps(release.evaluation, sort_keys=True, separators=(",", ":"))
            _assign(annotations, EVALUATION_ANNOTATION, compact)
        updated = _dump(document)
        if updated == original:
            return False
        _write_atomically(self.path, updated)
        return True

    def _load(self, text: str | None = None) -> Any:
        if text is None:
            text = self.path.read_text(encoding="utf-8")
        try:
            document = _yaml().load(text)
        except Exception as error:  # ruamel raises many error types, all of them YAML errors
            raise OverlayError(f"{self.path} is not valid YAML: {error}") from None
        if not isinstance(document, dict):
            raise OverlayError(f"{self.path} must be a Kustomization mapping")
        return document

    def _annotations(self, document: Any) -> Any:
        annotations = document.get("commonAnnotations")
        if annotations is not None and not isinstance(annotations, dict):
            raise OverlayError(f"{self.path}: commonAnnotations must be a mapping")
        return annotations

    def _image_entry(self, document: Any) -> Any:
        for entry in document.get("images") or []:
            if isinstance(entry, dict) and entry.get("name") == IMAGE_PLACEHOLDER:
                return entry
        raise OverlayError(
            f"{self.path} has no `images:` entry named {IMAGE_PLACEHOLDER!r}: keep the one the "
            "template wrote; it replaces the placeholder image of deploy/base/deployment.yaml"
        )


def _assign(mapping: Any, key: str, value: str) -> None:
    # Only touch a changed value, so that an unchanged one keeps its quoting style.
    if mapping.get(key) != value:
        mapping[key] = value


def _yaml() -> Any:
    try:
        from ruamel.yaml import YAML
    except ModuleNotFoundError:
        raise OverlayError(
            "ruamel.yaml is not installed: pip install -e '.[deploy]' (it edits the overlays "
            "without losing their comments)"
        ) from None
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    # The layout the overlays are written in (and yamllint expects): indented sequences.
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def _yaml_map() -> Any:
    from ruamel.yaml.comments import CommentedMap

    return CommentedMap()


def _dump(document: Any) -> str:
    stream = io.StringIO()
    _yaml().dump(document, stream)
    return stream.getvalue()


def _write_atomically(path: Path, text: str) -> None:
    # A crash mid-write must not leave a truncated overlay for Argo CD to sync.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, path.stat().st_mode & 0o777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

"""Which template release this generator carries, and where that release is published.

A generated repository must be updatable on any machine, so `.copier-answers.yml` records
the template's public git URL and the release tag, never the path of an installed wheel:
`copier update` (or `modelyard update`) then clones that URL and moves to the next tag.
The wheel's bundled template is the tree of tag `v<version>` (releasing builds the wheel
from the tag), so recording that tag is exact.
"""

from __future__ import annotations

import os
from importlib import metadata

from . import __version__

# A mirror or a platform team's fork records its own URL instead (also for offline tests).
TEMPLATE_URL_ENV = "MODELYARD_TEMPLATE_URL"
SOURCE_LABEL = "Source"


def release_tag() -> str:
    """The git tag of the template release this generator was built from."""
    return f"v{__version__}"


def template_url() -> str:
    """The template's canonical git URL: $MODELYARD_TEMPLATE_URL, else the package's
    Source URL (pyproject.toml's [project.urls])."""
    configured = os.environ.get(TEMPLATE_URL_ENV, "").strip()
    if configured:
        return configured
    try:
        entries = metadata.metadata("modelyard").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        entries = []
    for entry in entries:
        label, _, url = entry.partition(",")
        if label.strip() == SOURCE_LABEL:
            url = url.strip()
            return url if url.endswith(".git") else f"{url}.git"
    raise LookupError(
        f"modelyard's package metadata names no {SOURCE_LABEL} URL: set {TEMPLATE_URL_ENV}"
    )


def describe() -> str:
    """One line for `modelyard --version`: the generator and the release it carries."""
    try:
        source = template_url()
    except LookupError as error:
        source = str(error)
    return f"modelyard {__version__} (template {release_tag()} of {source})"

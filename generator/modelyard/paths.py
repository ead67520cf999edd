"""Where the template lives relative to this package."""

from __future__ import annotations

import os
from pathlib import Path

# generator/modelyard/paths.py -> the repository root holds copier.yml and template/.
REPO_ROOT = Path(__file__).resolve().parents[2]
COPIER_YML = REPO_ROOT / "copier.yml"
TEMPLATE_DIR = REPO_ROOT / "template"
README = REPO_ROOT / "README.md"


def default_template_source() -> str:
    """The template Copier renders: $MODELYARD_TEMPLATE, else this checkout.

    An installed wheel carries only the generator, not the template; such users point
    MODELYARD_TEMPLATE (or --template) at a checkout or a git URL.
    """
    configured = os.environ.get("MODELYARD_TEMPLATE")
    if configured:
        return configured
    if COPIER_YML.is_file():
        return str(REPO_ROOT)
    raise FileNotFoundError(
        f"no template next to the generator ({COPIER_YML} is missing): pass --template "
        "PATH_OR_GIT_URL or set MODELYARD_TEMPLATE"
    )

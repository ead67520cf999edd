"""Where the template lives: inside the installed wheel, or in a checkout of this repository.

A wheel (`pip install modelyard`, `pipx install modelyard`) carries copier.yml and
template/ in `modelyard/bundled/` (pyproject.toml's force-include), so `modelyard
new` works offline with nothing else. A checkout (editable install) has them at its root,
beside generator/; only a checkout has what `modelyard docs` and `render-ci` rewrite.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED_DIR = PACKAGE_DIR / "bundled"
# generator/modelyard/paths.py -> the checkout's root holds copier.yml and template/.
REPO_ROOT = PACKAGE_DIR.parents[1]


class NotACheckoutError(FileNotFoundError):
    """A command that maintains the template's own files ran from an installed wheel."""


def is_bundled() -> bool:
    """True when this generator runs from an installed wheel with the template inside."""
    return (BUNDLED_DIR / "copier.yml").is_file()


def template_root() -> Path:
    """The folder holding copier.yml (the Copier template's root)."""
    root = BUNDLED_DIR if is_bundled() else REPO_ROOT
    if not (root / "copier.yml").is_file():
        raise FileNotFoundError(
            f"the template is missing: neither {BUNDLED_DIR} (an installed wheel) nor "
            f"{REPO_ROOT} (a checkout) holds copier.yml; reinstall modelyard"
        )
    return root


def copier_yml() -> Path:
    return template_root() / "copier.yml"


def checkout_root(command: str) -> Path:
    """The checkout's root, for commands that rewrite the template's own files."""
    if is_bundled() or not (REPO_ROOT / "ci" / "pipeline.yml").is_file():
        raise NotACheckoutError(
            f"`modelyard {command}` maintains a checkout of the template (README.md, "
            "ci/pipeline.yml, template/), and this modelyard is an installed wheel: run it "
            "from a clone of the template (git clone URL && pip install -e CLONE)"
        )
    return REPO_ROOT


# The checkout's files, for the tests and the commands that maintain them.
COPIER_YML = REPO_ROOT / "copier.yml"
TEMPLATE_DIR = REPO_ROOT / "template"
README = REPO_ROOT / "README.md"

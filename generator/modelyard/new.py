"""`modelyard new`: render the template with Copier and report bad answers clearly."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import copier
from copier.errors import CopierError

from .paths import default_template_source


class GenerationError(Exception):
    """The repository could not be generated; the message says why."""


def parse_data(pairs: list[str]) -> dict[str, str]:
    """Turn `key=value` strings into answers; Copier casts them by question type."""
    answers: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise GenerationError(f"--data {pair!r} must look like question=value")
        answers[key.strip()] = value
    return answers


def generate(
    destination: Path,
    answers: Mapping[str, Any],
    *,
    template: str | None = None,
    vcs_ref: str | None = None,
    defaults: bool = True,
    quiet: bool = True,
) -> Path:
    """Render a new model repository into `destination` and return its path.

    A bad answer raises GenerationError with the validator's message. A destination that
    did not exist before is removed again on any failure, so nothing half-written stays.
    """
    destination = Path(destination)
    if destination.exists() and any(destination.iterdir()):
        raise GenerationError(
            f"{destination} exists and is not empty: choose a new folder "
            "(use `copier update` to update a generated repository)"
        )
    existed = destination.exists()
    source = template or default_template_source()
    try:
        copier.run_copy(
            source,
            destination,
            data=dict(answers),
            defaults=defaults,
            vcs_ref=vcs_ref,
            quiet=quiet,
            unsafe=False,
        )
    except (ValueError, CopierError) as error:
        _remove_partial(destination, existed)
        raise GenerationError(str(error)) from error
    except BaseException:
        _remove_partial(destination, existed)
        raise
    return destination


def _remove_partial(destination: Path, existed: bool) -> None:
    if existed:
        for child in destination.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    else:
        shutil.rmtree(destination, ignore_errors=True)

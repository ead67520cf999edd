"""`modelyard new`: render the template with Copier and report bad answers clearly."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import copier
from copier.errors import CopierError
from ruamel.yaml import YAML

from .paths import BUNDLED_DIR, is_bundled, template_root
from .questions import load_questions
from .release import release_tag, template_url

ANSWERS_FILE = ".copier-answers.yml"  # copier.yml's _answers_file


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


def _template_source(
    template: str | None, vcs_ref: str | None
) -> tuple[str, str | None, tuple[str, str] | None]:
    """(what Copier renders, the ref, (URL, tag) to record as the source, if any).

    An installed wheel renders its bundled template offline and records the public URL
    and release tag, so the repository updates from that URL on any machine. A checkout
    renders itself (Copier records its path and commit: a template developer's set-up).
    """
    if template:
        return template, vcs_ref, None
    if is_bundled():
        if vcs_ref:  # another release than the bundled one: fetch it from its URL
            return template_url(), vcs_ref, None
        return str(BUNDLED_DIR), None, (template_url(), release_tag())
    return str(template_root()), vcs_ref, None


def check_types(answers: Mapping[str, Any]) -> None:
    """Refuse a --data answer that Copier cannot cast to its question's type, naming the
    question (Copier's own message is a bare "invalid literal for int()")."""
    casts = {"int": int, "float": float}
    for question in load_questions():
        cast = casts.get(question.type)
        value = answers.get(question.name)
        if cast is None or not isinstance(value, str):
            continue
        try:
            cast(value)
        except ValueError:
            raise GenerationError(
                f"Validation error for question '{question.name}': {value!r} is not "
                f"{'an integer' if cast is int else 'a number'}"
            ) from None


def record_source(destination: Path, url: str, tag: str) -> None:
    """Point the answers file at the template's public URL and release tag."""
    yaml = YAML()
    yaml.preserve_quotes = True
    path = destination / ANSWERS_FILE
    answers = yaml.load(path.read_text(encoding="utf-8"))
    answers.pop("_commit", None)
    answers.insert(0, "_commit", tag)
    answers["_src_path"] = url
    with path.open("w", encoding="utf-8") as stream:
        yaml.dump(answers, stream)


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
    try:
        source, ref, recorded = _template_source(template, vcs_ref)
        check_types(answers)
        copier.run_copy(
            source,
            destination,
            data=dict(answers),
            defaults=defaults,
            vcs_ref=ref,
            quiet=quiet,
            unsafe=False,
        )
        if recorded:
            record_source(destination, *recorded)
    except (ValueError, LookupError, CopierError, GenerationError) as error:
        _remove_partial(destination, existed)
        if isinstance(error, GenerationError):
            raise
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

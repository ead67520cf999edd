"""Carry a repository's own edits across files that a template release renamed.

Copier's update merges a user's edits file by file, by path: when release N+1 renames
`a.py` to `b.py`, the edits made to `a.py` are not carried to `b.py` (Copier writes a
fresh `b.py` and removes `a.py`). Declare the rename as an `after` migration of the
release that makes it, in copier.yml:

    _migrations:
      - version: v0.3.0
        when: "{{ _stage == 'after' }}"
        command:
          - "{{ _copier_python }}"
          - "{{ _copier_conf.src_path }}/generator/modelyard/carry_renames.py"
          - "configs/smoke.yaml=configs/ci-smoke.yaml"

After the update, for each OLD=NEW pair (paths in the generated repository), this makes
a three-way merge: the repository's committed OLD (its edits), OLD as the release it was
generated from renders it (the common base), and the NEW the update just wrote. Clean
merges land in NEW; overlapping edits leave Copier's own conflict markers in NEW, which
`modelyard update` reports, naming the file. Nothing is lost: the edited OLD stays in
git history until the user commits the update.

Runs with Copier's interpreter (it needs only Copier): Copier sets VERSION_FROM to the
release tag the repository was generated from, and runs it in the repository's root.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import copier
import yaml

# Copier's interpreter runs this file alone, without modelyard: hence its own constant.
ANSWERS_FILE = ".copier-answers.yml"
LABELS = ("before updating", "last update", "after updating")  # Copier's marker labels


def _committed(path: str) -> str | None:
    """The file as the repository's HEAD has it, or None when it was never committed."""
    result = subprocess.run(
        ["git", "show", f"HEAD:./{path}"], capture_output=True, text=True, check=False
    )
    return result.stdout if result.returncode == 0 else None


def _render_previous_release(destination: Path) -> None:
    """Render the release the repository came from, with its answers, into destination."""
    answers = yaml.safe_load(Path(ANSWERS_FILE).read_text(encoding="utf-8"))
    data = {key: value for key, value in answers.items() if not key.startswith("_")}
    copier.run_copy(
        answers["_src_path"],
        destination,
        data=data,
        vcs_ref=os.environ["VERSION_FROM"],
        defaults=True,
        quiet=True,
        overwrite=True,
    )


def _merge(ours: str, base: str, theirs: str) -> tuple[str, int]:
    """git merge-file of three texts: (result, number of conflicts)."""
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for name, text in zip(("ours", "base", "theirs"), (ours, base, theirs), strict=True):
            path = Path(folder, name)
            path.write_text(text, encoding="utf-8")
            paths.append(str(path))
        labels = [argument for label in LABELS for argument in ("-L", label)]
        result = subprocess.run(
            ["git", "merge-file", "-p", *labels, *paths], capture_output=True, text=True
        )
    if result.returncode < 0 or result.returncode > 127:
        raise SystemExit(f"carry_renames: git merge-file failed: {result.stderr.strip()}")
    return result.stdout, result.returncode


def carry(pairs: list[tuple[str, str]]) -> int:
    """Merge each renamed file's edits into its new path; return the conflict count."""
    edited = [(old, new, text) for old, new in pairs if (text := _committed(old)) is not None]
    if not edited:
        return 0
    conflicts = 0
    with tempfile.TemporaryDirectory() as folder:
        previous = Path(folder, "previous")
        _render_previous_release(previous)
        for old, new, ours in edited:
            base_file = previous / old
            base = base_file.read_text(encoding="utf-8") if base_file.is_file() else ""
            target = Path(new)
            if ours == base or not target.is_file():
                continue  # not edited, or the release dropped the file altogether
            merged, count = _merge(ours, base, target.read_text(encoding="utf-8"))
            target.write_text(merged, encoding="utf-8")
            conflicts += count
            state = f"{count} conflict(s) to resolve" if count else "merged cleanly"
            print(f"carry_renames: edits of {old} carried to {new}: {state}", file=sys.stderr)
    return conflicts


def main(argv: list[str]) -> int:
    pairs = []
    for argument in argv:
        old, sep, new = argument.partition("=")
        if not sep or not old or not new:
            raise SystemExit(f"carry_renames: {argument!r} must look like OLD=NEW")
        pairs.append((old, new))
    carry(pairs)
    # Conflicts are left as markers for `modelyard update` to report; the migration
    # itself succeeded, so Copier goes on writing the answers file.
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

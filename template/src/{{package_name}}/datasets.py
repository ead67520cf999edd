"""Datasets versioned with DVC: `python -m <package> data pull --config configs/<profile>.yaml`.

A profile names its dataset by `data.path` (a file or a folder). When that path is tracked
by DVC, the pointer `<data.path>.dvc` is committed beside it (written by `dvc add`) and
records the content's md5; the data itself lives in a DVC remote (`dvc remote add -d`: a
folder, S3, GCS, ...). `pull` makes the working tree hold exactly that version:

- data already there with the recorded md5: nothing to do (no DVC call, no network);
- missing: `dvc pull <pointer>` fetches it, and its md5 is checked again;
- there but different: an error, never a silent train on other data than the commit says.

Synthetic profiles have nothing to pull; a path that DVC does not track is used as it is.
Every failure is one line naming the dataset and the fix. CI runs `data pull` before
each stage that reads data (train, evaluate, export), so a runner needs no copy of its own.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from .config import Config
from .errors import DatasetError
from .provenance import file_hexdigest

# DVC must never phone home from CI (analytics, update checks).
_DVC_ENVIRONMENT = {"DVC_NO_ANALYTICS": "1", "DVC_IGNORE_UPDATER": "1"}
# How long a pull may take before it is given up (large datasets on slow remotes).
PULL_TIMEOUT_SECONDS = 3600


@dataclass(frozen=True)
class Tracked:
    """What a `.dvc` pointer says about one output."""

    path: Path
    pointer: Path
    md5: str  # a file's md5, or a folder's manifest md5 ending in ".dir"

    @property
    def is_folder(self) -> bool:
        return self.md5.endswith(".dir")


def pointer_of(path: Path) -> Path:
    return path.with_name(path.name + ".dvc")


def read_pointer(path: Path) -> Tracked | None:
    """The DVC pointer of `path`, or None when DVC does not track it."""
    pointer = pointer_of(path)
    if not pointer.is_file():
        return None
    try:
        outs = yaml.safe_load(pointer.read_text(encoding="utf-8"))["outs"]
        (out,) = outs
        md5 = str(out["md5"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as error:
        raise DatasetError(
            f"{pointer} is not a DVC pointer with one output ({error!r}): recreate it with "
            f"`dvc add {path}`"
        ) from None
    return Tracked(path, pointer, md5)


def run(config: Config) -> str:
    """The `data pull` stage: pull, and say what was done."""
    message = pull(config)
    print(message)
    return message


def pull(config: Config) -> str:
    """Make `data.path` hold the version its pointer records; returns what was done."""
    if config.data.source == "synthetic":
        return f"data.source is synthetic in {config.source}: nothing to pull"
    path = Path(str(config.data.path))
    tracked = read_pointer(path)
    if tracked is None:
        if path.exists():
            return f"{path} is not tracked by DVC (no {pointer_of(path)}): using it as it is"
        raise DatasetError(
            f"dataset {path} not found, and DVC does not track it ({pointer_of(path)} is "
            f"missing): fetch it (README, Data), then `dvc add {path}`, `dvc push` and "
            f"commit {pointer_of(path)}"
        )
    # A folder's content is DVC's to check (its md5 is of a manifest): `dvc pull` does.
    if path.exists() and not tracked.is_folder:
        actual = _file_md5(path)
        if actual == tracked.md5:
            return f"{path} is up to date (md5 {tracked.md5}, {tracked.pointer})"
        raise DatasetError(
            f"dataset {path} has md5 {actual}, but {tracked.pointer} records {tracked.md5}: "
            f"`dvc pull --force {tracked.pointer}` replaces it with the recorded version, "
            f"`dvc add {path}` records this one (then commit the pointer)"
        )
    _dvc_pull(tracked)
    if not path.exists():
        raise DatasetError(
            f"`dvc pull {tracked.pointer}` left no {path}: is the pointer's `path` right?"
        )
    if not tracked.is_folder and (pulled := _file_md5(path)) != tracked.md5:
        raise DatasetError(
            f"dataset {path} came from the DVC remote with md5 {pulled}, not the "
            f"{tracked.md5} that {tracked.pointer} records: the remote's copy is corrupt; "
            f"`dvc push` it again from a good copy"
        )
    return f"pulled {path} (md5 {tracked.md5}) with DVC"


def _dvc_pull(tracked: Tracked) -> None:
    try:
        result = subprocess.run(
            [sys.executable, "-m", "dvc", "pull", str(tracked.pointer)],
            capture_output=True,
            text=True,
            timeout=PULL_TIMEOUT_SECONDS,
            env={**os.environ, **_DVC_ENVIRONMENT},
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DatasetError(
            f"`dvc pull {tracked.pointer}` took over {PULL_TIMEOUT_SECONDS} s: check the "
            "remote's speed, or pull the data onto the runner beforehand"
        ) from None
    if result.returncode == 0:
        return
    raise DatasetError(_explain_failure(tracked, result.stdout + result.stderr))


def _explain_failure(tracked: Tracked, output: str) -> str:
    """One line for what `dvc pull` printed."""
    dataset = f"dataset {tracked.path} ({tracked.pointer}, md5 {tracked.md5})"
    if "No module named dvc" in output:
        return f"{dataset} is tracked by DVC, which is not installed: pip install -e '.[train]'"
    if "No remote provided and no default remote set" in output:
        return (
            f"{dataset}: this repository has no default DVC remote; add one with "
            "`dvc remote add -d storage s3://BUCKET/PATH` (or a folder, gs://...) and commit "
            ".dvc/config (README, Data)"
        )
    if "do not exist neither locally nor on remote" in output:
        return (
            f"{dataset} is not in the DVC remote {_remote_description()}: it was never pushed "
            "(`dvc push` where it was added), the remote is unreachable, or its copy is "
            "corrupt"
        )
    errors = [line for line in output.splitlines() if line.startswith("ERROR")]
    detail = (errors or output.strip().splitlines() or ["no output"])[-1]
    return (
        f"`dvc pull` of {dataset} failed: {detail.removeprefix('ERROR: ')} (check the "
        "remote's URL and the credentials the CI job passes: README, Data)"
    )


def _remote_description() -> str:
    """The default remote's name and URL, as `dvc remote list` prints them."""
    try:
        listed = subprocess.run(
            [sys.executable, "-m", "dvc", "remote", "list"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **_DVC_ENVIRONMENT},
            check=False,
        ).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return "(unknown)"
    return " ".join(listed[:2]) or "(none)"


def _file_md5(path: Path) -> str:
    """The md5 DVC records for a file (`hash: md5`): of its content, as it is."""
    return file_hexdigest(path, lambda: hashlib.md5(usedforsecurity=False))

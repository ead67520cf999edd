"""The upload-artifact stand-in (tests only; see tests/README.md).

Copy ARTIFACT_PATHS (one per line) into $STANDIN_ARTIFACTS/ARTIFACT_NAME, relative to
their least common ancestor as actions/upload-artifact does (a folder given alone is its
own root, a single file's root is its parent). Errors exit 1 with one line.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def store() -> Path:
    return Path(os.environ["STANDIN_ARTIFACTS"]) / os.environ["ARTIFACT_NAME"]


def upload_root(paths: list[Path]) -> Path:
    if len(paths) == 1:
        return paths[0] if paths[0].is_dir() else paths[0].parent
    return Path(os.path.commonpath([str(path) for path in paths]))


def upload() -> None:
    wanted = [Path(line.strip()) for line in os.environ["ARTIFACT_PATHS"].splitlines()]
    paths = [path.resolve() for path in wanted if str(path) != "."]
    existing = [path for path in paths if path.exists()]
    if not existing:
        if os.environ.get("IF_NO_FILES_FOUND", "warn") == "error":
            sys.exit(f"upload-artifact stand-in: no files found at {', '.join(map(str, wanted))}")
        print("upload-artifact stand-in: no files found; nothing uploaded")
        return
    root = upload_root(paths)
    target = store()
    if target.exists():
        sys.exit(f"upload-artifact stand-in: an artifact named {target.name!r} already exists")
    for path in existing:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            destination = target / file.relative_to(root)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, destination)
            print(f"uploaded {destination.relative_to(target)}")


if __name__ == "__main__":
    upload()

"""Fetching public datasets for real training: download once, check, keep nothing broken.

Each family names its public datasets (`Family.downloads`, run as `python -m <package>
data download-<name>`): an `Archive` (URL and the checksums its publisher gives) and a
converter to a format `data.source` reads. `fetch` downloads through a `.part` file with
a progress bar, reuses an archive that is already there and checks out, and removes
anything whose checksum is wrong. Tests convert small fake archives; only users download.
"""

from __future__ import annotations

import hashlib
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import DatasetError


@dataclass(frozen=True)
class Archive:
    url: str
    # The publisher's checksums; None where it gives none (the converter then checks the
    # archive's structure, and the data's sha256 is recorded with every run).
    md5: str | None = None
    sha256: str | None = None

    @property
    def file_name(self) -> str:
        return Path(self.url).name


def fetch(archive: Archive, directory: Path, url: str | None = None) -> Path:
    """The archive in `directory`, downloaded from `url` (default: its own) unless a copy
    with the right checksums is there already."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / archive.file_name
    if path.is_file() and _checksums_match(path, archive):
        print(f"reusing {path} (checksums match)")
        return path
    source = url or archive.url
    _download(source, path)
    if not _checksums_match(path, archive):
        path.unlink()
        raise DatasetError(
            f"{source} downloaded with the wrong checksum (expected sha256 {archive.sha256}, "
            f"md5 {archive.md5}); the file was removed: try again, or fetch it by hand to {path}"
        )
    return path


def _checksums_match(path: Path, archive: Archive) -> bool:
    sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            sha256.update(block)
            md5.update(block)
    return archive.sha256 in (None, sha256.hexdigest()) and archive.md5 in (None, md5.hexdigest())


def _download(url: str, destination: Path) -> None:
    """Stream `url` to `destination` through a .part file, with a progress line."""
    from tqdm import tqdm

    partial = destination.with_name(destination.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as file:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=destination.name, file=sys.stderr
            ) as progress:
                for block in iter(lambda: response.read(1 << 20), b""):
                    file.write(block)
                    progress.update(len(block))
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise DatasetError(
            f"cannot download {url}: {error}; check the network, or fetch the file by hand "
            f"to {destination}"
        ) from error
    partial.replace(destination)

"""Fetch CIFAR-10 for real training: the official python tarball, checked, converted to .npz.

`python -m <package> data download-cifar10 --out data/cifar10.npz` downloads
https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (about 163 MiB), checks its
published sha256 and md5, and writes an .npz with `x` uint8 (60000, 3, 32, 32), `y`
int64 labels and `class_names`, which `data.source: npz` reads. The 50000 training and
10000 test images are merged: this repository makes its own seeded split.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import pickle
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DatasetError

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_BATCHES = (*(f"data_batch_{index}" for index in range(1, 6)), "test_batch")
CIFAR10_SHAPE = (3, 32, 32)
# numpy's array-rebuilding function, which pickled arrays name as numpy.core (numpy 1) or
# numpy._core (numpy 2); taken from an array so that it works with both.
_NUMPY_RECONSTRUCT = np.zeros(1).__reduce__()[0]


def download_cifar10(out: str | Path, url: str = CIFAR10_URL) -> Path:
    """Download (or reuse) the checked tarball next to `out` and convert it to `out`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tarball = out.parent / Path(url).name
    if tarball.is_file() and _checksums_match(tarball):
        print(f"reusing {tarball} (checksums match)")
    else:
        _download(url, tarball)
        if not _checksums_match(tarball):
            tarball.unlink()
            raise DatasetError(
                f"{url} downloaded with the wrong checksum (expected sha256 {CIFAR10_SHA256}, "
                f"md5 {CIFAR10_MD5}); the file was removed: try again, or fetch it by hand "
                f"to {tarball}"
            )
    cifar10_tarball_to_npz(tarball, out)
    return out


def cifar10_tarball_to_npz(tarball: Path, out: Path) -> Path:
    """Convert CIFAR-10's python tarball (pickled batches) to one .npz of x, y, class_names."""
    try:
        with tarfile.open(tarball, "r:*") as archive:
            members = {Path(member.name).name: member for member in archive.getmembers()}
            missing = [name for name in (*CIFAR10_BATCHES, "batches.meta") if name not in members]
            if missing:
                raise DatasetError(
                    f"{tarball} lacks {', '.join(missing)}: it is not the CIFAR-10 python "
                    "tarball (cifar-10-python.tar.gz)"
                )
            batches = [_read_pickle(archive, members[name]) for name in CIFAR10_BATCHES]
            meta = _read_pickle(archive, members["batches.meta"])
    except (tarfile.TarError, OSError) as error:
        raise DatasetError(f"cannot read {tarball} as a tar archive: {error}") from error
    try:
        x = np.concatenate([np.asarray(batch["data"], dtype=np.uint8) for batch in batches])
        y = np.concatenate([np.asarray(batch["labels"], dtype=np.int64) for batch in batches])
        class_names = np.array([str(name) for name in meta["label_names"]])
    except (KeyError, TypeError, ValueError) as error:
        raise DatasetError(f"{tarball} has an unexpected batch layout: {error!r}") from error
    if x.ndim != 2 or x.shape[1] != int(np.prod(CIFAR10_SHAPE)) or len(x) != len(y):
        raise DatasetError(
            f"{tarball}: batches hold data of shape {list(x.shape)} and {len(y)} labels; "
            f"expected (N, {int(np.prod(CIFAR10_SHAPE))}) and N labels"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, x=x.reshape(len(x), *CIFAR10_SHAPE), y=y, class_names=class_names)
    print(f"wrote {len(x)} images of {len(class_names)} classes to {out}")
    return out


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles only what CIFAR batches hold (dicts, lists, numpy arrays): pickles can
    run arbitrary code, and this one came from the internet."""

    ALLOWED: dict[tuple[str, str], Any] = {
        ("numpy.core.multiarray", "_reconstruct"): _NUMPY_RECONSTRUCT,
        ("numpy._core.multiarray", "_reconstruct"): _NUMPY_RECONSTRUCT,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def _read_pickle(archive: tarfile.TarFile, member: tarfile.TarInfo) -> dict[str, Any]:
    file = archive.extractfile(member)
    if file is None:
        raise DatasetError(f"{member.name} in the tarball is not a regular file")
    try:
        # latin1: the batches were pickled by Python 2; this is how numpy reads those.
        batch = _ArraysOnlyUnpickler(io.BytesIO(file.read()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise DatasetError(f"{member.name} is not a CIFAR-10 batch: {error}") from error
    if not isinstance(batch, dict):
        raise DatasetError(f"{member.name} holds {type(batch).__name__}, expected a dict")
    return batch


def _checksums_match(path: Path) -> bool:
    sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            sha256.update(block)
            md5.update(block)
    return sha256.hexdigest() == CIFAR10_SHA256 and md5.hexdigest() == CIFAR10_MD5


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

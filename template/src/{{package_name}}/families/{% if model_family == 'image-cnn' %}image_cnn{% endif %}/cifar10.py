"""CIFAR-10 for real training: the official python tarball, checked, converted to .npz.

`python -m <package> data download-cifar10 --out data/cifar10.npz` downloads
https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (about 163 MiB), checks its
published sha256 and md5, and writes an .npz with `x` uint8 (60000, 3, 32, 32), `y`
int64 labels and `class_names`, which `data.source: npz` reads. The 50000 training and
10000 test images are merged: this repository makes its own seeded split.
"""

from __future__ import annotations

import codecs
import io
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from ...download import Archive, fetch
from ...errors import DatasetError

CIFAR10 = Archive(
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    md5="c58f30108f718f92721af3b95e74349a",
    sha256="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
)
CIFAR10_BATCHES = (*(f"data_batch_{index}" for index in range(1, 6)), "test_batch")
CIFAR10_SHAPE = (3, 32, 32)
# numpy's array-rebuilding function, which pickled arrays name as numpy.core (numpy 1) or
# numpy._core (numpy 2); taken from an array so that it works with both.
_NUMPY_RECONSTRUCT = np.zeros(1).__reduce__()[0]


def download_cifar10(out: Path, url: str | None = None) -> Path:
    """Download (or reuse) the checked tarball next to `out` and convert it to `out`."""
    return cifar10_tarball_to_npz(fetch(CIFAR10, out.parent, url), out)


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

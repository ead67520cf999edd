"""UCI Human Activity Recognition for real training, as an .npz of sensor windows.

`python -m <package> data download-uci-har` fetches
https://archive.ics.uci.edu/static/public/240/human+activity+recognition+using+smartphones.zip
(about 60 MiB; the UCI archive wraps `UCI HAR Dataset.zip` in it) and converts the raw
inertial signals: 10299 windows of 128 time steps (2.56 s at 50 Hz) of 9 features
(body acceleration, gyroscope and total acceleration, x/y/z) and 6 activities
(`activity_labels.txt`: WALKING ... LAYING), train and test merged. UCI publishes no
checksum: the archive's structure and shapes are checked, and the data's sha256 is
recorded with every run that trains on it.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from ...download import Archive, fetch
from ...errors import DatasetError

UCI_HAR = Archive(
    url="https://archive.ics.uci.edu/static/public/240/human+activity+recognition+using+smartphones.zip"
)
ROOT = "UCI HAR Dataset"
SIGNALS = tuple(
    f"{kind}_{axis}" for kind in ("body_acc", "body_gyro", "total_acc") for axis in "xyz"
)
STEPS = 128


def download_uci_har(out: Path, url: str | None = None) -> Path:
    return uci_har_zip_to_npz(fetch(UCI_HAR, out.parent, url), out)


def uci_har_zip_to_npz(archive: Path, out: Path) -> Path:
    try:
        with zipfile.ZipFile(archive) as outer:
            inner_name = f"{ROOT}.zip"
            if inner_name in outer.namelist():
                with zipfile.ZipFile(io.BytesIO(outer.read(inner_name))) as inner:
                    x, y, names = _convert(inner, archive)
            else:
                x, y, names = _convert(outer, archive)
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, ValueError) as error:
        raise DatasetError(f"cannot read {archive} as the UCI HAR zip: {error}") from error
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, x=x, y=y, class_names=np.array(names))
    print(f"wrote {len(x)} windows {list(x.shape[1:])} of {len(names)} activities to {out}")
    return out


def _convert(zipped: zipfile.ZipFile, archive: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    names = set(zipped.namelist())

    def read(name: str) -> str:
        if name not in names:
            raise DatasetError(f"{archive} lacks {name}: it is not the UCI HAR dataset")
        return zipped.read(name).decode("utf-8")

    activities = [
        line.split(maxsplit=1)
        for line in read(f"{ROOT}/activity_labels.txt").splitlines()
        if line.strip()
    ]
    class_names = [name.strip() for _, name in sorted(activities, key=lambda item: int(item[0]))]
    xs, ys = [], []
    for split in ("train", "test"):
        signals = [
            np.loadtxt(
                io.StringIO(read(f"{ROOT}/{split}/Inertial Signals/{signal}_{split}.txt")), ndmin=2
            )
            for signal in SIGNALS
        ]
        labels = np.loadtxt(
            io.StringIO(read(f"{ROOT}/{split}/y_{split}.txt")), dtype=np.int64, ndmin=1
        )
        windows = np.stack(signals, axis=-1)  # (N, 128, 9)
        if windows.shape[1:] != (STEPS, len(SIGNALS)) or len(windows) != len(labels):
            raise DatasetError(
                f"{archive}: the {split} signals have shape {list(windows.shape)} for "
                f"{len(labels)} labels; expected (N, {STEPS}, {len(SIGNALS)})"
            )
        xs.append(windows.astype(np.float32))
        ys.append(labels - 1)  # activities are numbered from 1
    y = np.concatenate(ys)
    if y.min() < 0 or y.max() >= len(class_names):
        raise DatasetError(f"{archive}: labels outside the {len(class_names)} activities")
    return np.concatenate(xs), y, class_names

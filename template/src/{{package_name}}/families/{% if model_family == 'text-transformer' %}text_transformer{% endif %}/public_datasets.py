"""SST-2 and IMDB for real training, converted to the text table `data.source: text-table`
reads (a TSV with `text` and `label` columns; labels `negative` and `positive`).

- `data download-sst2`: GLUE's SST-2 (https://dl.fbaipublicfiles.com/glue/data/SST-2.zip,
  7 MiB): the 67349 training and 872 validation sentences (the test split has no labels);
- `data download-imdb`: Stanford's Large Movie Review Dataset
  (https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz, 84 MiB): 50000
  labelled reviews from `aclImdb/{train,test}/{pos,neg}/*.txt` (the unlabelled ones are
  left out).
Both archives are checked against the md5 their loaders publish (torchtext's). Splits are
merged: this repository makes its own seeded split.
"""

from __future__ import annotations

import csv
import io
import tarfile
import zipfile
from pathlib import Path

from ...download import Archive, fetch
from ...errors import DatasetError

SST2 = Archive(
    url="https://dl.fbaipublicfiles.com/glue/data/SST-2.zip", md5="9f81648d4199384278b86e315dac217c"
)
IMDB = Archive(
    url="https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
    md5="7c2ac02c03563afcf9b574c7e56c153a",
)
SENTIMENTS = {"0": "negative", "1": "positive", "neg": "negative", "pos": "positive"}
SST2_MEMBERS = ("SST-2/train.tsv", "SST-2/dev.tsv")


def download_sst2(out: Path, url: str | None = None) -> Path:
    return sst2_zip_to_table(fetch(SST2, out.parent, url), out)


def download_imdb(out: Path, url: str | None = None) -> Path:
    return imdb_tarball_to_table(fetch(IMDB, out.parent, url), out)


def sst2_zip_to_table(archive: Path, out: Path) -> Path:
    rows: list[tuple[str, str]] = []
    try:
        with zipfile.ZipFile(archive) as zipped:
            names = set(zipped.namelist())
            missing = [name for name in SST2_MEMBERS if name not in names]
            if missing:
                raise DatasetError(
                    f"{archive} lacks {', '.join(missing)}: it is not GLUE's SST-2.zip"
                )
            for name in SST2_MEMBERS:
                text = zipped.read(name).decode("utf-8")
                reader = csv.DictReader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
                for line, row in enumerate(reader, start=2):
                    label = SENTIMENTS.get(row.get("label") or "")
                    if label is None or not row.get("sentence"):
                        raise DatasetError(f"{archive}: {name}:{line} is not 'sentence<TAB>0|1'")
                    rows.append((row["sentence"].strip(), label))
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"cannot read {archive} as SST-2's zip: {error}") from error
    return _write_table(rows, out)


def imdb_tarball_to_table(archive: Path, out: Path) -> Path:
    rows: list[tuple[str, str]] = []
    try:
        with tarfile.open(archive, "r:*") as tarball:
            for member in tarball:
                parts = Path(member.name).parts
                # aclImdb/<train|test>/<pos|neg>/<id>_<rating>.txt; unsup/ has no labels.
                if not member.isfile() or len(parts) != 4 or parts[0] != "aclImdb":
                    continue
                if parts[1] not in ("train", "test") or parts[2] not in ("pos", "neg"):
                    continue
                file = tarball.extractfile(member)
                if file is None or not parts[3].endswith(".txt"):
                    continue
                text = file.read().decode("utf-8").replace("<br />", " ").strip()
                rows.append((text, SENTIMENTS[parts[2]]))
    except (tarfile.TarError, OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"cannot read {archive} as the IMDB tarball: {error}") from error
    if not rows or len({label for _, label in rows}) != 2:
        raise DatasetError(
            f"{archive} holds {len(rows)} labelled reviews of "
            f"{len({label for _, label in rows})} classes: it is not aclImdb_v1.tar.gz"
        )
    return _write_table(rows, out)


def _write_table(rows: list[tuple[str, str]], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part")
    with partial.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, delimiter="\t", lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    partial.replace(out)
    print(f"wrote {len(rows)} labelled texts to {out}")
    return out

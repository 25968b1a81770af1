"""Which files under a download's output folder are the dataset's, so that keeping the copy equal to the source's
listing never deletes anything else.

A download claims its output folder by writing a marker (`.ecg-crnn-dataset`, naming the dataset) before the first
byte of the dataset: an interrupted first download still resumes, and a folder the download never claimed is never
pruned. The rules:
- a folder holding anything but the dataset's own entries (its known top-level files and record folders, the
  listing, the marker, the staging folder) is refused, whatever it is: `download --out .` in a checkout would
  otherwise put `.git` and the user's notes under the dataset's rules;
- a folder marked as another dataset is refused;
- files the listing no longer names are removed only in a folder that was already marked when the run began, and
  only where the dataset alone keeps files: below its record folders, or one of its known top-level files. A folder
  holding only the dataset's entries but no marker (a copy made before the marker existed) is adopted: marked, and
  pruned from the next run on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..atomic import write_text
from ..errors import EcgCrnnError
from .checksums import SUMS_NAME
from .datasets import Dataset

MARKER = ".ecg-crnn-dataset"
STAGING = ".partial"
_SHOWN = 5  # foreign entries named in a refusal


def marked_as(out_dir: Path) -> str | None:
    """The dataset the folder's marker names, or None without a marker; a marker that is not ours is refused."""
    path = out_dir / MARKER
    if not path.exists() and not path.is_symlink():
        return None
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > 4096:
            raise ValueError("not a small regular file")
        name = json.loads(path.read_text())["dataset"]
        if not isinstance(name, str):
            raise ValueError("no dataset name")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EcgCrnnError(
            f"{path}: not a dataset marker written by ecg-crnn download ({exc}); refused"
        ) from None
    return name


def foreign_entries(out_dir: Path, dataset: Dataset) -> list[str]:
    """Top-level entries of `out_dir` that are not the dataset's (below its own folders, everything is)."""
    own = dataset.owned_top | {SUMS_NAME, MARKER, STAGING}
    with os.scandir(out_dir) as entries:
        return sorted(
            e.name + ("/" if e.is_dir(follow_symlinks=False) else "") for e in entries if e.name not in own
        )


def claim(out_dir: Path, dataset: Dataset) -> bool:
    """Make `out_dir` the dataset's folder, or refuse it; True when it was marked before this call.

    The marker is written here, before any file of the dataset, so that a first download killed part-way is
    recognized as the dataset's by the next run."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise EcgCrnnError(f"download --out {out_dir}: is not a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        marked = marked_as(out_dir)
        if marked is not None and marked != dataset.name:
            raise EcgCrnnError(
                f"download --out {out_dir}: holds the dataset {marked!r} (see {out_dir / MARKER}), not "
                f"{dataset.name!r}; choose another folder"
            )
        foreign = foreign_entries(out_dir, dataset)
        if foreign:
            more = f" and {len(foreign) - _SHOWN:,} more" if len(foreign) > _SHOWN else ""
            raise EcgCrnnError(
                f"download --out {out_dir}: holds files that are not part of {dataset.name} "
                f"({', '.join(foreign[:_SHOWN])}{more}); refused, because the download keeps its folder equal to "
                "the source's listing and must never delete what it does not own: move them out, or choose an "
                "empty or new folder"
            )
        if marked is None:
            write_text(out_dir / MARKER, json.dumps({"dataset": dataset.name}) + "\n")
    except OSError as exc:
        raise EcgCrnnError(f"download --out {out_dir}: {exc.strerror or exc}") from None
    return marked is not None


def unlisted(out_dir: Path, dataset: Dataset, keep_real: set[str]) -> list[Path]:
    """The dataset's files (and symbolic links) under `out_dir` that the listing no longer names (`keep_real`:
    the listed files' paths with their folders resolved), only in the places the dataset owns, and found
    without following links, so that removing them can never touch anything outside `out_dir`."""
    real_root = os.path.realpath(out_dir)
    stale = []
    for top in sorted(dataset.owned_top):
        path = out_dir / top
        if path.is_dir() and not path.is_symlink():
            stale += _unlisted_below(path, keep_real)
        elif (path.is_symlink() or path.exists()) and os.path.join(real_root, top) not in keep_real:
            stale.append(path)
    return sorted(stale)


def _unlisted_below(folder: Path, keep_real: set[str]) -> list[Path]:
    stale = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(dirpath)
        real_here = os.path.realpath(here)
        for name in filenames + [d for d in dirnames if (here / d).is_symlink()]:
            if os.path.join(real_here, name) not in keep_real:
                stale.append(here / name)
    return stale


def remove(out_dir: Path, dataset: Dataset, stale: list[Path]) -> int:
    """Remove `stale` (links themselves, never their targets), then the directories left empty in the dataset's
    own folders (never `out_dir` itself, never through a link)."""
    for path in stale:
        path.unlink(missing_ok=True)
    for top in sorted(dataset.owned_top):
        folder = out_dir / top
        if not folder.is_dir() or folder.is_symlink():
            continue
        for dirpath, _dirnames, _files in sorted(os.walk(folder, followlinks=False), reverse=True):
            here = Path(dirpath)
            if not here.is_symlink() and not any(here.iterdir()):
                here.rmdir()
    return len(stale)

"""Shared by the benchmarks: a full-size synthetic PTB-XL, timing, and writing a section of BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the benchmarks share the tests' helpers (tests/helpers)

from ecg_crnn.data.synthetic import write_synthetic  # noqa: E402
from tests.helpers.project import prepare  # noqa: E402

FULL_SIZE = 21_799  # records in PTB-XL 1.0.3


def dataset(path: Path, records: int = FULL_SIZE) -> Path:
    """A synthetic PTB-XL of `records` records at `path`, written once and reused."""
    if not (path / "SHA256SUMS.txt").is_file():
        t = time.perf_counter()
        write_synthetic(path, records)
        print(f"synthesized {records} records in {time.perf_counter() - t:.1f} s")
    return path


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - t, result


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section `## name` of BENCHMARKS.md."""
    path = REPO / "BENCHMARKS.md"
    text = (
        path.read_text()
        if path.exists()
        else "# Benchmarks\n\nFigures written by the scripts in `benchmarks/`.\n"
    )
    section = f"## {name}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = (
        pattern.sub(lambda _m: section + "\n", text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + section
    )
    path.write_text(text.rstrip() + "\n")


def prepared(raw: Path, work: Path, window_s: float = 2.5):
    """Filter and segment a dataset with the pipeline's defaults (once), and load the study data."""
    from ecg_crnn.dataset import load_study_data

    prepare(raw, work)
    return load_study_data(work / "filtered", work / "segmented", window_s, splits=("train", "val"))

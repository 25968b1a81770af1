"""Record reading in the filter stage against the serial loop PTB-XL users write.

The naive way (PTB-XL's example_physionet.py, and most repositories after it):
    data = np.array([wfdb.rdsamp(path)[0] for path in paths])
The pipeline's way: `build_cache` (header parsed by hand, samples read with one np.fromfile, checksums
verified, worker processes writing into one memory-mapped int16 array).

Both read the same full-size synthetic dataset in one run, from the page cache. Usage:
    python benchmarks/bench_filter_read.py [--data DIR] [--records N] [--write]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import wfdb
from common import FULL_SIZE, dataset, machine, timed, write_section

from ecg_crnn.data.cache import build_cache
from ecg_crnn.data.signals import SignalCache


def naive(paths: list[Path]) -> np.ndarray:
    return np.array([wfdb.rdsamp(str(p))[0] for p in paths])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "ecg-crnn-bench-ptbxl")
    parser.add_argument("--records", type=int, default=FULL_SIZE)
    parser.add_argument("--write", action="store_true", help="write the figures into BENCHMARKS.md")
    args = parser.parse_args()
    root = dataset(args.data, args.records)
    paths = [root / f for f in pd.read_csv(root / "ptbxl_database.csv")["filename_lr"]]
    n = len(paths)
    build_cache(paths[:500], Path(tempfile.mkdtemp()), workers=1, progress=False)  # warm the page cache

    t_naive, reference = timed(naive, paths)
    rows = [("naive: `[wfdb.rdsamp(p) for p in paths]`", t_naive)]
    for workers in (1, 2):
        out = Path(tempfile.mkdtemp())
        t, _ = timed(build_cache, paths, out, workers=workers, progress=False)
        cache = SignalCache.open(out)
        check = cache.physical([0, n // 2, n - 1]).transpose(0, 2, 1)
        np.testing.assert_allclose(check, reference[[0, n // 2, n - 1]], atol=1e-6)
        rows.append((f"ecg-crnn `build_cache`, {workers} process{'es' if workers > 1 else ''}", t))

    lines = [
        f"{n:,} synthetic 12-lead 10 s records at 100 Hz, read from the page cache; {machine()}.",
        "Both produce the same signals (checked on sampled rows); ecg-crnn also verifies each lead's WFDB",
        "checksum and writes one memory-mappable int16 array.",
        "",
        "| reader | time | records/s | speed-up |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, t in rows:
        lines.append(f"| {name} | {t:.1f} s | {n / t:,.0f} | {t_naive / t:.1f}x |")
    lines += ["", "Run: `python benchmarks/bench_filter_read.py --write`"]
    report = "\n".join(lines)
    print(report)
    if args.write:
        write_section("Filter stage: reading the records", report)


if __name__ == "__main__":
    main()

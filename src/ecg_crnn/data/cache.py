"""The signal cache: every record of a task in one memory-mappable int16 array.

Layout of a cache directory (written by the filter stage):
  signals.npy      int16 (records, leads, samples), digital units, rows in the order of labels.csv
  calibration.npz  gains and baselines (records, leads): physical = (digital - baseline) / gain
  signals.json     sampling rate, lead names, shape
One array instead of 21,799 small files: later stages memory-map it and slice rows without parsing.
"""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import EcgCrnnError
from .records import Header, parse_header, read_digital, to_physical

_CHUNK = 256  # records per task handed to a worker process


@dataclass
class SignalCache:
    signals: np.ndarray  # memory-mapped int16 (N, leads, T)
    gains: np.ndarray
    baselines: np.ndarray
    fs: float
    leads: list[str]

    @classmethod
    def open(cls, directory: Path) -> SignalCache:
        directory = Path(directory)
        try:
            meta = json.loads((directory / "signals.json").read_text())
            cal = np.load(directory / "calibration.npz")
            signals = np.load(directory / "signals.npy", mmap_mode="r")
        except FileNotFoundError as exc:
            raise EcgCrnnError(f"{exc.filename}: signal cache incomplete (re-run the filter stage)") from None
        return cls(signals, cal["gains"], cal["baselines"], float(meta["fs"]), list(meta["leads"]))

    def __len__(self) -> int:
        return self.signals.shape[0]

    def physical(self, rows) -> np.ndarray:
        """Rows in physical units (mV for PTB-XL), float32 (len(rows), leads, T)."""
        rows = np.asarray(rows)
        return to_physical(self.signals[rows], self.gains[rows], self.baselines[rows])


def _read_chunk(out_path: str, start: int, paths: list[str], shape: tuple[int, int]):
    """Worker: read records into rows start.. of the shared memory-mapped output."""
    out = np.load(out_path, mmap_mode="r+")
    gains = np.empty((len(paths), shape[0]), np.float32)
    baselines = np.empty((len(paths), shape[0]), np.int32)
    for i, p in enumerate(paths):
        digital, header = read_digital(Path(p))
        if digital.shape != shape:
            raise EcgCrnnError(
                f"{p}.hea: {digital.shape[0]} leads x {digital.shape[1]} samples, "
                f"but the first record has {shape[0]} x {shape[1]}: records must share one shape"
            )
        out[start + i] = digital
        gains[i] = header.gains
        baselines[i] = header.baselines
    out.flush()
    return start, gains, baselines


def build_cache(record_paths: list[Path], out_dir: Path, workers: int = 2, progress: bool = True) -> None:
    """Read every record into `out_dir` (which must exist, typically a fresh temporary directory)."""
    if not record_paths:
        raise EcgCrnnError("no records to read")
    first: Header = parse_header(record_paths[0].with_suffix(".hea"))
    shape = (first.n_sig, first.n_samples)
    n = len(record_paths)
    sig_path = out_dir / "signals.npy"
    np.lib.format.open_memmap(sig_path, mode="w+", dtype=np.int16, shape=(n, *shape)).flush()
    gains = np.empty((n, shape[0]), np.float32)
    baselines = np.empty((n, shape[0]), np.int32)
    chunks = [(s, [str(p) for p in record_paths[s : s + _CHUNK]]) for s in range(0, n, _CHUNK)]
    bar = tqdm(
        total=n, desc="read records", unit="rec", disable=not progress, mininterval=1.0, file=sys.stderr
    )

    def store(result):
        start, g, b = result
        gains[start : start + len(g)] = g
        baselines[start : start + len(b)] = b
        bar.update(len(g))

    if workers <= 1 or len(chunks) == 1:
        for start, paths in chunks:
            store(_read_chunk(str(sig_path), start, paths, shape))
    else:
        with ProcessPoolExecutor(min(workers, os.cpu_count() or 1)) as pool:
            futures = [pool.submit(_read_chunk, str(sig_path), s, ps, shape) for s, ps in chunks]
            try:
                for fut in as_completed(futures):
                    store(fut.result())
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
    bar.close()
    np.savez(out_dir / "calibration.npz", gains=gains, baselines=baselines)
    meta = {"fs": first.fs, "leads": list(first.leads), "shape": [n, *shape], "dtype": "int16"}
    (out_dir / "signals.json").write_text(json.dumps(meta, indent=2) + "\n")

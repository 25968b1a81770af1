"""The signal cache as later stages read it: every record of a task in one memory-mapped int16 array.

Layout of a cache directory (written by the filter stage, see cache.py):
  signals.npy      int16 (records, leads, samples), digital units, rows in the order of labels.csv
  calibration.npz  gains and baselines (records, leads): physical = (digital - baseline) / gain, in mV
  signals.json     sampling rate, lead names, units, shape
One array instead of 21,799 small files: later stages memory-map it and slice rows without parsing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EcgCrnnError


def to_physical(digital: np.ndarray, gains: np.ndarray, baselines: np.ndarray) -> np.ndarray:
    """Digital (…, n_sig, T) -> physical units (mV for PTB-XL), float32."""
    g = np.asarray(gains, dtype=np.float32)[..., None]
    b = np.asarray(baselines, dtype=np.float32)[..., None]
    return (digital.astype(np.float32) - b) / g


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

"""The segmented data, in memory and standardized, as training and evaluation consume it.

The whole split is loaded once from the filter stage's memory-mapped cache and standardized with the
training folds' statistics; batches are then cut from these arrays directly (random crops for training,
fixed windows for evaluation) instead of going through a per-record Dataset and collate function.
A split is read chunk by chunk straight into one float32 array and standardized in place, so loading it
peaks at its own size (plus a chunk), not twice that: at 500 Hz and 10 s the training folds alone are ~4 GB.
That array is written once per machine and memory-mapped by every job that needs it (shared_data.py), so many
models training side by side share one copy; it holds the same values as one filled in memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .data.labels import load_labels
from .data.signals import SignalCache
from .data.windows import window_layout
from .errors import EcgCrnnError
from .hashing import sha256_arrays
from .layout import rotation_dir
from .shared_data import shared_or_in_memory


@dataclass
class Split:
    x: np.ndarray  # (N, leads, T) float32, standardized
    y: np.ndarray  # (N, classes) float32 0/1
    ecg_ids: np.ndarray
    patient_ids: np.ndarray


@dataclass
class StudyData:
    classes: list[str]
    families: dict[str, str]
    leads: list[str]
    fs: float
    window: int
    stride: int
    eval_starts: list[int]
    mean: np.ndarray
    std: np.ndarray
    splits: dict[str, Split]
    # the whole training folds' record count: a run on a share of them still takes this many records' worth of
    # optimizer steps per epoch, so a learning curve compares data, not training length
    full_train: int = 0

    @property
    def n_leads(self) -> int:
        return len(self.leads)

    def fingerprint(self) -> dict:
        """What identifies this data for a resumable run: the layout, and the content training reads, complete:
        each split's standardized signals (so the signal cache, its gains and baselines and the standardization
        all count), labels and record ids (their order too), and the standardization itself. One sha256 pass over the splits in
        memory (0.6 GB/s measured on 2 shared cores): ~1.6 s for the 0.95 GB of PTB-XL's 100 Hz training and
        validation folds, once per run."""
        return {
            "classes": self.classes,
            "leads": self.leads,
            "fs": self.fs,
            "window": self.window,
            "eval_starts": self.eval_starts,
            "standardization": sha256_arrays(self.mean, self.std),
            "splits": {
                k: {
                    "records": len(v.ecg_ids),
                    "signals": sha256_arrays(v.x),
                    "labels": sha256_arrays(v.y),
                    "ids": sha256_arrays(np.asarray(v.ecg_ids, np.int64)),
                }
                for k, v in sorted(self.splits.items())
            },
        }


def standardize(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return ((x - mean[:, None]) / std[:, None]).astype(np.float32)


def load_standardized(
    cache: SignalCache,
    rows: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    chunk: int | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Rows of the cache in physical units, standardized, as one float32 array filled in place (`out`, or a new
    one): each chunk's digital samples minus their baseline are cast straight into the output, then divided by
    the gain and standardized there, so the only temporary is one chunk of int16 samples. Every operation is
    elementwise, so the values do not depend on the chunk size or on where `out` lives (memory or a mapped file)."""
    if out is None:
        out = np.empty((len(rows), *cache.signals.shape[1:]), np.float32)
    chunk = chunk or max(1, min(256, len(rows) // 16))
    for s in range(0, len(rows), chunk):
        r = rows[s : s + chunk]
        block = out[s : s + len(r)]
        np.subtract(cache.signals[r], cache.baselines[r][..., None], out=block, casting="unsafe")
        block /= cache.gains[r][..., None]
        block -= mean[:, None]
        block /= std[:, None]
    return out


def _shared_split(cache: SignalCache, filtered_dir: Path, rows, mean, std) -> np.ndarray:
    """One split, standardized: the machine's shared read-only copy (see shared_data.py), or one in memory."""
    parts = {
        "signals": filtered_dir / "signals.npy",
        "calibration": filtered_dir / "calibration.npz",
        "rows": rows,
        "mean": mean,
        "std": std,
    }
    shape = (len(rows), *cache.signals.shape[1:])
    return shared_or_in_memory(parts, shape, lambda out: load_standardized(cache, rows, mean, std, out=out))


def load_study_data(
    filtered_dir: Path,
    segmented_dir: Path,
    window_s: float,
    splits=("train", "val", "test"),
    rotation: int = 0,
    fraction: float = 1.0,
) -> StudyData:
    """The splits of the segment stage's `rotation`, with windows of `window_s` seconds (one of study.windows); the
    training split restricted to the nested subset of share `fraction` (study.train_fractions)."""
    filtered_dir, segmented_dir = Path(filtered_dir), Path(segmented_dir)
    table, classes = load_labels(filtered_dir)
    try:
        split = pd.read_csv(rotation_dir(segmented_dir, rotation) / "split.csv")
        std_info = json.loads((rotation_dir(segmented_dir, rotation) / "standardization.json").read_text())
        layout = json.loads((segmented_dir / "layout.json").read_text())
        meta = json.loads((filtered_dir / "classes.json").read_text())
    except FileNotFoundError as exc:
        raise EcgCrnnError(f"{exc.filename}: not found (run the segment stage first)") from None
    window, starts = window_layout(layout, window_s)
    cache = SignalCache.open(filtered_dir)
    mean, std = np.asarray(std_info["mean"], np.float32), np.asarray(std_info["std"], np.float32)
    loaded = {}
    full_train = int((split["split"] == "train").sum())
    if fraction < 1:
        split = split[(split["split"] != "train") | (split["subset_rank"] <= fraction)]
    for name in splits:
        rows = split.loc[split["split"] == name, "row"].to_numpy()
        loaded[name] = Split(
            x=_shared_split(cache, filtered_dir, rows, mean, std),
            y=table.loc[rows, classes].to_numpy(np.float32),
            ecg_ids=table.loc[rows, "ecg_id"].to_numpy(),
            patient_ids=table.loc[rows, "patient_id"].to_numpy(),
        )
    return StudyData(
        classes=classes,
        families=meta.get("families", {c: c for c in classes}),
        leads=cache.leads,
        fs=cache.fs,
        window=window,
        stride=int(layout["stride"]),
        eval_starts=starts,
        mean=mean,
        std=std,
        splits=loaded,
        full_train=full_train,
    )

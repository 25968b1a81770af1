"""The segmented data, in memory and standardized, as training and evaluation consume it.

The whole split is loaded once from the filter stage's memory-mapped cache and standardized with the
training folds' statistics; batches are then cut from these arrays directly (random crops for training,
fixed windows for evaluation) instead of going through a per-record Dataset and collate function.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .data.cache import SignalCache
from .data.filtering import load_labels
from .errors import EcgCrnnError


@dataclass
class Split:
    x: np.ndarray  # (N, leads, T) float32, standardized
    y: np.ndarray  # (N, classes) float32 0/1
    ecg_ids: np.ndarray


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

    @property
    def n_leads(self) -> int:
        return len(self.leads)

    def fingerprint(self) -> dict:
        """What identifies this data for a resumable run (a changed split or layout starts afresh)."""
        return {
            "classes": self.classes,
            "window": self.window,
            "eval_starts": self.eval_starts,
            "mean": [round(float(v), 9) for v in self.mean],
            "sizes": {k: len(v.ecg_ids) for k, v in self.splits.items()},
            "ids": {k: int(np.asarray(v.ecg_ids, np.int64).sum()) for k, v in self.splits.items()},
        }


def standardize(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return ((x - mean[:, None]) / std[:, None]).astype(np.float32)


def load_study_data(filtered_dir: Path, segmented_dir: Path, splits=("train", "val", "test")) -> StudyData:
    filtered_dir, segmented_dir = Path(filtered_dir), Path(segmented_dir)
    table, classes = load_labels(filtered_dir)
    try:
        split = pd.read_csv(segmented_dir / "split.csv")
        std_info = json.loads((segmented_dir / "standardization.json").read_text())
        windows = json.loads((segmented_dir / "windows.json").read_text())
        meta = json.loads((filtered_dir / "classes.json").read_text())
    except FileNotFoundError as exc:
        raise EcgCrnnError(f"{exc.filename}: not found (run the segment stage first)") from None
    cache = SignalCache.open(filtered_dir)
    mean, std = np.asarray(std_info["mean"], np.float32), np.asarray(std_info["std"], np.float32)
    loaded = {}
    for name in splits:
        rows = split.loc[split["split"] == name, "row"].to_numpy()
        loaded[name] = Split(
            x=standardize(cache.physical(rows), mean, std),
            y=table.loc[rows, classes].to_numpy(np.float32),
            ecg_ids=table.loc[rows, "ecg_id"].to_numpy(),
        )
    return StudyData(
        classes=classes,
        families=meta.get("families", {c: c for c in classes}),
        leads=cache.leads,
        fs=cache.fs,
        window=int(windows["window"]),
        stride=int(windows["stride"]),
        eval_starts=list(windows["eval_starts"]),
        mean=mean,
        std=std,
        splits=loaded,
    )

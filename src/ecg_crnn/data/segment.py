"""The segment stage: the split, standardization fitted on the training folds only, and the window layout.

Outputs (one directory, swapped in atomically):
  split.csv               row (into the filter stage's cache), ecg_id, strat_fold, split (train/val/test)
  standardization.json    per-lead mean and std in physical units, from the training folds alone
  layout.json             sampling rate, record length and the evaluation windows' stride in samples; each
                          run's window length comes from study.windows (see `window_layout`)
The signals themselves stay in the filter stage's cache: segmentation is a layout, not a copy.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_dir
from ..config import SegmentSettings
from ..errors import EcgCrnnError
from .cache import SignalCache
from .filtering import load_labels

SPLITS = ("train", "val", "test")


def assign_split(folds: pd.Series, cfg: SegmentSettings) -> pd.Series:
    split = pd.Series(pd.NA, index=folds.index, dtype="object")
    for name, chosen in zip(SPLITS, (cfg.train_folds, cfg.val_folds, cfg.test_folds), strict=True):
        split[folds.isin(chosen)] = name
    return split


def eval_starts(n_samples: int, window: int, stride: int) -> list[int]:
    """Window starts covering the record; the last window is aligned to the end so no tail is lost."""
    starts = list(range(0, n_samples - window + 1, stride))
    if starts[-1] != n_samples - window:
        starts.append(n_samples - window)
    return starts


def window_layout(layout: dict, window_s: float) -> tuple[int, list[int]]:
    """(window in samples, evaluation window starts) of a `window_s`-second window over the records that
    layout.json describes; a window as long as the record is scored once."""
    window = round(window_s * layout["fs"])
    if window < 1:
        raise EcgCrnnError(f"window {window_s:g} s: under one sample at {layout['fs']:g} Hz")
    if window > layout["record_samples"]:
        raise EcgCrnnError(
            f"window {window_s:g} s: longer than the records ({layout['record_samples'] / layout['fs']:g} s)"
        )
    return window, eval_starts(layout["record_samples"], window, layout["stride"])


def fit_standardization(
    cache: SignalCache, rows: np.ndarray, chunk: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Per-lead mean and std over every sample of `rows`, accumulated in float64 chunk by chunk."""
    n_leads = cache.signals.shape[1]
    total, total_sq, count = np.zeros(n_leads), np.zeros(n_leads), 0
    for s in range(0, len(rows), chunk):
        x = cache.physical(rows[s : s + chunk]).astype(np.float64)
        total += x.sum(axis=(0, 2))
        total_sq += np.square(x).sum(axis=(0, 2))
        count += x.shape[0] * x.shape[2]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return mean, np.where(std > 1e-8, std, 1.0)


def run_segment(filtered_dir: Path, out_dir: Path, cfg: SegmentSettings) -> dict:
    filtered_dir, out_dir = Path(filtered_dir), Path(out_dir)
    table, _ = load_labels(filtered_dir)
    cache = SignalCache.open(filtered_dir)
    n_samples = cache.signals.shape[2]
    stride = round(cfg.stride_s * cache.fs)
    if stride < 1:
        raise EcgCrnnError(f"segment.stride_s: {cfg.stride_s} s is under one sample at {cache.fs:g} Hz")
    split = assign_split(table["strat_fold"], cfg)
    counts = {name: int((split == name).sum()) for name in SPLITS}
    empty = [name for name in SPLITS if counts[name] == 0]
    if empty:
        raise EcgCrnnError(
            f"segment: no record falls in the {', '.join(empty)} fold(s) chosen in segment.*_folds"
        )
    train_rows = np.flatnonzero((split == "train").to_numpy())
    mean, std = fit_standardization(cache, train_rows)
    layout = {"fs": cache.fs, "record_samples": n_samples, "stride": stride}
    standardization = {
        "leads": cache.leads,
        "mean": mean.tolist(),
        "std": std.tolist(),
        "fitted_on_folds": cfg.train_folds,
        "records": len(train_rows),
    }
    out = pd.DataFrame(
        {
            "row": np.arange(len(table)),
            "ecg_id": table["ecg_id"],
            "strat_fold": table["strat_fold"],
            "split": split,
        }
    )
    out = out[out["split"].notna()]
    with atomic_dir(out_dir) as tmp:
        out.to_csv(tmp / "split.csv", index=False)
        (tmp / "standardization.json").write_text(json.dumps(standardization, indent=2) + "\n")
        (tmp / "layout.json").write_text(json.dumps(layout, indent=2) + "\n")
    print(
        f"segment: train {counts['train']:,}, val {counts['val']:,}, test {counts['test']:,} records; "
        f"{n_samples} samples per record, evaluation stride {stride}",
        file=sys.stderr,
    )
    return {"counts": counts, **layout}

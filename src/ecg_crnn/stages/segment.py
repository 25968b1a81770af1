"""The segment stage: the split, standardization fitted on the training folds only, and the window layout.

Outputs (one directory, swapped in atomically):
  split.csv               row (into the filter stage's cache), ecg_id, strat_fold, split (train/val/test)
  standardization.json    per-lead mean and std in physical units, from the training folds alone
  layout.json             sampling rate, record length and the evaluation windows' stride in samples; each
                          run's window length comes from study.windows (see data/windows.py)
The signals themselves stay in the filter stage's cache: segmentation is a layout, not a copy.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_dir
from ..config import Params
from ..data.labels import load_labels
from ..data.segment import SPLITS, assign_split, fit_standardization
from ..data.signals import SignalCache
from ..errors import EcgCrnnError
from ..layout import FILTERED, SEGMENTED


@dataclass(frozen=True)
class Paths:
    filtered: Path = FILTERED
    out: Path = SEGMENTED


def run(params: Params, paths: Paths = Paths()) -> dict:
    cfg = params.segment
    table, _ = load_labels(paths.filtered)
    cache = SignalCache.open(paths.filtered)
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
    with atomic_dir(paths.out) as tmp:
        out[out["split"].notna()].to_csv(tmp / "split.csv", index=False)
        (tmp / "standardization.json").write_text(json.dumps(standardization, indent=2) + "\n")
        (tmp / "layout.json").write_text(json.dumps(layout, indent=2) + "\n")
    print(
        f"segment: train {counts['train']:,}, val {counts['val']:,}, test {counts['test']:,} records; "
        f"{n_samples} samples per record, evaluation stride {stride}",
        file=sys.stderr,
    )
    print(f"segment: -> {paths.out}")
    return {"counts": counts, **layout}

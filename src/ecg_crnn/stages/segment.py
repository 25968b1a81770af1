"""The segment stage: the split, standardization fitted on the training folds only, and the window layout.

Outputs (one directory, swapped in atomically), per rotation of the folds (segment.rotations) in rotR/:
  split.csv               row (into the filter stage's cache), ecg_id, strat_fold, split (train/val/test), and for
                          training records subset_rank: the smallest share of study.train_fractions holding it
  standardization.json    per-lead mean and std in physical units, from that rotation's training folds alone
and once:
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
from ..data.segment import SPLITS, assign_split, fit_standardization, rotate, subset_ranks
from ..data.signals import SignalCache
from ..errors import EcgCrnnError
from ..layout import FILTERED, SEGMENTED, rotation_dir


@dataclass(frozen=True)
class Paths:
    filtered: Path = FILTERED
    out: Path = SEGMENTED


def _rotation(table: pd.DataFrame, classes: list[str], cache: SignalCache, params: Params, rotation: int):
    """(split.csv's table, standardization) of one rotation of the split."""
    cfg = params.segment
    split = assign_split(table["strat_fold"], cfg, rotation)
    counts = {name: int((split == name).sum()) for name in SPLITS}
    empty = [name for name in SPLITS if counts[name] == 0]
    if empty:
        raise EcgCrnnError(
            f"segment: no record falls in the {', '.join(empty)} fold(s) chosen in segment.*_folds"
            + (f" (rotation {rotation})" if rotation else "")
        )
    train = (split == "train").to_numpy()
    train_rows = np.flatnonzero(train)
    mean, std = fit_standardization(cache, train_rows)
    ranks = np.full(len(table), np.nan)
    ranks[train] = subset_ranks(
        table["patient_id"].to_numpy()[train], table[classes].to_numpy()[train], rotation
    )
    standardization = {
        "leads": cache.leads,
        "mean": mean.tolist(),
        "std": std.tolist(),
        "fitted_on_folds": rotate(cfg.train_folds, rotation),
        "records": len(train_rows),
    }
    out = pd.DataFrame(
        {
            "row": np.arange(len(table)),
            "ecg_id": table["ecg_id"],
            "strat_fold": table["strat_fold"],
            "split": split,
            "subset_rank": ranks,  # training records: in the subset of share f when subset_rank <= f
        }
    )
    return out[out["split"].notna()], standardization, counts


def run(params: Params, paths: Paths = Paths()) -> dict:
    cfg = params.segment
    table, classes = load_labels(paths.filtered)
    cache = SignalCache.open(paths.filtered)
    n_samples = cache.signals.shape[2]
    stride = round(cfg.stride_s * cache.fs)
    if stride < 1:
        raise EcgCrnnError(f"segment.stride_s: {cfg.stride_s} s is under one sample at {cache.fs:g} Hz")
    layout = {"fs": cache.fs, "record_samples": n_samples, "stride": stride}
    with atomic_dir(paths.out) as tmp:
        for r in cfg.rotations:
            split, standardization, counts = _rotation(table, classes, cache, params, r)
            folder = rotation_dir(tmp, r)
            folder.mkdir()
            split.to_csv(folder / "split.csv", index=False)
            (folder / "standardization.json").write_text(json.dumps(standardization, indent=2) + "\n")
            print(
                f"segment: rotation {r}: train {counts['train']:,}, val {counts['val']:,}, test {counts['test']:,} "
                f"records; {n_samples} samples per record, evaluation stride {stride}",
                file=sys.stderr,
            )
        (tmp / "layout.json").write_text(json.dumps(layout, indent=2) + "\n")
    print(f"segment: {len(cfg.rotations)} rotation(s) -> {paths.out}")
    return {"counts": counts, **layout}

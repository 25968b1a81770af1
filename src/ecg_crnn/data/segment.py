"""The split by fold and the standardization, fitted on the training folds only (the segment stage's library)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import SegmentSettings
from .signals import SignalCache

SPLITS = ("train", "val", "test")


def assign_split(folds: pd.Series, cfg: SegmentSettings) -> pd.Series:
    split = pd.Series(pd.NA, index=folds.index, dtype="object")
    for name, chosen in zip(SPLITS, (cfg.train_folds, cfg.val_folds, cfg.test_folds), strict=True):
        split[folds.isin(chosen)] = name
    return split


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

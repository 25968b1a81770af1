"""The split by fold and the standardization, fitted on the training folds only (the segment stage's library)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import SegmentSettings
from .signals import SignalCache

SPLITS = ("train", "val", "test")


def rotate(folds: list[int], rotation: int) -> list[int]:
    """The folds shifted by `rotation` (mod 10): rotation r of the split 1-8 / 9 / 10 tests fold r (r > 0)."""
    return [(f - 1 + rotation) % 10 + 1 for f in folds]


def assign_split(folds: pd.Series, cfg: SegmentSettings, rotation: int = 0) -> pd.Series:
    split = pd.Series(pd.NA, index=folds.index, dtype="object")
    for name, chosen in zip(SPLITS, (cfg.train_folds, cfg.val_folds, cfg.test_folds), strict=True):
        split[folds.isin(rotate(chosen, rotation))] = name
    return split


def subset_ranks(patients: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Per training record, the smallest share of the training data whose subset holds it (in (0, 1]): the subset of
    share f is every record with rank <= f. Nested by construction (25% inside 50% inside 100%), patient-level (a
    patient's records share one rank) and stratified: patients are grouped by the set of classes their records
    carry, and within each group ranked at random, so every share keeps each group's proportion (a group of one
    patient is kept with probability f)."""
    ids, inverse = np.unique(np.asarray(patients), return_inverse=True)
    per_patient = np.zeros((len(ids), y.shape[1]), bool)
    np.logical_or.at(per_patient, inverse, np.asarray(y, bool))
    rng = np.random.default_rng(seed)
    order, offset = rng.permutation(len(ids)), rng.random(len(ids))
    signature = [per_patient[i].tobytes() for i in range(len(ids))]
    groups: dict[bytes, list[int]] = {}
    for i in order:  # random order within each group
        groups.setdefault(signature[i], []).append(int(i))
    rank = np.empty(len(ids))
    for members in groups.values():
        n = len(members)
        rank[members] = (np.arange(n) + offset[members]) / n
    return rank[inverse]


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

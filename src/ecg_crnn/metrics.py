"""Multi-label metrics, thresholds and the bootstrap, written for speed and checked against scikit-learn.

Conventions (those of scikit-learn, so figures are comparable with published ones):
- AUROC and AUPRC of a class without both positives and negatives are undefined (NaN) and left out of
  macro averages; micro averages pool every (record, class) pair.
- F1 of a class with no positive prediction and no positive label counts as 0 (zero_division=0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

HEADLINE = (
    "macro_auroc",
    "micro_auroc",
    "macro_auprc",
    "micro_f1",
    "macro_f1",
    "hamming_loss",
    "subset_accuracy",
)


def auroc_per_class(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """AUROC of each column (Mann-Whitney U with average ranks for ties), NaN where undefined."""
    y = np.asarray(y, bool)
    ranks = rankdata(s, axis=0)
    n_pos = y.sum(axis=0)
    n_neg = y.shape[0] - n_pos
    rank_sum = np.where(y, ranks, 0).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def average_precision(y: np.ndarray, s: np.ndarray) -> float:
    """Area under the precision-recall curve as a step sum over distinct thresholds (sklearn's AP)."""
    y = np.asarray(y, bool)
    if not y.any():
        return np.nan
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last_of_tie = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    tps = np.cumsum(y_sorted)[last_of_tie]
    fps = np.cumsum(~y_sorted)[last_of_tie]
    precision = tps / (tps + fps)
    recall_gain = np.diff(np.r_[0, tps]) / tps[-1]
    return float(np.sum(recall_gain * precision))


def auprc_per_class(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    return np.array([average_precision(y[:, c], s[:, c]) for c in range(y.shape[1])])


def f1_per_class(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    y, pred = np.asarray(y, bool), np.asarray(pred, bool)
    tp = (y & pred).sum(axis=0)
    denom = y.sum(axis=0) + pred.sum(axis=0)
    return np.divide(2 * tp, denom, out=np.zeros(y.shape[1]), where=denom > 0)


def tune_thresholds(y: np.ndarray, s: np.ndarray, default: float = 0.5) -> np.ndarray:
    """Per class, the score threshold (predict positive when score >= threshold) with the best F1.

    Meant for the validation fold only. Classes without a positive there keep `default`.
    """
    y = np.asarray(y, bool)
    thresholds = np.full(y.shape[1], default)
    for c in range(y.shape[1]):
        if not y[:, c].any():
            continue
        order = np.argsort(-s[:, c], kind="mergesort")
        s_sorted, y_sorted = s[order, c], y[order, c]
        last_of_tie = np.r_[s_sorted[1:] != s_sorted[:-1], True]
        tp = np.cumsum(y_sorted)[last_of_tie]
        predicted = (np.flatnonzero(last_of_tie) + 1).astype(float)
        f1 = 2 * tp / (predicted + y_sorted.sum())
        thresholds[c] = s_sorted[last_of_tie][np.argmax(f1)]
    return thresholds


def headline(y: np.ndarray, s: np.ndarray, thresholds: np.ndarray) -> dict[str, float]:
    """The figures the published studies report, on one set of records."""
    y = np.asarray(y, bool)
    pred = s >= thresholds
    tp = (y & pred).sum()
    return {
        "macro_auroc": float(np.nanmean(auroc_per_class(y, s))),
        "micro_auroc": float(auroc_per_class(y.reshape(-1, 1), s.reshape(-1, 1))[0]),
        "macro_auprc": float(np.nanmean(auprc_per_class(y, s))),
        "micro_f1": float(2 * tp / max(y.sum() + pred.sum(), 1)),
        "macro_f1": float(f1_per_class(y, pred).mean()),
        "hamming_loss": float((y != pred).mean()),
        "subset_accuracy": float((y == pred).all(axis=1).mean()),
    }


def bootstrap_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) record indices drawn with replacement; shared by every architecture so that
    differences between architectures are paired."""
    dtype = np.uint16 if n <= np.iinfo(np.uint16).max else np.uint32
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n)).astype(dtype)


def bootstrap_headline(
    y: np.ndarray, s: np.ndarray, thresholds: np.ndarray, indices: np.ndarray
) -> pd.DataFrame:
    """Headline figures on each resample: one row per resample."""
    return pd.DataFrame([headline(y[idx], s[idx], thresholds) for idx in indices], columns=list(HEADLINE))


def interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    lo, hi = np.nanpercentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)

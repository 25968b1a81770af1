"""Multi-label metrics, thresholds and the bootstrap, written for speed and checked against scikit-learn.

Conventions (those of scikit-learn, so figures are comparable with published ones):
- AUROC and AUPRC of a class without both positives and negatives are undefined (NaN) and left out of
  macro averages; micro averages pool every (record, class) pair.
- F1 of a class with no positive prediction and no positive label counts as 0 (zero_division=0).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


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


def macro_auroc(y: np.ndarray, p: np.ndarray) -> float:
    values = auroc_per_class(y, p)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


# ---- the patient bootstrap ------------------------------------------------------------------------------
#
# A resample draws the test fold's patients with replacement; a record then counts as often as its patient
# was drawn. Each resample is therefore a vector of integer weights over the test records, and every figure
# is computed as a weighted figure: exactly the figure of the resampled records (checked against
# scikit-learn with sample weights), but vectorized over all resamples at once.
#
# The class set is fixed: the classes with both positives and negatives in the test fold. Resamples that
# would lose a positive or a negative of one of them are drawn again, so the point estimate and every
# resample average over the same classes and the interval describes the figure the point estimates.

TESTED = ("macro_auroc", "macro_auprc", "micro_f1", "subset_accuracy", "hamming_loss")
LOWER_IS_BETTER = frozenset({"hamming_loss"})


class BootstrapError(ValueError):
    pass


def scored_classes(y: np.ndarray) -> np.ndarray:
    """Mask of the classes AUROC and AUPRC are defined for: both positives and negatives present."""
    y = np.asarray(y, bool)
    return y.any(axis=0) & (~y).any(axis=0)


def patient_weights(
    patients: np.ndarray, y: np.ndarray, resamples: int, seed: int, max_draws: int = 200
) -> tuple[np.ndarray, float]:
    """(resamples, records) integer weights, and the share of draws kept: each test patient drawn with
    replacement, each record weighted by its patient's count; resamples that lose every positive or every
    negative of a scored class are redrawn (they would change the class set a macro average runs over), so the
    intervals are conditional on keeping every scored class; the report states the share kept."""
    y = np.asarray(y, bool)[:, scored_classes(y)]
    _, inverse = np.unique(np.asarray(patients), return_inverse=True)
    n_patients = inverse.max() + 1
    rng = np.random.default_rng(seed)
    kept: list[np.ndarray] = []
    have, drawn = 0, 0
    while have < resamples:
        batch = max(64, resamples - have)
        draws = rng.integers(0, n_patients, size=(batch, n_patients))
        counts = np.zeros((batch, n_patients), np.uint16)
        np.add.at(counts, (np.arange(batch)[:, None], draws), 1)
        w = counts[:, inverse]
        ok = ((w @ y) > 0).all(axis=1) & ((w @ ~y) > 0).all(axis=1)
        kept.append(w[ok])
        have += int(ok.sum())
        drawn += batch
        if drawn >= max_draws * resamples and have < resamples:
            raise BootstrapError(
                f"only {have} of {drawn} patient resamples keep a positive and a negative of every class "
                f"scored on the test fold; the fold is too small for a bootstrap over these classes"
            )
    return np.concatenate(kept)[:resamples], have / drawn


def _group_sums(values: np.ndarray, order: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.add.reduceat(values[:, order], starts, axis=1)


def weighted_ranking_metrics(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUROC and average precision (scikit-learn's AP) of one class under each row of weights w (B, N).

    Scores are sorted once; within each run of tied scores the weights of positives and negatives are
    summed, so ties count half for AUROC and as one threshold for AP, as scikit-learn does."""
    y = np.asarray(y, bool)
    order = np.argsort(s, kind="mergesort")
    s_sorted = s[order]
    starts = np.r_[0, np.flatnonzero(s_sorted[1:] != s_sorted[:-1]) + 1]
    wf = w.astype(np.float64)
    pos = _group_sums(wf * y, order, starts)  # (B, G): ascending scores
    neg = _group_sums(wf * ~y, order, starts)
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    below = np.cumsum(neg, axis=1) - neg
    with np.errstate(divide="ignore", invalid="ignore"):
        auroc = (pos * (below + 0.5 * neg)).sum(axis=1) / (n_pos * n_neg)
        tp = np.cumsum(pos[:, ::-1], axis=1)  # descending thresholds
        fp = np.cumsum(neg[:, ::-1], axis=1)
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1e-300), 0.0)
        ap = (pos[:, ::-1] * precision).sum(axis=1) / n_pos
    return auroc, ap


def weighted_figures(
    y: np.ndarray, s: np.ndarray, thresholds: np.ndarray, w: np.ndarray, scored: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The tested figures under each row of weights w (B, N), and the per-class AUROC and AUPRC ({"auroc",
    "auprc"}: (B, classes), NaN for classes outside `scored`: the comparison corrects macro figures for rare
    classes class by class). Macro AUROC/AUPRC average over the `scored` classes; the thresholded figures
    (F1, subset accuracy, Hamming loss) over every class."""
    y = np.asarray(y, bool)
    w = np.atleast_2d(w)
    n_classes = y.shape[1]
    auroc = np.full((len(w), n_classes), np.nan)
    auprc = np.full((len(w), n_classes), np.nan)
    for c in np.flatnonzero(scored):
        auroc[:, c], auprc[:, c] = weighted_ranking_metrics(y[:, c], s[:, c], w)
    pred = s >= thresholds
    wf = w.astype(np.float64)
    tp = (wf @ (y & pred)).sum(axis=1)
    fp = (wf @ (~y & pred)).sum(axis=1)
    fn = (wf @ (y & ~pred)).sum(axis=1)
    total = wf.sum(axis=1)
    figures = {
        "macro_auroc": auroc[:, scored].mean(axis=1),
        "macro_auprc": auprc[:, scored].mean(axis=1),
        "micro_f1": np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=(2 * tp + fp + fn) > 0),
        "subset_accuracy": (wf @ (pred == y).all(axis=1)) / total,
        "hamming_loss": (wf @ (pred != y).sum(axis=1)) / (total * n_classes),
    }
    return figures, {"auroc": auroc, "auprc": auprc}


def bootstrap_figures(
    y: np.ndarray, s: np.ndarray, thresholds: np.ndarray, weights: np.ndarray, chunk: int = 250
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """weighted_figures over all resamples, in chunks that bound memory."""
    scored = scored_classes(y)
    parts = [
        weighted_figures(y, s, thresholds, weights[i : i + chunk], scored)
        for i in range(0, len(weights), chunk)
    ]
    figures = {k: np.concatenate([p[0][k] for p in parts]) for k in TESTED}
    return figures, {k: np.concatenate([p[1][k] for p in parts]) for k in ("auroc", "auprc")}


def interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    lo, hi = np.nanpercentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)

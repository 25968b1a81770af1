"""One contrast pooled over J test folds (fold rotation).

Rotation: each of J folds is the test fold once, with its own validation fold, and the models are trained on
the remaining folds, so the J training sets overlap (with 10 folds, two rotations share 6 or 7 of their 8).

What is estimated decides the variance, so both targets are offered:

- pool_folds (the default): the target is what the rotation's own models do, on average over the J rotations:
  the mean over folds of each rotation's expected contrast (over seeds and over patients like the test
  patients). The training sets are then fixed, not sampled; their overlap correlates the rotations' targets,
  not the errors around them. Each fold's error comes from its own test patients (disjoint across folds) and
  its own seeds (trained afresh), so the errors are independent and Var(mean) = sum_j var_j / J^2, with
  Welch-Satterthwaite degrees of freedom over every fold's components. This is the single split's target
  (models trained on the given training folds) made J times more precise, and it needs no assumption about
  how training sets interact.
- corrected_resampled_t (Nadeau & Bengio 2003): the target is the contrast expected of a NEW training set of
  this size (the learning algorithms, not these models). The spread of the J per-fold estimates, inflated by
  1/J + n_test/n_train, on J - 1 degrees of freedom. The factor is exact when the per-fold estimates
  correlate at n_test / (n_test + n_train) and conservative below; it is a heuristic above (their paper).

heterogeneity tests whether the folds disagree beyond their own patient and seed noise (Cochran's Q): if they
do, the rotations' models differ by training set, and a claim about a new training set needs the second target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2

from .contrasts import Estimate, SeedPart


def pool_folds(per_fold: Sequence[Estimate]) -> Estimate:
    """The equal-weight mean of one contrast over J folds, each fold's patient and seed parts independent."""
    j = len(per_fold)
    if j < 1:
        raise ValueError("pooling needs at least one fold")
    patient = [e.patient_var / j**2 for e in per_fold]
    denom = sum(
        v**2 / e.patient_df for v, e in zip(patient, per_fold, strict=True) if np.isfinite(e.patient_df)
    )
    patient_df = sum(patient) ** 2 / denom if denom > 0 else np.inf
    parts = tuple(
        SeedPart(p.weight / j, p.variance, p.n_seeds) for e in per_fold for p in e.seed_parts
    )  # weight / J: each part's contribution w^2 s^2 / K shrinks by J^2
    lo = float(np.mean([e.bounds[0] for e in per_fold]))
    hi = float(np.mean([e.bounds[1] for e in per_fold]))
    return Estimate(
        float(np.mean([e.point for e in per_fold])), float(sum(patient)), patient_df, parts, (lo, hi)
    )


def corrected_resampled_t(
    values: np.ndarray, n_test: float, n_train: float, bounds: tuple[float, float] = (-np.inf, np.inf)
) -> Estimate:
    """Nadeau & Bengio's corrected resampled t on the J per-fold estimates: variance (1/J + n_test/n_train) s^2
    on J - 1 degrees of freedom."""
    values = np.asarray(values, float)
    j = len(values)
    if j < 2:
        raise ValueError("the corrected resampled t needs at least 2 folds")
    # Carried as one 'seed part' of J values: contribution weight^2 s^2 / J on J - 1 degrees of freedom.
    weight = float(np.sqrt(1.0 + j * n_test / n_train))
    part = SeedPart(weight, float(np.var(values, ddof=1)), j)
    return Estimate(float(values.mean()), 0.0, np.inf, (part,), bounds)


@dataclass(frozen=True)
class Heterogeneity:
    q: float
    df: int
    p: float


def heterogeneity(per_fold: Sequence[Estimate]) -> Heterogeneity:
    """Cochran's Q: do the folds' estimates differ by more than their own variances allow?"""
    d = np.array([e.point for e in per_fold])
    v = np.array([e.var for e in per_fold])
    if len(d) < 2 or (v <= 0).any():
        raise ValueError("heterogeneity needs at least 2 folds with positive variances")
    w = 1.0 / v
    q = float(np.sum(w * (d - np.sum(w * d) / w.sum()) ** 2))
    return Heterogeneity(q, len(d) - 1, float(chi2.sf(q, len(d) - 1)))

"""How much of a class's variance the patient bootstrap sees, when the class has few positive patients.

The test fold's bootstrap draws patients with replacement and redraws any resample that loses every positive
of a scored class (metrics.patient_weights). For a class with n positive patients, AUROC is, to first order, the
mean of the positives' placement values (the share of negatives each positive outranks) plus a term from the
many negatives. Under resampling the n positives get counts that are, for n much smaller than the number of test
patients, independent Poisson(1); given their total T >= 1 the resampled mean has variance (plug-in variance of
the n values) / T. Averaged over T, the bootstrap variance is

    r(n) = (n - 1) * E[1/T | T >= 1],   T ~ Poisson(n),

times the true variance sigma^2 / n of the mean: r(2) = 0.58, r(3) = 0.87, r(4) = 0.99, then slightly above 1
(1.03 at 5 to 8, 1.003 at 20) and -> 1. (The n - 1 is the plug-in variance's bias; the random total T, whose
E[1/T] exceeds 1/n, offsets it and for n >= 5 over-shoots a little.)

What this module does about it, and why:
- Each class's resampled deviations are scaled by sqrt(1 / r(n)), so that its share of a macro average's
  bootstrap variance is unbiased for the positives' part. The negatives' part of a rare class is tiny (about
  2,000 negatives against 2 positives), so scaling the whole class over-states it by a negligible amount.
- The variance of a class with n positive patients rests on n - 1 degrees of freedom (two positives give one
  squared difference). Worse, it is small exactly when the class's AUROC is over-estimated: placement values
  pile up near 1 with a long lower tail, so two positives scored alike mean both a high AUROC and a tiny
  variance, and a model's interval then misses from above (in the fold-10 simulation of the tests: 92.5 %
  coverage with the corrected variance alone). So the classes with fewer than 20 minority patients are
  pooled: no rare class is taken as less variable, per patient, than the rare classes are on average
  (floor_rare_shares). The floor is conservative for differences between exchangeable models, whose paired
  values are not skewed that way; it is kept for them too, because a difference can be skewed: one model
  much better on the rare classes and worse on the rest, equal in macro-AUROC, is called worse 5.0 % of the
  time without the floor where 2.5 % is promised (1.2 % with it).
- A macro figure's patient part then gets Welch-Satterthwaite degrees of freedom from its classes' shares.
The count that matters is the smaller side of the class (positive or negative patients).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.special import gammaln


def bootstrap_variance_ratio(n) -> np.ndarray:
    """r(n): expected bootstrap variance over true variance of a mean of n patients' values, under resamples
    that keep at least one of them (see the module docstring). NaN for n < 2 (no variance is seen at all)."""
    n = np.atleast_1d(np.asarray(n, dtype=float))
    return np.array([_ratio(float(m)) for m in n.ravel()]).reshape(n.shape)


@lru_cache(maxsize=4096)
def _ratio(m: float) -> float:
    if not m >= 2:
        return np.nan
    t = np.arange(1, int(m + 12 * np.sqrt(m) + 40), dtype=float)  # the Poisson mass beyond is < 1e-20
    pmf = np.exp(t * np.log(m) - m - gammaln(t + 1))
    return float((m - 1.0) * np.sum(pmf / t) / -np.expm1(-m))


def variance_correction(n) -> np.ndarray:
    """The factor 1 / r(n) by which a class's bootstrap variance is multiplied."""
    n = np.atleast_1d(np.asarray(n))
    if np.any(n < 2):
        raise ValueError(
            "a class with fewer than 2 positive (or negative) test patients has no variance the bootstrap can "
            "see; leave it out of the figure or report it without an interval"
        )
    return 1.0 / bootstrap_variance_ratio(n)


def floor_rare_shares(
    shares: np.ndarray, minority: np.ndarray, below: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Floor each rare class's variance share at the rare classes' pooled per-patient variance.

    A class with n minority patients has a variance estimate on n - 1 degrees of freedom; with 2 positives it
    collapses whenever both happen to be scored alike, exactly when its AUROC is over-estimated (placement
    values pile up near 1 with a long lower tail), and intervals then miss from above. The classes with fewer
    than `below` minority patients are pooled: their per-patient variance (share x n) averaged with weights
    n - 1, and each rare class gets at least that pooled value / n (its own when larger: conservative where
    the classes differ). Returns (new shares, their degrees of freedom, the pool's degrees of freedom); the
    floored shares all rest on the one pooled estimate."""
    rare = minority < below
    out, dfs = shares.copy(), minority - 1.0
    if rare.sum() < 2:
        return out, dfs, np.inf
    df_pool = float(np.sum(minority[rare] - 1.0))
    per_patient = np.sum((minority[rare] - 1.0) * shares[rare] * minority[rare]) / df_pool
    floor = rare & (shares * minority < per_patient)
    out[floor] = per_patient / minority[floor]
    dfs[floor] = np.nan  # marked: counted together as one term on df_pool
    return out, dfs, df_pool


def minority_patients(y: np.ndarray, patients: np.ndarray) -> np.ndarray:
    """Per class, the number of patients on the class's smaller side: patients with a positive record, or
    patients with only negative records, whichever is fewer (records of one patient are drawn together)."""
    y = np.asarray(y, bool)
    _, inverse = np.unique(np.asarray(patients), return_inverse=True)
    n_patients = inverse.max() + 1
    positive = np.zeros((n_patients, y.shape[1]), bool)
    np.logical_or.at(positive, inverse, y)
    n_pos = positive.sum(axis=0)
    return np.minimum(n_pos, n_patients - n_pos)

"""Power, the minimal detectable effect, and how many seeds (or test folds) a target needs.

A test at local level `level` on an estimate with standard error `se` and `df` degrees of freedom. The
studentized estimate is taken as noncentral t (noncentrality = effect / se), as for a Welch test.

Sizing from a pilot (a run's own variance components): the patient part of the contrast stays as measured
(conservative: it also holds each pilot seed's own patient luck / K, which more seeds would shrink); each
model's seed variance is replaced by a one-sided upper confidence bound, because a pilot's s^2 rests on K - 1
degrees of freedom and sizing from s^2 itself under-powers about half the time:

    sigma^2_upper = (K - 1) s^2 / chi2_{1 - confidence}(K - 1)      (confidence 0.8: 4.48 s^2 at K = 3).

When the patient part alone leaves the target out of reach, no number of seeds reaches it: the plan says so and
gives what fold rotation would: J test folds, each with its own patients and seeds, divide the whole variance
by J (rotation.pool_folds: the folds' patient and seed parts are independent).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import chdtri, nctdtr, ndtr, stdtrit
from scipy.stats import nct

from .contrasts import Estimate

KINDS = ("difference", "noninferiority", "equivalence")


def _sf(x, df, ncp):
    """P(T > x) for T noncentral t (scipy.special's ufuncs: scipy.stats.nct's values, far faster)."""
    if not np.isfinite(df) or df > 1e7:
        return float(ndtr(ncp - x))
    value = 1.0 - nctdtr(df, ncp, x)
    # nctdtr is occasionally NaN far into a tail; scipy.stats.nct gives 0 there
    return float(value) if np.isfinite(value) else float(nct.sf(x, df, ncp))


def power(effect: float, se: float, df: float, level: float, kind: str = "difference", margin: float = 0.0):
    """Probability of rejecting at `level` when the true (oriented) difference is `effect`.
    - difference: two-sided, H0 delta = 0;
    - noninferiority: H0 delta <= -margin;
    - equivalence (TOST): H0 |delta| >= margin; P(both one-sided tests reject) taken as
      P(first) + P(second) - 1, exact when the standard error is known and the margin exceeds t * se."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    if se <= 0:
        raise ValueError("power needs a positive standard error")
    if kind == "difference":
        c = stdtrit(df, 1 - level / 2)
        # the lower tail by symmetry, -T(ncp) ~ T(-ncp): nctdtr is not finite far out in its left tail
        return float(_sf(c, df, effect / se) + _sf(c, df, -effect / se))
    c = stdtrit(df, 1 - level)
    lower = _sf(c, df, (effect + margin) / se)
    if kind == "noninferiority":
        return float(lower)
    return float(max(0.0, lower + _sf(c, df, (margin - effect) / se) - 1))


def minimal_detectable_effect(
    se: float, df: float, level: float, target: float = 0.8, kind: str = "difference"
) -> float:
    """difference: the smallest true difference found at `target` power; noninferiority / equivalence: the
    smallest margin that a truly null difference would be shown within at `target` power."""
    if level <= 0:
        return np.inf
    if se == 0:
        return 0.0

    def gap(x):
        if kind == "difference":
            return power(x, se, df, level) - target
        return power(0.0, se, df, level, kind, margin=x) - target

    # bracket around the textbook (t_{1-level/2} + t_target) * se, widened until it holds the root
    guess = se * (stdtrit(df, 1 - level / 2) + stdtrit(df, target))
    lo, hi = 0.7 * guess, 1.4 * guess
    while gap(hi) < 0:
        lo, hi = hi, 2 * hi
    while lo > 0 and gap(lo) > 0:
        lo, hi = lo / 2, lo
    return float(brentq(gap, lo, hi, xtol=se * 1e-7))


def seed_variance_upper(s2: float, df: float, confidence: float = 0.8) -> float:
    """One-sided upper confidence bound on a variance estimated with `df` degrees of freedom:
    df s^2 / (the chi-square's 1 - confidence quantile; chdtri inverts its upper tail)."""
    return float(df * s2 / chdtri(df, confidence))


@dataclass(frozen=True)
class Components:
    """A contrast's variance components from a pilot: the patient part (and its degrees of freedom), and per
    model (weight, seed variance s^2, pilot seeds K)."""

    patient_var: float
    patient_df: float
    seeds: tuple[tuple[float, float, int], ...]

    @classmethod
    def from_estimate(cls, est: Estimate) -> Components:
        return cls(
            est.patient_var, est.patient_df, tuple((p.weight, p.variance, p.n_seeds) for p in est.seed_parts)
        )

    def upper(self, confidence: float) -> tuple[float, ...]:
        return tuple(seed_variance_upper(s2, k - 1, confidence) for _, s2, k in self.seeds)

    def planned(self, seeds: float, folds: int = 1, confidence: float = 0.8) -> tuple[float, float]:
        """(se, df) of the same contrast with `seeds` seeds per model on each of `folds` test folds, the seed
        variances at their upper bounds; seeds = inf leaves the patient part alone."""
        parts = [
            (w**2 * s2 / seeds, folds * (seeds - 1))
            for (w, _, _), s2 in zip(self.seeds, self.upper(confidence), strict=True)
            if np.isfinite(seeds)
        ]
        var = self.patient_var + sum(v for v, _ in parts)
        denom = (
            self.patient_var**2 / (folds * self.patient_df) if np.isfinite(self.patient_df) else 0
        ) + sum(v**2 / d for v, d in parts)
        df = var**2 / denom if denom > 0 else np.inf
        return float(np.sqrt(var / folds)), float(df)


@dataclass(frozen=True)
class SeedPlan:
    seeds: int | None  # the fewest seeds per model that reach the target; None: no number of seeds does
    mde: float  # at `seeds`, or with unlimited seeds when no number reaches the target
    mde_unlimited_seeds: float  # what the patient part alone allows
    seed_sd_upper: tuple[float, ...]  # each model's seed SD at its upper confidence bound
    folds: int | None  # the fewest test folds (fold rotation) that reach the target at seeds_per_fold
    seeds_per_fold: int
    mde_by_folds: tuple[float, ...]  # J = 1, 2, ... test folds at seeds_per_fold seeds per model


def plan_seeds(
    comp: Components,
    target_mde: float,
    level: float,
    target_power: float = 0.8,
    confidence: float = 0.8,
    max_seeds: int = 100,
    max_folds: int = 10,
    seeds_per_fold: int | None = None,
) -> SeedPlan:
    """How many seeds per model make the contrast's minimal detectable difference at `level` at most
    `target_mde`; and what J test folds would give (at `seeds_per_fold`, default the plan's seeds or, when
    none suffice, the pilot's)."""

    def mde_at(seeds, folds=1):
        se, df = comp.planned(seeds, folds, confidence)
        return minimal_detectable_effect(se, df, level, target_power)

    unlimited = mde_at(np.inf)
    seeds = None
    if unlimited <= target_mde and mde_at(max_seeds) <= target_mde:
        lo, hi = 1, max_seeds  # the MDE falls with seeds: bisect for the fewest that reach the target
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if mde_at(mid) <= target_mde else (mid, hi)
        seeds = hi
    per_fold = seeds_per_fold or seeds or max(k for _, _, k in comp.seeds)
    by_folds = tuple(mde_at(per_fold, j) for j in range(1, max_folds + 1))
    folds = next((j + 1 for j, m in enumerate(by_folds) if m <= target_mde), None)
    return SeedPlan(
        seeds,
        mde_at(seeds) if seeds else unlimited,
        unlimited,
        tuple(float(np.sqrt(v)) for v in comp.upper(confidence)),
        folds,
        per_fold,
        by_folds,
    )

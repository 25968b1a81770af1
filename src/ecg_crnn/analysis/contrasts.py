"""A contrast of models' seed-mean figures, its standard error, degrees of freedom and interval.

A model (one architecture at one window) is trained with K seeds. Its figure is the mean over seeds of the
seeds' figures on the whole test fold. A contrast is sum_m w_m * figure_m: a difference (w = +1, -1) or a
difference of differences. What varies if the study were run again:

- the test patients. Every model is scored on the SAME patient resamples of the test fold, so the contrast is
  formed resample by resample and what the models share cancels (pairing);
- the seeds. Seed k's figure differs from the model's expected figure by the seed's own quality (which carries
  over to any fold) and by its own luck on these particular patients.

Var(estimate) = patient part + seed part, where
- patient part = variance over resamples of the contrast of seed means, corrected for rare classes (see
  rare_classes). It holds what the models' seeds share on these patients, plus each
  seed's own luck on them divided by K;
- seed part = sum_m w_m^2 s_m^2 / K_m, with s_m^2 the variance of the seeds' whole-fold figures.
The seed spread also holds each seed's own patient luck, so that share is counted twice: conservative (about a
fifth of a difference's variance in the fold-10 simulation of the tests). Netting it out (subtracting the
bootstrap's estimate of that luck from the seed spread) is unbiased, but the difference of two noisy terms
rests on few degrees of freedom: at K = 3 it doubled the 95 % interval's width in that simulation.
The reference distribution is Student's t with Welch-Satterthwaite degrees of freedom: the seed spread rests on
K - 1 of them per model, the patient part of a macro figure on its classes' (a few tens on PTB-XL's fold 10).

Bounded figures (AUROC, AUPRC, F1, accuracy, Hamming loss lie in [0, 1]) get intervals CLIPPED to the range the
estimand can take: the truth lies in that range, so clipping never loses coverage, and the interval stays on the
scale of the tests and contrasts. `Interval.clipped` says when it bites: the normal approximation is strained
there and the report should say so rather than hide it behind a transformed scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import stdtrit

from .rare_classes import floor_rare_shares, variance_correction


@dataclass(frozen=True)
class SeedRuns:
    """One model's seeds. Aggregate figure: points (K,), resamples (K, B). Macro figure with its classes:
    points (K, C), resamples (K, B, C); the figure is the mean over the C classes. `val`: each seed's
    validation-fold figure (K,), for choices. Every model of a contrast must share the same B resamples."""

    seeds: tuple[int, ...]
    points: np.ndarray
    resamples: np.ndarray
    val: np.ndarray | None = None

    def __post_init__(self):
        points, resamples = np.asarray(self.points, float), np.asarray(self.resamples, float)
        k = len(self.seeds)
        if points.shape[0] != k or resamples.shape[0] != k:
            raise ValueError(f"points and resamples need one row per seed ({k} seeds)")
        if points.ndim not in (1, 2) or resamples.ndim != points.ndim + 1:
            raise ValueError("points (K,) with resamples (K, B), or points (K, C) with resamples (K, B, C)")
        if points.ndim == 2 and points.shape[1] != resamples.shape[2]:
            raise ValueError("points and resamples disagree on the number of classes")
        if not (np.isfinite(points).all() and np.isfinite(resamples).all()):
            raise ValueError("a figure is NaN or infinite: pass only the classes scored on the test fold")
        val = None if self.val is None else np.asarray(self.val, float)
        if val is not None and val.shape != (k,):
            raise ValueError(f"val needs one value per seed ({k} seeds)")
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "resamples", resamples)
        object.__setattr__(self, "val", val)

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    @property
    def per_class(self) -> bool:
        return self.points.ndim == 2

    def figure(self) -> np.ndarray:
        """Each seed's figure on the whole test fold (K,)."""
        return self.points.mean(axis=1) if self.per_class else self.points

    def only(self, seeds: Sequence[int]) -> SeedRuns:
        """These seeds' runs, in the order given."""
        idx = [self.seeds.index(int(s)) for s in seeds]
        val = None if self.val is None else self.val[idx]
        return SeedRuns(tuple(seeds), self.points[idx], self.resamples[idx], val)


@dataclass(frozen=True)
class SeedPart:
    """One model's share of the seed part: weight w, s^2 (the variance of its seeds' whole-fold figures, on
    K - 1 degrees of freedom), K seeds."""

    weight: float
    variance: float
    n_seeds: int

    @property
    def contribution(self) -> float:
        return self.weight**2 * self.variance / self.n_seeds


@dataclass(frozen=True)
class Interval:
    lo: float
    hi: float
    level: float
    clipped: bool


@dataclass(frozen=True)
class Estimate:
    """A contrast's estimate with its variance components; `bounds` is the range the estimand can take."""

    point: float
    patient_var: float
    patient_df: float
    seed_parts: tuple[SeedPart, ...]
    bounds: tuple[float, float] = (-np.inf, np.inf)

    @property
    def seed_var(self) -> float:
        return float(sum(p.contribution for p in self.seed_parts))

    @property
    def var(self) -> float:
        return self.patient_var + self.seed_var

    @property
    def se(self) -> float:
        return float(np.sqrt(self.var))

    @property
    def df(self) -> float:
        """Welch-Satterthwaite: each estimated variance term squared over its degrees of freedom."""
        if self.var <= 0:
            return np.inf
        denom = self.patient_var**2 / self.patient_df if np.isfinite(self.patient_df) else 0.0
        denom += sum(p.contribution**2 / (p.n_seeds - 1) for p in self.seed_parts)
        return float(self.var**2 / denom) if denom > 0 else np.inf

    def multiplier(self, level: float = 0.95) -> float:
        return float(stdtrit(self.df, 0.5 + level / 2))

    def interval(self, level: float = 0.95) -> Interval:
        half = self.multiplier(level) * self.se if self.se > 0 else 0.0
        lo, hi = self.point - half, self.point + half
        clo, chi = max(lo, self.bounds[0]), min(hi, self.bounds[1])
        return Interval(float(clo), float(chi), level, bool(clo != lo or chi != hi))

    def negated(self) -> Estimate:
        """The same contrast with the sign flipped (for a figure where lower is better, e.g. Hamming loss)."""
        flipped = (-self.bounds[1], -self.bounds[0])
        return Estimate(-self.point, self.patient_var, self.patient_df, self.seed_parts, flipped)


def contrast_bounds(weights: Sequence[float], bounds: tuple[float, float]) -> tuple[float, float]:
    """The range of sum w_m * figure_m when every figure lies in `bounds`."""
    lo, hi = bounds
    return (
        float(sum(w * lo if w > 0 else w * hi for w in weights)),
        float(sum(w * hi if w > 0 else w * lo for w in weights)),
    )


def _class_shares(deviations: np.ndarray, scale: np.ndarray) -> tuple[float, np.ndarray]:
    """Variance of the macro mean of per-class resampled values (B, C), classes scaled by `scale`, and the
    per-class diagonal shares."""
    c = deviations.shape[1]
    if c == 1:  # an aggregate figure
        var = float(np.var(deviations, ddof=1))
        return var * float(scale[0]) ** 2, np.array([var * float(scale[0]) ** 2])
    cov = np.cov(deviations, rowvar=False)
    return float(scale @ cov @ scale) / c**2, scale**2 * np.diag(cov) / c**2


def _satterthwaite(shares, dfs) -> float:
    shares, dfs = np.asarray(shares, float), np.asarray(dfs, float)
    denom = np.sum(np.where(np.isfinite(dfs), shares**2 / dfs, 0.0))
    return float(shares.sum() ** 2 / denom) if denom > 0 else np.inf


def _patient_part(combined: np.ndarray, minority, pool_below: int) -> tuple[float, float]:
    """(variance, degrees of freedom) of the macro mean of `combined` (B, C), or of an aggregate (B, 1)."""
    n_classes = combined.shape[1]
    if minority is None:
        return _class_shares(combined, np.ones(n_classes))[0], np.inf
    minority = np.asarray(minority, float)
    if minority.shape != (n_classes,):
        raise ValueError(f"minority needs one count per class ({n_classes})")
    total, shares = _class_shares(combined, np.sqrt(variance_correction(minority)))
    pooled, dfs, df_pool = floor_rare_shares(shares, minority, pool_below)
    total += float(np.sum(pooled - shares))
    floored = np.isnan(dfs)
    terms = list(pooled[~floored]) + ([pooled[floored].sum()] if floored.any() else [])
    term_dfs = list(dfs[~floored]) + ([df_pool] if floored.any() else [])
    return total, _satterthwaite(terms, term_dfs)


def _merge(terms: Sequence[tuple[float, SeedRuns]]) -> list[tuple[float, SeedRuns]]:
    """One term per model: a model that appears twice (e.g. against itself) has one seed variance."""
    merged: dict[int, list] = {}
    for w, r in terms:
        merged.setdefault(id(r), [0.0, r])[0] += float(w)
    return [(w, r) for w, r in merged.values()]


def estimate(
    terms: Sequence[tuple[float, SeedRuns]],
    minority: np.ndarray | None = None,
    bounds: tuple[float, float] = (0.0, 1.0),
    pool_below: int = 20,
) -> Estimate:
    """sum_m w_m * (seed-mean figure of model m), with its patient and seed parts (see the module docstring).

    `minority`: for a macro figure given per class, each class's smaller-side patient count on the test fold
    (rare_classes.minority_patients). It corrects the bootstrap's under-estimate for rare classes, floors the
    variance of classes with fewer than `pool_below` minority patients at their pooled value
    (rare_classes.floor_rare_shares) and gives the patient part its degrees of freedom. Without it the
    bootstrap variance is taken as it is, on infinite degrees of freedom (right for pooled figures such as
    micro-F1, whose every class is well populated). `bounds`: the range of one model's figure. A model that
    appears in several terms (the same SeedRuns object) is one model: its weights add up."""
    if not terms:
        raise ValueError("a contrast needs at least one model")
    terms = _merge(terms)
    if len({r.resamples.shape[1:] for _, r in terms}) != 1:
        raise ValueError("the models of a contrast must share the same patient resamples (and classes)")
    if any(r.n_seeds < 2 for _, r in terms):
        raise ValueError("a seed variance needs at least 2 seeds per model")
    if minority is not None and not terms[0][1].per_class:
        raise ValueError("minority counts need the figure per class (points (K, C), resamples (K, B, C))")
    point = float(sum(w * r.figure().mean() for w, r in terms))
    combined = sum(w * r.resamples.mean(axis=0) for w, r in terms)  # (B,) or (B, C)
    patient_var, patient_df = _patient_part(combined.reshape(combined.shape[0], -1), minority, pool_below)
    parts = tuple(SeedPart(float(w), float(np.var(r.figure(), ddof=1)), r.n_seeds) for w, r in terms)
    return Estimate(point, patient_var, patient_df, parts, contrast_bounds([w for w, _ in terms], bounds))


def model_estimate(
    runs: SeedRuns,
    minority: np.ndarray | None = None,
    bounds: tuple[float, float] = (0.0, 1.0),
    pool_below: int = 20,
) -> Estimate:
    """One model's figure (its seed mean) with its standard error: the contrast with the single weight 1."""
    return estimate([(1.0, runs)], minority, bounds, pool_below)

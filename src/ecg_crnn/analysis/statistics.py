"""The comparison's statistics: a model's figure over seeds and patients, contrasts between models, and Holm.

A model is one architecture at one window length, trained with K seeds; its figure is the mean over seeds of the
seeds' test figures. Two sources of error are accounted for: which test patients were sampled (the evaluate
stages' shared patient resamples, identical for every model, so comparisons are paired) and which seeds were
drawn (training randomness).

- A model's interval: percentiles of a hierarchical bootstrap; each replicate takes the patient resample and
  draws K seeds with replacement from the model's seeds, their deviations from the seed mean first inflated by
  sqrt(K / (K - 1)) (resampling K values with replacement otherwise shrinks their variance by (K - 1) / K).
- A comparison is a contrast: a signed sum of models' figures (a difference, or a difference of differences
  for "does the value of recurrence grow with context"). Its standard error adds the patient part (the variance
  of the contrast over the shared resamples, seeds averaged) and each model's seed variance over K; the
  reference distribution is Student's t with Welch-Satterthwaite degrees of freedom (the seed part rests on
  K - 1 of them per model). Two-sided tests for differences, one-sided for non-inferiority against
  study.margins.
- Holm's step-down correction within each stated group of hypotheses.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from scipy.stats import t as student

from ..metrics import LOWER_IS_BETTER
from .results import PRIMARY, Key, Model

Figure = str | tuple  # a tested figure's name, or ("classes", indices): the mean AUROC over those classes


def seed_values(m: Model, figure: Figure) -> tuple[np.ndarray, np.ndarray]:
    """(each seed's figure on the whole test fold (K,), each seed's figure per patient resample (K, B))."""
    if isinstance(figure, tuple):
        idx = list(figure[1])
        return m.seed_class_auroc[:, idx].mean(axis=1), m.class_auroc[:, :, idx].mean(axis=2)
    return m.runs[figure].to_numpy(float), m.resampled[figure]


class Replicates:
    """Per model, which seeds each bootstrap replicate draws (with replacement), for the models' intervals."""

    def __init__(self, models: dict[Key, Model], seed: int):
        self.draws: dict[Key, np.ndarray] = {}
        for key, m in models.items():
            n_seeds, n_resamples = m.resampled[PRIMARY].shape
            tag = zlib.crc32(f"{key[0]}@{key[1]:g}".encode())
            rng = np.random.default_rng([seed, tag])
            self.draws[key] = rng.integers(0, n_seeds, size=(n_resamples, n_seeds))

    def figure(self, m: Model, figure: Figure) -> np.ndarray:
        """(resamples,): per patient resample, the mean of K seeds drawn with replacement, their deviations from
        the resample's seed mean inflated by sqrt(K / (K - 1)) so that the seed mean's variance is s^2 / K."""
        _, values = seed_values(m, figure)  # (K, B)
        k = values.shape[0]
        center = values.mean(axis=0)
        if k < 2:
            return center
        deviation = (values - center) * np.sqrt(k / (k - 1))
        d = self.draws[m.key]
        return center + deviation[d, np.arange(values.shape[1])[:, None]].mean(axis=1)


def oriented(figure: Figure, value):
    """Higher is better for every figure once Hamming loss changes sign."""
    return -value if isinstance(figure, str) and figure in LOWER_IS_BETTER else value


@dataclass
class Hypothesis:
    """One hypothesis of a stated family. `difference` is oriented: positive means `a` is better."""

    name: str
    kind: str  # "difference" (two-sided, H0: no difference) or "non-inferiority" (H0: a worse by >= margin)
    figure: str
    a: str
    b: str
    difference: float
    se: float
    df: float
    group: str = "answer"  # the Holm family: "answer" (the sentences) or "table" (verdicts against the best)
    margin: float = 0.0
    p: float = 1.0
    p_holm: float = 1.0

    @property
    def half_width(self) -> float:
        return float(student.ppf(0.975, self.df) * self.se) if self.se > 0 else 0.0

    @property
    def lo(self) -> float:
        return self.difference - self.half_width

    @property
    def hi(self) -> float:
        return self.difference + self.half_width


@dataclass
class Contrast:
    point: float
    se: float
    df: float


def contrast(terms: list[tuple[float, Model]], figure: Figure) -> Contrast:
    """sum(w * figure of model) over `terms`, oriented (higher is better), with its standard error: the patient
    part from the shared resamples (each model's seeds averaged, so paired across models) plus each model's
    seed variance over K, and Welch-Satterthwaite degrees of freedom."""
    point, patient, seed_parts = 0.0, 0.0, []
    for w, m in terms:
        pts, reps = seed_values(m, figure)
        point += w * float(pts.mean())
        patient = patient + w * reps.mean(axis=0)
        if len(pts) > 1:
            seed_parts.append((w**2 * float(pts.var(ddof=1)) / len(pts), len(pts) - 1))
    var_patient = float(np.var(oriented(figure, patient), ddof=1))
    var = var_patient + sum(v for v, _ in seed_parts)
    seed_df = sum(v**2 / dof for v, dof in seed_parts)
    df = var**2 / seed_df if seed_df > 0 else np.inf
    return Contrast(float(oriented(figure, point)), float(np.sqrt(var)), float(df))


def make_test(name, kind, figure, a, b, c: Contrast, group="answer", margin=0.0) -> Hypothesis:
    if c.se == 0:  # identical models, or no variation measured: nothing can be claimed
        p = 1.0
    elif kind == "difference":
        p = float(2 * student.sf(abs(c.point) / c.se, c.df))
    else:
        p = float(student.sf((c.point + margin) / c.se, c.df))
    label = figure if isinstance(figure, str) else "class_auroc"
    return Hypothesis(name, kind, label, a, b, c.point, c.se, c.df, group, margin, p)


def holm(tests: list[Hypothesis]) -> None:
    """Holm's step-down adjustment of the p-values, in place, within each group (family-wise error control)."""
    for group in {t.group for t in tests}:
        members = [t for t in tests if t.group == group]
        order = np.argsort([t.p for t in members], kind="mergesort")
        m, running = len(members), 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (m - rank) * members[i].p))
            members[i].p_holm = running

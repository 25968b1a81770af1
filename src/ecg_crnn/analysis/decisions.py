"""The tests of one contrast and the words the report may use for their outcome.

A contrast's estimate is oriented so that positive means "a is better than b" (negate it first for a figure
where lower is better). For a margin M > 0, three null hypotheses about the true difference delta:

- difference (two-sided): H0 delta = 0; rejected -> "better" or "worse";
- non-inferiority (one-sided): H0 delta <= -M; rejected -> "non-inferior within M";
- equivalence, by two one-sided tests (TOST): H0 |delta| >= M; rejected -> "equivalent within M".

Partitioning (Finner & Strassburger 2002): whatever delta is, at most one of "delta = 0" and "|delta| >= M" is
true, and the non-inferiority null (delta <= -M) lies inside the equivalence null, whose rejection implies its
own (p_equivalence >= p_noninferiority). So a false rejection among the three needs a false rejection of the one
configuration that holds, and all three can be tested at the same local level without raising that
contrast's error rate. The reasoning holds for one contrast. In a multiple-testing graph the contrast may pass
its level on only when every one of its hypotheses is rejected (multiplicity.graphical): passing it on after
the difference alone inflates the family-wise error (1.5 alpha in the worst case, shown by simulation).

"Inconclusive" comes with what the study could have resolved: the minimal detectable difference at 80 % power
at the level the hypothesis was tested at (power.minimal_detectable_effect).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import stdtr

from .contrasts import Estimate
from .multiplicity import Node, graphical, ordered_groups
from .power import minimal_detectable_effect

TESTS = ("difference", "noninferiority", "equivalence")


@dataclass(frozen=True)
class PValues:
    difference: float  # two-sided, H0: delta = 0
    noninferiority: float  # one-sided, H0: delta <= -margin
    equivalence: float  # TOST, H0: |delta| >= margin


def _sf(x: float, df: float) -> float:
    """Student's t upper tail (scipy.special's ufunc: the same values as scipy.stats.t.sf, far faster)."""
    return float(stdtr(df, -x))


def p_values(est: Estimate, margin: float) -> PValues:
    """The three tests' p-values, on Student's t with the estimate's degrees of freedom."""
    if margin < 0:
        raise ValueError("the margin is a size: zero or more")
    d, se, df = est.point, est.se, est.df
    if se == 0:  # no variation measured: nothing can be claimed from it
        return PValues(1.0, 1.0, 1.0)
    difference = min(1.0, 2 * _sf(abs(d) / se, df))
    noninferiority = _sf((d + margin) / se, df)
    equivalence = max(noninferiority, _sf((margin - d) / se, df))
    return PValues(difference, noninferiority, equivalence)


@dataclass(frozen=True)
class Verdict:
    wording: str
    better: bool
    worse: bool
    noninferior: bool
    equivalent: bool
    level: float  # the local level every test of this contrast was run at
    mde: float  # the minimal detectable difference at 80 % power at that level (inf when level is 0)


def _number(x: float) -> str:
    return f"{x:.2g}"


def wording(better: bool, worse: bool, noninferior: bool, equivalent: bool, margin: float, mde: float) -> str:
    m = _number(margin)
    if better:
        return f"better, by less than {m}" if equivalent else "better"
    if worse:
        return f"worse, but within {m}" if noninferior else "worse"
    if equivalent:
        return f"equivalent within {m}"
    if noninferior:
        return f"non-inferior within {m}"
    if not np.isfinite(mde):
        return "inconclusive: not tested (the hypotheses before it in the order were not all established)"
    return f"inconclusive: this study can resolve differences of {_number(mde)} or more"


def verdict(
    est: Estimate, margin: float, level: float, tests: Sequence[str] = TESTS, power: float = 0.8
) -> Verdict:
    """The tests in `tests` of one oriented contrast at one local level (alpha times its final weight in the
    graph); a claim outside `tests` is never made (it was not in the family the level was shared over)."""
    unknown = set(tests) - set(TESTS)
    if unknown:
        raise ValueError(f"unknown tests {sorted(unknown)}; choose from {TESTS}")
    p = p_values(est, margin)
    if level <= 0:  # a gate that stayed closed: no test was run, whatever the p-values
        p = PValues(1.0, 1.0, 1.0)
    different = "difference" in tests and p.difference <= level
    better, worse = different and est.point > 0, different and est.point < 0
    noninferior = "noninferiority" in tests and p.noninferiority <= level
    equivalent = "equivalence" in tests and p.equivalence <= level
    # equivalence implies non-inferiority (its null contains the other's), so the weaker claim follows
    noninferior = noninferior or equivalent
    mde = minimal_detectable_effect(est.se, est.df, level, power) if level > 0 else np.inf
    said = wording(better, worse, noninferior, equivalent, margin, mde)
    if (
        est.se == 0 and level > 0
    ):  # e.g. both models perfect on every seed and resample: a "resolves 0" is no claim
        said = "inconclusive: no variation measured (every seed and resample gave the same value), nothing to test"
    return Verdict(
        said,
        better,
        worse,
        noninferior,
        equivalent,
        level,
        mde,
    )


@dataclass(frozen=True)
class Claim:
    """One contrast the answer may speak about: its oriented estimate, margin, the tests it holds (at most one
    of whose nulls can be true), its group and initial share of alpha."""

    name: str
    group: str
    estimate: Estimate
    margin: float
    tests: tuple[str, ...] = ("difference",)
    weight: float = 0.0


def decide(
    claims: Sequence[Claim], order: Sequence[str], alpha: float, transitions: np.ndarray | None = None
) -> dict[str, Verdict]:
    """Every claim tested in one graphical procedure (multiplicity.graphical), the groups in `order` unless
    `transitions` are given, and each claim's verdict at the level its node reached."""
    nodes = []
    for c in claims:
        p = p_values(c.estimate, c.margin)
        nodes.append(Node(c.name, c.group, c.weight, {t: getattr(p, t) for t in c.tests}))
    g = ordered_groups(nodes, order) if transitions is None else transitions
    results = graphical(nodes, g, alpha)
    return {
        c.name: verdict(c.estimate, c.margin, r.level, c.tests) for c, r in zip(claims, results, strict=True)
    }

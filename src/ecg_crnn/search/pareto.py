"""The trade-off of a multi-objective search: its Pareto front, and the point --promote trains.

Pure functions over numpy arrays (tested against a brute-force dominance check), then their use on an Optuna
study. The objectives are the validation macro-AUROC (maximized) and one or more costs (minimized); the point to
promote is the smallest model (by the first cost) whose validation macro-AUROC lies within the margin of the
best one. Within the margin is not an equivalence test here: the search scores one seed on the validation fold,
so the promoted point is a candidate, which the grid then trains on its own seeds (disjoint from the search's)
and tests on the test fold.
"""

from __future__ import annotations

import numpy as np
import optuna

from ..config import StudySettings
from ..errors import EcgCrnnError

COST_KEYS = {"params": "params", "macs": "macs_per_record", "latency": "cpu_latency_ms"}
COST_LABELS = {
    "params": "parameters",
    "macs": "multiply-accumulates per record",
    "latency": "CPU ms per record",
}


def non_dominated(values: np.ndarray, maximize: list[bool]) -> np.ndarray:
    """Which rows of `values` (points x objectives) no other row dominates: at least as good in every
    objective and better in one. Equal rows do not dominate each other (both stay on the front)."""
    v = np.where(
        np.asarray(maximize)[None, :], -np.asarray(values, float), np.asarray(values, float)
    )  # minimize
    at_least = (v[:, None, :] <= v[None, :, :]).all(axis=2)  # [i, j]: i is at least as good as j everywhere
    better = (v[:, None, :] < v[None, :, :]).any(axis=2)
    dominated = (at_least & better).any(axis=0)
    return ~dominated


def smallest_within_margin(score: np.ndarray, cost: np.ndarray, margin: float) -> int:
    """The index of the cheapest point whose score is at least the best score minus `margin`; among equally
    cheap ones the best-scoring (so the choice is on the front), then the first."""
    score, cost = np.asarray(score, float), np.asarray(cost, float)
    if not len(score):
        raise EcgCrnnError("search: no completed trial to choose from")
    eligible = np.flatnonzero(score >= score.max() - margin)
    order = np.lexsort((eligible, -score[eligible], cost[eligible]))  # cost, then higher score, then index
    return int(eligible[order[0]])


def promotion_margin(study: StudySettings) -> tuple[float, str]:
    """The macro-AUROC margin --promote uses, and the key it came from: an equivalence margin when params.yaml
    sets one (study.equivalence_margins.macro_auroc), else the non-inferiority margin study.margins.macro_auroc."""
    equivalence = getattr(study, "equivalence_margins", None)
    if equivalence is not None and getattr(equivalence, "macro_auroc", None) is not None:
        return float(equivalence.macro_auroc), "study.equivalence_margins.macro_auroc"
    return float(study.margins.macro_auroc), "study.margins.macro_auroc"


def completed(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def front_numbers(study: optuna.Study) -> set[int]:
    """The trial numbers on the Pareto front, computed here from the completed trials' values."""
    trials = completed(study)
    if not trials:
        return set()
    maximize = [d == optuna.study.StudyDirection.MAXIMIZE for d in study.directions]
    mask = non_dominated(np.array([t.values for t in trials]), maximize)
    return {t.number for t, on in zip(trials, mask, strict=True) if on}


def promotion_trial(study: optuna.Study, margin: float) -> optuna.trial.FrozenTrial:
    """The smallest model (by the study's first cost) within `margin` of the best validation macro-AUROC."""
    trials = completed(study)
    if not trials:
        raise EcgCrnnError(f"search: study {study.study_name!r} has no completed trial")
    values = np.array([t.values for t in trials])
    return trials[smallest_within_margin(values[:, 0], values[:, 1], margin)]

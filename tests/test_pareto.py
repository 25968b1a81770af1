"""The Pareto front and the point --promote trains, on constructed values where the answer is known: checked
against a brute-force dominance test, with points that must and must not be on the front."""

import types

import numpy as np
import pytest

from ecg_crnn.config import StudySettings
from ecg_crnn.errors import EcgCrnnError
from ecg_crnn.search.pareto import non_dominated, promotion_margin, smallest_within_margin


def _dominated_by_brute_force(values: np.ndarray, maximize: list[bool]) -> np.ndarray:
    sign = np.where(maximize, 1.0, -1.0)  # larger is better in every column after this
    v = values * sign
    out = np.zeros(len(v), bool)
    for j in range(len(v)):
        for i in range(len(v)):
            if i != j and all(v[i] >= v[j]) and any(v[i] > v[j]):
                out[j] = True
    return out


def test_the_front_is_exactly_the_non_dominated_points():
    rng = np.random.default_rng(0)
    for _ in range(200):  # random sets, with ties on a coarse grid so that equal values occur
        n = int(rng.integers(1, 25))
        values = np.column_stack([rng.integers(0, 6, n) / 10, rng.integers(1, 6, n) * 1000.0])
        mask = non_dominated(values, [True, False])
        assert np.array_equal(mask, ~_dominated_by_brute_force(values, [True, False]))
        assert mask.any()  # a finite set always has a non-dominated point


def test_a_dominated_point_is_not_on_the_front():
    # (score, cost): b is beaten by a at the same cost, c by a at a higher cost, d is cheaper; e equals a.
    values = np.array([[0.90, 100], [0.85, 100], [0.80, 200], [0.70, 50], [0.90, 100]])
    assert non_dominated(values, [True, False]).tolist() == [True, False, False, True, True]
    # three objectives: a cheaper-in-one point survives
    values3 = np.array([[0.9, 100, 5], [0.9, 100, 6], [0.9, 120, 4]])
    assert non_dominated(values3, [True, False, False]).tolist() == [True, False, True]


def test_the_promoted_point_is_the_smallest_within_the_margin():
    score = np.array([0.900, 0.897, 0.896, 0.880, 0.899])
    cost = np.array([900.0, 300.0, 300.0, 10.0, 500.0])
    assert smallest_within_margin(score, cost, 0.005) == 1  # 0.880 is outside; of the two at 300, the better
    assert smallest_within_margin(score, cost, 0.0) == 0  # no margin: the best itself
    assert smallest_within_margin(score, cost, 0.05) == 3
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(1, 30))
        score, cost = rng.integers(80, 95, n) / 100, rng.integers(1, 8, n) * 1.0
        margin = float(rng.choice([0.0, 0.01, 0.03]))
        i = smallest_within_margin(score, cost, margin)
        inside = score >= score.max() - margin
        assert inside[i] and cost[i] == cost[inside].min()
        assert score[i] == score[inside & (cost == cost[i])].max()
        assert non_dominated(np.column_stack([score, cost]), [True, False])[i]  # it is on the front


def test_no_point_to_promote_is_an_error():
    with pytest.raises(EcgCrnnError, match="no completed trial"):
        smallest_within_margin(np.array([]), np.array([]), 0.01)


def test_the_margin_is_the_equivalence_margin_when_set_else_the_non_inferiority_one():
    study = StudySettings()
    assert promotion_margin(study) == (study.margins.macro_auroc, "study.margins.macro_auroc")
    with_equivalence = types.SimpleNamespace(
        margins=study.margins, equivalence_margins=types.SimpleNamespace(macro_auroc=0.01)
    )
    assert promotion_margin(with_equivalence) == (0.01, "study.equivalence_margins.macro_auroc")

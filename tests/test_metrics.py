"""Metric code against scikit-learn on fixed inputs."""

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    hamming_loss,
    roc_auc_score,
)

from ecg_crnn.metrics import (
    TESTED,
    BootstrapError,
    auprc_per_class,
    auroc_per_class,
    bootstrap_figures,
    headline,
    interval,
    patient_weights,
    scored_classes,
    tune_thresholds,
    weighted_figures,
)


@pytest.fixture(scope="module")
def scored():
    rng = np.random.default_rng(42)
    n, c = 400, 6
    y = (rng.random((n, c)) < [0.02, 0.1, 0.3, 0.5, 0.05, 0.2]).astype(int)
    s = np.round(np.clip(rng.normal(0.3 + 0.35 * y, 0.2), 0, 1), 2)  # rounded: many ties
    return y, s


def test_auroc_and_auprc_match_sklearn(scored):
    y, s = scored
    np.testing.assert_allclose(
        auroc_per_class(y, s), [roc_auc_score(y[:, k], s[:, k]) for k in range(6)], atol=1e-12
    )
    np.testing.assert_allclose(
        auprc_per_class(y, s), [average_precision_score(y[:, k], s[:, k]) for k in range(6)], atol=1e-12
    )


def test_undefined_auroc_is_nan_and_left_out_of_the_macro_average():
    y = np.array([[0, 1], [0, 0], [0, 1], [0, 0]])
    s = np.array([[0.1, 0.9], [0.2, 0.3], [0.3, 0.8], [0.4, 0.1]])
    auc = auroc_per_class(y, s)
    assert np.isnan(auc[0]) and auc[1] == 1.0
    assert headline(y, s, np.full(2, 0.5))["macro_auroc"] == 1.0


def test_headline_matches_sklearn(scored):
    y, s = scored
    t = tune_thresholds(y, s)
    pred = (s >= t).astype(int)
    h = headline(y, s, t)
    assert h["macro_auroc"] == pytest.approx(roc_auc_score(y, s, average="macro"), abs=1e-12)
    assert h["micro_auroc"] == pytest.approx(roc_auc_score(y, s, average="micro"), abs=1e-12)
    assert h["macro_auprc"] == pytest.approx(average_precision_score(y, s, average="macro"), abs=1e-12)
    assert h["micro_f1"] == pytest.approx(f1_score(y, pred, average="micro"), abs=1e-12)
    assert h["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0), abs=1e-12)
    assert h["hamming_loss"] == pytest.approx(hamming_loss(y, pred), abs=1e-12)
    assert h["subset_accuracy"] == pytest.approx(accuracy_score(y, pred), abs=1e-12)


def test_thresholds_maximize_f1_by_brute_force(scored):
    y, s = scored
    t = tune_thresholds(y, s)
    for k in range(y.shape[1]):
        best = max(f1_score(y[:, k], s[:, k] >= th) for th in np.unique(s[:, k]))
        assert f1_score(y[:, k], s[:, k] >= t[k]) == pytest.approx(best)
    assert tune_thresholds(np.zeros((5, 1)), np.random.rand(5, 1))[0] == 0.5  # no positive: default


def _resampled(y, s, w):
    idx = np.repeat(np.arange(len(y)), w)
    return y[idx], s[idx]


def test_weighted_figures_are_the_figures_of_the_resampled_records(scored):
    """A patient resample is integer weights over records; each weighted figure must equal scikit-learn's on
    the records repeated that many times (ties in the scores included)."""
    y, s = scored
    t = tune_thresholds(y, s)
    mask = scored_classes(y)
    rng = np.random.default_rng(5)
    w = rng.integers(0, 4, size=(6, len(y)))
    figures, per_class = weighted_figures(y, s, t, w, mask)
    for b in range(len(w)):
        yr, sr = _resampled(y, s, w[b])
        pred = (sr >= t).astype(int)
        cols = np.flatnonzero(mask)
        assert figures["macro_auroc"][b] == pytest.approx(
            roc_auc_score(yr[:, cols], sr[:, cols], average="macro"), abs=1e-12
        )
        assert figures["macro_auprc"][b] == pytest.approx(
            average_precision_score(yr[:, cols], sr[:, cols], average="macro"), abs=1e-12
        )
        assert figures["micro_f1"][b] == pytest.approx(f1_score(yr, pred, average="micro"), abs=1e-12)
        assert figures["subset_accuracy"][b] == pytest.approx(accuracy_score(yr, pred), abs=1e-12)
        assert figures["hamming_loss"][b] == pytest.approx(hamming_loss(yr, pred), abs=1e-12)
        for c in cols:
            assert per_class["auroc"][b, c] == pytest.approx(roc_auc_score(yr[:, c], sr[:, c]), abs=1e-12)
            assert per_class["auprc"][b, c] == pytest.approx(
                average_precision_score(yr[:, c], sr[:, c]), abs=1e-12
            )


def test_point_estimate_uses_the_same_function_as_the_resamples(scored):
    y, s = scored
    t = tune_thresholds(y, s)
    point, _ = weighted_figures(y, s, t, np.ones((1, len(y))), scored_classes(y))
    plain = headline(y, s, t)
    for key in TESTED:
        assert point[key][0] == pytest.approx(plain[key], abs=1e-12)


def _rare_class_data(seed: int, n_patients: int = 120):
    """A small test fold with rare classes (1-3 positives) and patients with several records."""
    rng = np.random.default_rng(seed)
    patients = np.sort(rng.integers(0, n_patients, int(n_patients * 1.4)))
    n = len(patients)
    y = np.zeros((n, 6), bool)
    y[:, 0] = rng.random(n) < 0.4
    y[:, 1] = rng.random(n) < 0.15
    for c, k in ((2, 1), (3, 2), (4, 3)):  # rare: k positives (the first one's patients may repeat)
        y[rng.choice(n, k, replace=False), c] = True
    # class 5 has no positive in this fold: it is not scored
    s = np.clip(rng.normal(0.3 + 0.4 * y, 0.25), 0, 1)
    return patients, y, s


def test_patient_resamples_keep_patients_whole_and_every_scored_class():
    patients, y, _ = _rare_class_data(0)
    w, kept = patient_weights(patients, y, 300, seed=1)
    assert w.shape == (300, len(patients)) and np.issubdtype(w.dtype, np.integer)
    for p in np.unique(patients):  # all records of a patient are drawn together
        rows = np.flatnonzero(patients == p)
        assert (w[:, rows] == w[:, rows[:1]]).all()
    assert (w.sum(axis=1) > 0).all()
    mask = scored_classes(y)
    assert list(mask) == [True, True, True, True, True, False]
    assert ((w @ y[:, mask]) > 0).all() and ((w @ ~y[:, mask]) > 0).all()  # no scored class lost
    assert np.array_equal(w, patient_weights(patients, y, 300, seed=1)[0])  # seeded
    assert 0 < kept < 1  # some draws lost a rare class and were redrawn
    # Drawing patients, not records: patients hold different numbers of records, so a resample's total weight
    # varies (drawing records would always give exactly n).
    assert w.sum(axis=1).std() > 0 and np.unique(w.sum(axis=1)).size > 10


@pytest.mark.parametrize("seed", range(6))
def test_point_estimates_lie_inside_their_intervals_with_rare_classes(seed):
    """Point estimate and resamples average over the same class set, so the point lies inside its interval
    (dropping classes per resample put a macro-AUPRC outside its own interval before)."""
    patients, y, s = _rare_class_data(seed)
    t = tune_thresholds(y, s)
    point, _ = weighted_figures(y, s, t, np.ones((1, len(y))), scored_classes(y))
    resampled, _ = bootstrap_figures(y, s, t, patient_weights(patients, y, 1000, seed)[0])
    for key in TESTED:
        lo, hi = interval(resampled[key])
        assert lo <= point[key][0] <= hi, (key, lo, point[key][0], hi)


def test_a_fold_too_small_for_its_classes_is_named():
    patients = np.arange(60)
    y = np.zeros((60, 40), bool)
    y[np.arange(40), np.arange(40)] = True  # 40 classes, each with one positive patient
    with pytest.raises(BootstrapError, match="too small for a bootstrap over these classes"):
        patient_weights(patients, y, 100, seed=0, max_draws=5)


def test_bootstrap_of_fold_ten_size_is_vectorized():
    """1,000 resamples of a 2,198-record, 23-class test fold in one call (timed in benchmarks/, not here)."""
    rng = np.random.default_rng(0)
    y = rng.random((2198, 23)) < rng.uniform(0.002, 0.3, 23)
    s = rng.random((2198, 23))
    w, _ = patient_weights(np.sort(rng.integers(0, 1900, 2198)), y, 1000, 0)
    figures, per_class = bootstrap_figures(y, s, np.full(23, 0.5), w)
    assert all(v.shape == (1000,) for v in figures.values()) and per_class["auroc"].shape == (1000, 23)
    first, _ = weighted_figures(y, s, np.full(23, 0.5), w[:1], scored_classes(y))
    assert figures["macro_auprc"][0] == pytest.approx(
        first["macro_auprc"][0], rel=1e-12
    )  # chunks: same figures

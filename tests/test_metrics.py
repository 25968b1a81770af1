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
    auprc_per_class,
    auroc_per_class,
    bootstrap_headline,
    bootstrap_indices,
    headline,
    tune_thresholds,
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


def test_bootstrap_is_seeded_and_paired(scored):
    y, s = scored
    a, b = bootstrap_indices(len(y), 20, 7), bootstrap_indices(len(y), 20, 7)
    assert np.array_equal(a, b) and a.shape == (20, 400) and a.max() < 400
    boot = bootstrap_headline(y, s, np.full(6, 0.5), a)
    first = headline(y[a[0]], s[a[0]], np.full(6, 0.5))
    assert boot.iloc[0].to_dict() == pytest.approx(first)

"""Drift between folds: a fold shifted on purpose is flagged, the others are not."""

import json

import numpy as np
import pytest

from ecg_crnn.data.synthetic import write_synthetic
from ecg_crnn.drift import heart_rate, signal_features
from ecg_crnn.layout import RunKey, evaluation_dir
from ecg_crnn.stages import drift, drift_predictions

from .helpers.params import params, set_params
from .helpers.processes import run
from .helpers.stages import filter_records, segment_records


@pytest.fixture(scope="module")
def shifted(tmp_path_factory):
    root = tmp_path_factory.mktemp("shifted")
    write_synthetic(root / "raw", 1500, seed=5, progress=False, shift_fold=10)
    filter_records(root / "raw", root / "filtered")
    segment_records(root / "filtered", root / "segmented")
    return root


def test_heart_rate_and_noise_estimates_on_known_signals():
    fs = 100
    t = np.arange(1000) / fs
    for bpm in (45, 72, 130):
        beats = np.zeros(1000)
        beats[(np.arange(0, 10, 60 / bpm) * fs).astype(int)] = 1.0
        qrs = np.convolve(beats, np.hanning(7), mode="same")
        assert heart_rate(qrs[None], fs)[0] == pytest.approx(bpm, abs=7)
    assert np.isnan(heart_rate(np.zeros((1, 1000)), fs)[0])

    class Cache:  # the SignalCache interface signal_features needs
        leads = ["I", "II"]
        fs = 100.0
        signals = np.zeros((1, 2, 1000))

        def physical(self, rows):
            rng = np.random.default_rng(0)
            return np.stack([np.sin(2 * np.pi * t), 0.05 * rng.normal(size=1000)])[None].astype(np.float32)

    f = signal_features(Cache()).iloc[0]
    assert f["amplitude_I"] == pytest.approx(2.0, abs=0.01)
    assert f["noise_II"] == pytest.approx(0.05, rel=0.1)  # white noise level recovered
    assert f["noise_I"] < 0.01  # a smooth sine is not noise
    assert f["wander_I"] < 0.01  # a 1 Hz sine averages out over its 1 s window ...
    assert f["wander_II"] < 0.05 * 0.2  # ... and white noise nearly does (0.05 / sqrt(100 samples) = 0.005)


def test_shifted_fold_is_flagged_and_unshifted_are_not(shifted, tmp_path):
    paths = drift.Paths(
        shifted / "raw",
        shifted / "filtered",
        shifted / "segmented",
        tmp_path / "drift",
        tmp_path / "drift.json",
    )
    summary = drift.run(params(), paths)
    assert set(summary) == {f"fold_{k}" for k in range(1, 11)}
    assert summary["fold_10"]["dataset_drift"] and summary["fold_10"]["role"] == "test"
    assert summary["fold_10"]["drift_share"] > 0.6
    top = summary["fold_10"]["most_drifted"]
    assert len(top) == 10 and all(
        c.split("_")[0] in ("noise", "wander", "amplitude", "age", "device") for c in top
    )
    for k in range(1, 10):
        # Columns of one kind move together across the 12 leads, so an unshifted fold can show a few
        # correlated drifting columns, but far from the shifted fold's share.
        assert not summary[f"fold_{k}"]["dataset_drift"], summary[f"fold_{k}"]
        assert summary[f"fold_{k}"]["drift_share"] < 0.4
    # DVC's metric: one figure per fold, namespaced; the detail (changing from run to run) beside the reports.
    assert json.loads((tmp_path / "drift.json").read_text()) == {
        "drift_share": {k: v["drift_share"] for k, v in summary.items()}
    }
    assert json.loads((tmp_path / "drift" / "summary.json").read_text()) == summary
    html = (tmp_path / "drift" / "fold_10.html").read_text()
    assert "<html" in html.lower() and "noise_II" in html
    assert "fold_10.html" in (tmp_path / "drift" / "index.html").read_text()


def test_prediction_drift(tmp_path):
    rng = np.random.default_rng(0)
    val = rng.beta(2, 5, (400, 3))
    test = np.c_[rng.beta(2, 5, 400), rng.beta(5, 2, 400), rng.beta(2, 5, 400)]  # class B's scores moved
    key = RunKey("cnn", 2.5, 0)
    folder = evaluation_dir(key, tmp_path / "evaluation")
    folder.mkdir(parents=True)
    np.savez(folder / "predictions.npz", classes=np.array(["A", "B", "C/D"]), val_p=val, test_p=test)
    paths = drift_predictions.Paths(tmp_path / "evaluation", tmp_path / "r", tmp_path / "s.json")
    s = drift_predictions.run(params(), key, paths)
    assert s["drifted_columns"] == 1 and list(s["most_drifted"]) == ["score_B"]
    assert (tmp_path / "r" / "index.html").stat().st_size > 0
    assert json.loads((tmp_path / "s.json").read_text()) == {
        "prediction_drift": {"drift_share": round(1 / 3, 4), "dataset_drift": False}
    }


def test_dvc_repro_drift_on_a_shifted_synthetic_dataset(project, tmp_path):
    write_synthetic(tmp_path / "shifted", 1200, seed=9, progress=False, shift_fold=9)
    set_params(project, {"download.source": str(tmp_path / "shifted")})
    run(["dvc", "repro", "drift"], project)
    metrics = json.loads(run(["dvc", "metrics", "show", "--json"], project).stdout)
    drift = next(iter(metrics.values()))["data"]["reports/drift.json"]["data"]["drift_share"]
    assert drift["fold_9"] > 0.5 > drift["fold_10"]  # the shifted validation fold, not the test fold
    detail = json.loads((project / "reports" / "drift" / "summary.json").read_text())
    assert detail["fold_9"]["dataset_drift"] is True and detail["fold_9"]["role"] == "val"
    assert not detail["fold_10"]["dataset_drift"]
    assert (project / "reports" / "drift" / "fold_9.html").is_file()


def test_a_category_missing_from_one_fold_is_drift_without_a_warning(synthetic_dir, tmp_path):
    """A rare label absent from a small fold: scipy's chi-square divides by a zero expected count. The column is
    flagged; the console gets no RuntimeWarning."""
    import warnings

    filter_records(synthetic_dir, tmp_path / "f")
    segment_records(tmp_path / "f", tmp_path / "s")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = drift.Paths(
            synthetic_dir, tmp_path / "f", tmp_path / "s", tmp_path / "d", tmp_path / "d.json"
        )
        drift.run(params(), paths, workers=1)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in caught]

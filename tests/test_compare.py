"""The comparison's statistics and sentences, on constructed results whose answer is known."""

import json
import zlib

import numpy as np
import pandas as pd
import pytest

from ecg_crnn.compare import Hypothesis, Model, Replicates, analyse, holm, make_test, verdict
from ecg_crnn.config import from_dict
from ecg_crnn.metrics import TESTED
from ecg_crnn.plots import pareto_front, thousands
from ecg_crnn.report import RunInfo, answer, header, published_rows, warnings

CLASSES = ["A", "B", "R1", "R2"]
FAMILIES = ["MI", "MI", "rhythm", "rhythm"]


def fake_model(
    arch, window, test_auc, val_auc, rhythm_gain=0.0, seeds=(0, 1, 2), noise=0.004, n=400, params=1e4
):
    """A model whose test macro-AUROC is about `test_auc` (per seed and resample, with seed and patient noise),
    whose validation macro-AUROC is `val_auc`, and whose rhythm classes gain `rhythm_gain`."""
    rng = np.random.default_rng(zlib.crc32(f"{arch}@{window}".encode()))  # stable across processes
    k = len(seeds)
    patient = rng.normal(0, noise, n)  # shared by the seeds of one model: the patient draw
    seed_eff = rng.normal(0, noise / 2, (k, 1))
    base = test_auc + seed_eff + patient  # (k, n)
    resampled = {f: base + (0.0 if f != "hamming_loss" else -test_auc + 0.05) for f in TESTED}
    class_auc = np.repeat(base[:, :, None], 4, axis=2)
    class_auc[:, :, 2:] += rhythm_gain
    runs = pd.DataFrame(
        [
            {
                **{f: float(resampled[f][i].mean()) for f in TESTED},
                "val_macro_auroc": val_auc + 0.001 * i,
                "test_patients": 300,
                "bootstrap_resamples": n,
            }
            for i in range(k)
        ]
    )
    per_class = pd.DataFrame(
        {
            "class": CLASSES,
            "family": FAMILIES,
            "test_positives": [40, 30, 20, 10],
            "auroc": class_auc.mean(axis=(0, 1)),
        }
    )
    hist = {
        s: pd.DataFrame(
            {
                "epoch": [1, 2, 3],
                "train_loss": [1, 0.5, 0.4],
                "val_macro_auroc": [0.5, 0.6, 0.55],
                "lr": [0.001, 0.003, 0.0],
            }
        )
        for s in seeds
    }
    return Model(
        arch,
        float(window),
        list(seeds),
        runs,
        resampled,
        class_auc,
        per_class,
        np.array([val_auc, val_auc, val_auc + rhythm_gain, val_auc + rhythm_gain]),
        {"params": params, "macs_per_record": 1e6, "cpu_latency_ms": 1.0, "train_seconds": 10.0},
        hist,
    )


def params(**study):
    return from_dict(
        {
            "study": {
                "architectures": ["cnn", "cnn_lstm1", "cnn_lstm3"],
                "reference": "cnn_lstm1",
                "windows": [2.5, 10],
                **study,
            },
            "train": {"seeds": [0, 1, 2], "epochs": 3},
        }
    )


def grid(spec):
    return {(a, float(w)): fake_model(a, w, *v) for (a, w), v in spec.items()}


def test_holm_matches_a_hand_computed_example():
    tests = [
        Hypothesis(str(i), "difference", "f", "a", "b", 0, 1, p=p)
        for i, p in enumerate([0.01, 0.04, 0.03, 0.005])
    ]
    holm(tests)
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone: 0.02, 0.03, 0.06, 0.06
    assert [t.p_holm for t in tests] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    big = [Hypothesis("x", "difference", "f", "a", "b", 0, 1, p=0.5) for _ in range(5)]
    holm(big)
    assert all(t.p_holm == 1.0 for t in big)  # capped at 1


def test_paired_test_sides_and_intervals():
    rng = np.random.default_rng(0)
    clear = make_test("x", "difference", "macro_auroc", "a", "b", 0.02, rng.normal(0.02, 0.005, 1000))
    assert clear.p < 1e-3 and clear.lo > 0 and clear.lo <= clear.difference <= clear.hi
    noise = make_test("x", "difference", "macro_auroc", "a", "b", 0.001, rng.normal(0.001, 0.01, 1000))
    assert noise.p > 0.5 and noise.lo < 0 < noise.hi
    same = make_test("x", "difference", "macro_auroc", "a", "a", 0.0, np.zeros(1000))
    assert same.p == 1.0
    # non-inferiority: 0.001 worse with SE 0.002 is within a 0.01 margin; 0.02 worse is not
    ok = make_test(
        "x", "non-inferiority", "macro_auroc", "a", "b", -0.001, rng.normal(-0.001, 0.002, 1000), 0.01
    )
    bad = make_test(
        "x", "non-inferiority", "macro_auroc", "a", "b", -0.02, rng.normal(-0.02, 0.002, 1000), 0.01
    )
    assert ok.p < 1e-4 and bad.p > 0.99


def test_hierarchical_replicates_resample_seeds():
    m = fake_model("cnn", 2.5, 0.9, 0.9)
    reps = Replicates({m.key: m}, seed=0)
    values = reps.figure(m, "macro_auroc")
    draws = reps.draws[m.key]
    assert draws.shape == (400, 3) and set(np.unique(draws)) == {0, 1, 2}
    b = 7
    assert values[b] == pytest.approx(m.resampled["macro_auroc"][draws[b], b].mean())
    # The spread includes seed variation: wider than resampling patients with the seed mean fixed.
    assert values.std() > m.resampled["macro_auroc"].mean(axis=0).std()


def test_every_choice_is_made_on_validation():
    """The test fold favours cnn_lstm3 at 10 s, validation favours cnn_lstm1 at 10 s: the report's best is the
    validation choice, and the test only reports how it does."""
    models = grid(
        {
            ("cnn", 2.5): (0.85, 0.90),
            ("cnn_lstm1", 2.5): (0.91, 0.91),
            ("cnn_lstm3", 2.5): (0.92, 0.905),
            ("cnn", 10): (0.90, 0.90),
            ("cnn_lstm1", 10): (0.91, 0.95),
            ("cnn_lstm3", 10): (0.95, 0.93),
        }
    )
    st = analyse(models, params())
    assert st.best == ("cnn_lstm1", 10.0)
    assert st.best_recurrent == {2.5: ("cnn_lstm1", 2.5), 10.0: ("cnn_lstm1", 10.0)}
    assert verdict(st, models[("cnn_lstm3", 10.0)]) == "better"  # better than the validation choice, on test
    assert verdict(st, models[("cnn", 2.5)]) == "worse"


def test_answer_sentences_read_right():
    models = grid(
        {
            ("cnn", 2.5): (0.90, 0.90),
            ("cnn_lstm1", 2.5): (0.930, 0.93, 0.01),
            ("cnn_lstm3", 2.5): (0.905, 0.905),
            ("cnn", 10): (0.901, 0.90),
            ("cnn_lstm1", 10): (0.960, 0.96, 0.08),
            ("cnn_lstm3", 10): (0.959, 0.95, 0.08),
        }
    )
    st = analyse(models, params(margins={"macro_auroc": 0.01}))
    text = "\n".join(answer(st))
    assert "**Best model** (chosen on the validation fold): **cnn_lstm1 @ 10 s**" in text
    assert "cnn_lstm1 @ 10 s: " in text and "it is the best model" in text  # the reference is the best
    assert "tied with itself" not in text and "as good as the best (difference +0.000" not in text
    assert "LSTM depth**, 2.5 s: 3 layers instead of 1 loses" in text  # negative: "loses"
    assert "3 seeds" in text and "1 seeds" not in text
    assert "the value of recurrence (best recurrent model minus the CNN) grows" in text
    assert "grows with context for the **rhythm**" in text
    assert "It helps rhythm" in text
    assert (
        "Smallest model as good as the best** (non-inferior within 0.01 macro-AUROC, Holm): **cnn_lstm3 @ 10 s**"
        not in text
    )


def test_header_and_warnings_say_what_the_run_rests_on():
    models = grid(
        {("cnn", 2.5): (0.9, 0.9), ("cnn_lstm1", 2.5): (0.91, 0.91), ("cnn_lstm3", 2.5): (0.9, 0.9)}
    )
    for m in models.values():
        m.per_class.loc[3, "test_positives"] = 0
    st = analyse(models, params(windows=[2.5]))
    info = RunInfo("../shared/ptbxl", "subdiagnostic", 100, {"train": 380, "val": 50, "test": 66}, 4)
    text = "\n".join(header(st, info) + warnings(st, info))
    assert "../shared/ptbxl, 100 Hz" in text and "test 66 (300 patients)" in text
    assert (
        "Classes without a positive in the test fold** (left out of macro-AUROC and macro-AUPRC): R2" in text
    )
    assert "3 architectures x 1 window length (2.5 s) x 3 seeds" in text
    assert "too small or too short to support conclusions" in text and "only 66 records" in text
    assert "A budget of 3 epochs is short" in text


def test_published_figures_are_set_beside_the_reference_and_the_best():
    models = grid(
        {("cnn", 2.5): (0.9, 0.9), ("cnn_lstm1", 2.5): (0.91, 0.91), ("cnn_lstm3", 2.5): (0.9, 0.95)}
    )
    st = analyse(models, params(windows=[2.5]))
    rows = published_rows(st)
    assert list(rows["figure"]) == ["Hamming loss", "macro-AUPRC", "micro-F1", "subset accuracy"]
    assert "cnn_lstm1 @ 2.5 s" in rows.columns and "cnn_lstm3 @ 2.5 s (best)" in rows.columns
    # macro-AUPRC of ~0.91 with a tight interval beats 0.4715; Hamming loss ~0.05 does not reach 0.0338
    assert rows.loc[1, "cnn_lstm1 @ 2.5 s"].endswith("beaten")
    assert rows.loc[0, "cnn_lstm1 @ 2.5 s"].endswith("not reached")


def test_frontier_and_tick_labels():
    assert list(pareto_front(np.array([10, 20, 15, 40.0]), np.array([0.8, 0.85, 0.79, 0.9]))) == [0, 1, 3]
    assert list(pareto_front(np.array([10, 20.0]), np.array([0.9, 0.8]))) == [0]  # one point: no line drawn
    assert thousands(16000) == "16k" and thousands(1_250_000) == "1.25M" and thousands(500) == "500"


def test_thresholds_are_the_ones_tuned_on_the_validation_fold(prepared, tmp_path, write_params):
    """thresholds.json equals thresholds tuned on fold 9's predictions (and not on the test fold's)."""
    import subprocess

    from ecg_crnn.metrics import tune_thresholds

    p = write_params(
        {"models.channels": [8, 8], "models.hidden": 8, "train.epochs": 2, "evaluate.bootstrap": 50}
    )
    common = [
        "--params",
        str(p),
        "--filtered",
        str(prepared / "filtered"),
        "--segmented",
        str(prepared / "segmented"),
    ]
    for cmd in (
        ["ecg-crnn", "train", "cnn", "--window", "2.5", "--seed", "0", "--out", str(tmp_path / "m"), *common],
        ["ecg-crnn", "bootstrap", "--out", str(tmp_path / "b.npz"), *common[0:2], *common[2:]],
        [
            "ecg-crnn",
            "evaluate",
            "cnn",
            "--window",
            "2.5",
            "--seed",
            "0",
            "--model",
            str(tmp_path / "m/model.pt"),
            "--bootstrap",
            str(tmp_path / "b.npz"),
            "--out",
            str(tmp_path / "e"),
            *common,
        ],
    ):
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / "e" / "thresholds.json").read_text())
    pred = np.load(tmp_path / "e" / "predictions.npz")
    classes = list(pred["classes"])
    on_val = tune_thresholds(pred["val_y"], pred["val_p"])
    assert [saved["thresholds"][c] for c in classes] == pytest.approx(list(on_val), abs=0)
    on_test = tune_thresholds(pred["test_y"], pred["test_p"])
    assert not np.allclose(on_val, on_test)  # so tuning on the test fold would fail this test

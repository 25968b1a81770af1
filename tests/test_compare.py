"""The comparison's statistics and sentences, on constructed results whose answer is known."""

import json
import zlib

import numpy as np
import pandas as pd
import pytest

from ecg_crnn.analysis.compare import analyse
from ecg_crnn.analysis.results import Model
from ecg_crnn.analysis.statistics import Hypothesis, Replicates, contrast, holm, make_test
from ecg_crnn.config import from_dict
from ecg_crnn.markup import md_escape
from ecg_crnn.metrics import TESTED
from ecg_crnn.report import published
from ecg_crnn.report.format import signed as _d
from ecg_crnn.report.plots import pareto_front, thousands
from ecg_crnn.report.published import published_rows, published_sentence
from ecg_crnn.report.sentences import RunInfo, answer, header, warnings

CLASSES = ["A", "B", "R1", "R2"]
FAMILIES = ["MI", "MI", "rhythm", "rhythm"]
PATIENT_NOISE = np.random.default_rng(99).normal(0, 1, 400)  # one test fold, shared by every model


def fake_model(
    arch,
    window,
    test_auc,
    val_auc,
    rhythm_gain=0.0,
    val_rhythm_gain=None,
    seeds=(0, 1, 2),
    noise=0.004,
    params=1e4,
    seed_sd=0.002,
):
    """A model whose test macro-AUROC is about `test_auc`: patient noise shared by every model (the test fold is
    the same), a little of its own, a seed effect of SD `seed_sd`; validation macro-AUROC `val_auc`; rhythm
    classes that gain `rhythm_gain` on test (and `val_rhythm_gain`, default the same, on validation)."""
    rng = np.random.default_rng(zlib.crc32(f"{arch}@{window}".encode()))  # stable across processes
    k, n = len(seeds), len(PATIENT_NOISE)
    seed_eff = rng.normal(0, seed_sd, (k, 1))
    base = test_auc + seed_eff + noise * PATIENT_NOISE + rng.normal(0, noise / 4, n)  # (seeds, resamples)
    hamming = 0.05 + 0 * base
    resampled = {f: (hamming if f == "hamming_loss" else base) for f in TESTED}
    class_auc = np.repeat(base[:, :, None], 4, axis=2)
    class_auc[:, :, 2:] += rhythm_gain
    seed_class = np.repeat(test_auc + seed_eff, 4, axis=1)
    seed_class[:, 2:] += rhythm_gain
    runs = pd.DataFrame(
        [
            {
                **{f: (0.05 if f == "hamming_loss" else float(test_auc + seed_eff[i, 0])) for f in TESTED},
                "val_macro_auroc": val_auc + 0.001 * i,
                "test_patients": 300,
                "bootstrap_resamples": n,
                "bootstrap_acceptance": 0.97,
            }
            for i in range(k)
        ]
    )
    per_class = pd.DataFrame(
        {
            "class": CLASSES,
            "family": FAMILIES,
            "test_positives": [40, 30, 20, 10],
            "auroc": seed_class.mean(axis=0),
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
    vg = rhythm_gain if val_rhythm_gain is None else val_rhythm_gain
    val_classes = np.array([val_auc, val_auc, val_auc + vg, val_auc + vg])
    cost = {"params": params, "macs_per_record": 1e6, "cpu_latency_ms": 1.0, "train_seconds": 10.0}
    return Model(
        arch,
        float(window),
        list(seeds),
        runs,
        resampled,
        class_auc,
        per_class,
        seed_class,
        val_classes,
        cost,
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


def grid(spec, **kw):
    return {(a, float(w)): fake_model(a, w, *v, **kw) for (a, w), v in spec.items()}


def test_holm_matches_a_hand_computed_example():
    tests = [
        Hypothesis(str(i), "difference", "f", "a", "b", 0, 1, np.inf, p=p)
        for i, p in enumerate([0.01, 0.04, 0.03, 0.005])
    ]
    holm(tests)
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone: 0.02, 0.03, 0.06, 0.06
    assert [t.p_holm for t in tests] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    big = [Hypothesis("x", "difference", "f", "a", "b", 0, 1, np.inf, p=0.5) for _ in range(5)]
    holm(big)
    assert all(t.p_holm == 1.0 for t in big)  # capped at 1
    two = [
        Hypothesis(str(i), "difference", "f", "a", "b", 0, 1, np.inf, group=f, p=p)
        for i, (f, p) in enumerate([("answer", 0.01), ("answer", 0.04), ("table", 0.01), ("table", 0.04)])
    ]
    holm(two)
    assert [t.p_holm for t in two] == pytest.approx([0.02, 0.04, 0.02, 0.04])  # each family on its own


def test_paired_test_sides_and_intervals():
    a, b = fake_model("cnn_lstm1", 2.5, 0.92, 0.9), fake_model("cnn", 2.5, 0.90, 0.9)
    clear = make_test("x", "difference", "macro_auroc", "a", "b", contrast([(1, a), (-1, b)], "macro_auroc"))
    assert clear.p < 0.01 and clear.lo > 0 and clear.lo <= clear.difference <= clear.hi
    assert clear.df < 100  # the seed part rests on few degrees of freedom: a t reference, not the normal
    same = make_test("x", "difference", "macro_auroc", "a", "a", contrast([(1, a), (-1, a)], "macro_auroc"))
    assert same.difference == 0 and same.p == 1.0  # a model against itself
    close = fake_model("cnn_gru1", 2.5, 0.9195, 0.9)
    ni = make_test(
        "x",
        "non-inferiority",
        "macro_auroc",
        "c",
        "a",
        contrast([(1, close), (-1, a)], "macro_auroc"),
        margin=0.01,
    )
    far = make_test(
        "x",
        "non-inferiority",
        "macro_auroc",
        "b",
        "a",
        contrast([(1, b), (-1, a)], "macro_auroc"),
        margin=0.01,
    )
    assert ni.p < 0.05 and far.p > 0.9
    # Lower is better for Hamming loss: a model with a higher loss must come out as worse.
    worse = fake_model("cnn_gru2", 2.5, 0.92, 0.9)
    worse.runs["hamming_loss"] += 0.01
    worse.resampled["hamming_loss"] = worse.resampled["hamming_loss"] + 0.01
    assert contrast([(1, worse), (-1, a)], "hamming_loss").point == pytest.approx(-0.01)


def test_comparisons_are_paired_on_the_shared_patients():
    """The patient part of a difference is computed resample by resample: noise common to both models cancels,
    so a difference is far more precise than the two models' own uncertainty suggests."""
    a = fake_model("cnn_lstm1", 2.5, 0.92, 0.9, noise=0.02, seed_sd=0.0)
    b = fake_model("cnn", 2.5, 0.90, 0.9, noise=0.02, seed_sd=0.0)
    paired = contrast([(1, a), (-1, b)], "macro_auroc").se
    unpaired = np.hypot(contrast([(1, a)], "macro_auroc").se, contrast([(1, b)], "macro_auroc").se)
    assert paired < unpaired / 3


def test_seed_resampling_keeps_the_seed_variance():
    """K seeds drawn with replacement shrink the seed mean's variance to (K-1)/K of s^2/K unless corrected."""
    m = fake_model("cnn", 2.5, 0.9, 0.9, noise=0.0, seed_sd=0.01)
    values = Replicates({m.key: m}, seed=0).figure(m, "macro_auroc")
    pts = m.runs["macro_auroc"].to_numpy()
    assert values.var() == pytest.approx(pts.var(ddof=1) / 3, rel=0.15)
    assert values.std() > m.resampled["macro_auroc"].mean(axis=0).std()  # wider than patients alone


def test_every_choice_is_made_on_validation():
    """The test fold favours cnn_lstm3 at 10 s, validation favours cnn_lstm1 at 10 s: the report's best is the
    validation choice, and the test only reports how it does. Families are ranked on validation too."""
    models = grid(
        {
            ("cnn", 2.5): (0.85, 0.90),
            ("cnn_lstm1", 2.5): (0.91, 0.91, 0.0, 0.05),
            ("cnn_lstm3", 2.5): (0.92, 0.905),
            ("cnn", 10): (0.90, 0.90),
            ("cnn_lstm1", 10): (0.91, 0.95, 0.0, 0.05),
            ("cnn_lstm3", 10): (0.95, 0.93),
        }
    )
    st = analyse(models, params())
    assert st.best == ("cnn_lstm1", 10.0)
    assert st.best_recurrent == {2.5: ("cnn_lstm1", 2.5), 10.0: ("cnn_lstm1", 10.0)}
    assert st.verdicts[("cnn_lstm3", 10.0)] == "better"  # better than the validation choice, on test
    assert st.verdicts[("cnn", 2.5)] == "worse"
    # rhythm gains nothing on test but 0.05 on validation: ranked first, from validation alone
    assert st.family_order == ["rhythm", "MI"]
    assert st.label_gain[10.0]["rhythm"].difference < 0.05


def test_worse_but_within_the_margin_is_not_called_as_good():
    models = grid(
        {("cnn", 2.5): (0.9, 0.9), ("cnn_lstm1", 2.5): (0.9075, 0.95), ("cnn_lstm3", 2.5): (0.9, 0.9)},
        noise=0.0005,
        seed_sd=0.0002,
    )
    st = analyse(models, params(windows=[2.5], margins={"macro_auroc": 0.02}))
    assert st.vs_best[("cnn", 2.5)].p_holm < 0.05 and st.noninf[("cnn", 2.5)].p_holm < 0.05
    assert st.verdicts[("cnn", 2.5)] == "worse, within the margin"
    assert (
        "as good" not in answer(st)[1].split("Of the other models:")[0] or "the best itself" in answer(st)[1]
    )


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
    assert "**The published choice** cnn_lstm1 @ 10 s: " in text and "it is the best model." in text
    assert "**The published choice** cnn_lstm1 @ 2.5 s: " in text and "it is worse than the best" in text
    assert "LSTM depth**, 2.5 s: 3 layers instead of 1 loses" in text  # negative: "loses"
    assert "mean of 3 seeds" in text and "1 seeds" not in text
    assert "the value of recurrence (the best recurrent model minus the CNN) grows" in text
    assert "the reference cnn_lstm1: its gain over the CNN grows with context" in text
    assert "grows with context for the **rhythm**" in text
    assert "It helps rhythm" in text


def test_a_difference_significant_before_holm_only_is_not_claimed():
    """Raw p < 0.05 but Holm's p > 0.05: the sentence must say there is no significant difference."""
    models = grid(
        {
            ("cnn", 2.5): (0.90, 0.90),
            ("cnn_lstm1", 2.5): (0.906, 0.93),
            ("cnn_lstm3", 2.5): (0.90, 0.90),
            ("cnn", 10): (0.90, 0.90),
            ("cnn_lstm1", 10): (0.90, 0.94),
            ("cnn_lstm3", 10): (0.90, 0.90),
        },
        noise=0.004,
        seed_sd=0.001,
    )
    st = analyse(models, params())
    t = st.recurrence[2.5]["macro_auroc"]
    assert t.p < 0.05 < t.p_holm, (t.p, t.p_holm)
    line = next(x for x in answer(st) if x.startswith("- **Recurrence at all**, 2.5 s"))
    assert "shows no significant difference from the CNN alone" in line and "beats" not in line


def test_header_and_warnings_say_what_the_run_rests_on():
    models = grid(
        {("cnn", 2.5): (0.9, 0.9), ("cnn_lstm1", 2.5): (0.91, 0.91), ("cnn_lstm3", 2.5): (0.9, 0.9)}
    )
    for m in models.values():
        m.per_class.loc[3, "test_positives"] = 0
        m.runs["bootstrap_acceptance"] = 0.4
    st = analyse(models, params(windows=[2.5]))
    info = RunInfo("../shared/ptbxl", "subdiagnostic", 100, {"train": 380, "val": 50, "test": 66}, 4)
    text = "\n".join(header(st, info) + warnings(st, info))
    assert f"{md_escape('../shared/ptbxl')}, 100 Hz" in text and "test 66 (300 patients)" in text
    assert (
        "Classes without a positive in the test fold** (left out of macro-AUROC and macro-AUPRC): R2" in text
    )
    assert "3 architectures x 1 window length (2.5 s) x 3 seeds" in text
    assert "Welch-Satterthwaite" in text and "40% of the patient draws kept" in text
    assert "too small or too short to support conclusions" in text and "only 66 records" in text
    assert "A budget of 3 epochs is short" in text and "Only 40% of the patient resamples" in text


def test_published_figures_are_set_beside_the_reference_and_the_best(monkeypatch):
    models = grid(
        {("cnn", 2.5): (0.9, 0.9), ("cnn_lstm1", 2.5): (0.91, 0.91), ("cnn_lstm3", 2.5): (0.9, 0.95)}
    )
    st = analyse(models, params(windows=[2.5]))
    # These classes are not PTB-XL's 23 subdiagnostic ones: no verdict against the published figures.
    assert published_sentence(st) == [
        "- **Against the published figures** (Jafari & Jafari (2026, arXiv 2601.18830), CNN + 1 BiLSTM): not "
        "comparable; the published figures are over PTB-XL's 23 diagnostic subclasses, and this run scores "
        "4 classes, 4 of them not among those (23 subclasses of theirs absent)."
    ]
    assert all(v.endswith(": other classes") for v in published_rows(st)["cnn_lstm1 @ 2.5 s"])
    monkeypatch.setattr(
        published, "PUBLISHED_CLASSES", frozenset(CLASSES)
    )  # as if they were the published ones
    rows = published_rows(st)
    assert list(rows["figure"]) == ["Hamming loss", "macro-AUPRC", "micro-F1", "subset accuracy"]
    assert "cnn_lstm1 @ 2.5 s" in rows.columns and "cnn_lstm3 @ 2.5 s (best)" in rows.columns
    # macro-AUPRC of ~0.91 with a tight interval beats 0.4715; a Hamming loss of 0.05 is above (worse than) 0.0338
    assert rows.loc[1, "cnn_lstm1 @ 2.5 s"].endswith("beaten")
    assert rows.loc[0, "cnn_lstm1 @ 2.5 s"].endswith("not reached")
    sentence = published_sentence(st)[0]
    assert (
        "not reached on Hamming loss" in sentence
        and "beaten on macro-AUPRC, micro-F1, subset accuracy" in sentence
    )
    for m in models.values():  # a Hamming loss below the published one is beaten (lower is better)
        m.runs["hamming_loss"], m.resampled["hamming_loss"] = 0.02, m.resampled["hamming_loss"] * 0 + 0.02
    # the result is computed once: analysed again with the new figures
    assert "beaten on Hamming loss" in published_sentence(analyse(models, params(windows=[2.5])))[0]


def test_frontier_and_tick_labels():
    assert list(pareto_front(np.array([10, 20, 15, 40.0]), np.array([0.8, 0.85, 0.79, 0.9]))) == [0, 1, 3]
    assert list(pareto_front(np.array([10, 20.0]), np.array([0.9, 0.8]))) == [0]  # one point: no line drawn
    # one architecture at two windows has one size: only the better of the two can be on the frontier
    assert list(pareto_front(np.array([10, 10, 20.0]), np.array([0.8, 0.9, 0.95]))) == [1, 2]
    assert list(pareto_front(np.array([10, 10, 20.0]), np.array([0.9, 0.8, 0.95]))) == [0, 2]
    assert _d(-0.00001) == "+0.0000" and _d(-0.0004) == "-0.0004" and _d(0.0213) == "+0.021"


@pytest.mark.parametrize("sizes", [[15e3, 32e3], [209e3, 1.27e6], [16e3, 1.3e6], [5e3, 5e6]])
def test_the_frontier_axis_labels_its_ticks_however_narrow_its_range(sizes):
    import matplotlib.pyplot as plt

    from ecg_crnn.report.plots import _log_ticks

    fig, ax = plt.subplots()
    ax.plot(sizes, [0.9, 0.95], "o")
    ax.set_xscale("log")
    _log_ticks(ax.xaxis, np.array(sizes))
    fig.canvas.draw()
    lo, hi = ax.get_xlim()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text() and lo <= t.get_position()[0] <= hi]
    plt.close(fig)
    assert 2 <= len(labels) <= 9, labels  # labelled, and not crowded
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

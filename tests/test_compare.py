"""The comparison's choices, hypotheses and sentences, on constructed results whose answer is known (the
statistics themselves are checked by simulation in test_statistics_simulation.py)."""

import dataclasses
import json
import zlib

import numpy as np
import pandas as pd
import pytest

from ecg_crnn.analysis.compare import ENDPOINT, analyse
from ecg_crnn.analysis.results import Model
from ecg_crnn.config import from_dict
from ecg_crnn.markup import md_escape
from ecg_crnn.metrics import TESTED
from ecg_crnn.report import published
from ecg_crnn.report.format import fig
from ecg_crnn.report.format import signed as _d
from ecg_crnn.report.plots import pareto_front, thousands
from ecg_crnn.report.published import published_rows, published_sentence
from ecg_crnn.report.sentences import RunInfo, answer, header, warnings
from ecg_crnn.report.tables import hypotheses_table, power_table

CLASSES = ["A", "B", "R1", "R2"]
FAMILIES = ["MI", "MI", "rhythm", "rhythm"]
SEEDS = (0, 1, 2, 3, 4)  # 2 select, 3 confirm
PATIENT_NOISE = np.random.default_rng(99).normal(0, 1, (400, 4))  # one test fold, shared by every model


def fake_model(
    arch,
    window,
    test_auc,
    val_auc,
    rhythm_gain=0.0,
    val_rhythm_gain=None,
    noise=0.004,
    params=1e4,
    seed_sd=0.002,
    seed_effect=None,
):
    """A model whose per-class test AUROC is about `test_auc`: patient noise shared by every model (the test fold is
    the same), a little of its own, a seed effect of SD `seed_sd` (or the given per-seed `seed_effect`);
    validation macro-AUROC `val_auc`; rhythm classes that gain `rhythm_gain` on test (and `val_rhythm_gain`,
    default the same, on validation)."""
    rng = np.random.default_rng(zlib.crc32(f"{arch}@{window}".encode()))  # stable across processes
    k, n = len(SEEDS), len(PATIENT_NOISE)
    seed_eff = (
        rng.normal(0, seed_sd, (k, 1)) if seed_effect is None else np.asarray(seed_effect, float)[:, None]
    )
    gain = np.array([0, 0, rhythm_gain, rhythm_gain])
    seed_class = test_auc + seed_eff + gain  # (seeds, classes)
    class_auc = seed_class[:, None, :] + noise * PATIENT_NOISE[None] + rng.normal(0, noise / 4, (k, n, 4))
    base = class_auc.mean(axis=2)
    resampled = {f: (0.05 + 0 * base if f == "hamming_loss" else base) for f in TESTED}
    runs = pd.DataFrame(
        [
            {
                **{f: (0.05 if f == "hamming_loss" else float(seed_class[i].mean())) for f in TESTED},
                "seed": s,
                "val_macro_auroc": val_auc + 0.001 * i,
                "test_patients": 300,
                "bootstrap_resamples": n,
                "bootstrap_acceptance": 0.97,
            }
            for i, s in enumerate(SEEDS)
        ]
    )
    per_class = pd.DataFrame(
        {
            "class": CLASSES,
            "family": FAMILIES,
            "test_positives": [40, 30, 25, 22],
            "test_positive_patients": [40, 30, 25, 20],
            "test_negative_patients": [260, 270, 275, 280],
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
        for s in SEEDS
    }
    vg = rhythm_gain if val_rhythm_gain is None else val_rhythm_gain
    val_classes = np.tile([val_auc, val_auc, val_auc + vg, val_auc + vg], (k, 1))
    cost = {"params": params, "macs_per_record": 1e6, "cpu_latency_ms": 1.0, "train_seconds": 10.0}
    return Model(
        arch,
        float(window),
        list(SEEDS),
        runs,
        resampled,
        class_auc,
        per_class,
        seed_class,
        val_classes,
        cost,
        hist,
        None,
        {},
        class_auc.copy(),
        seed_class.copy(),
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
            "train": {"seeds": list(SEEDS), "epochs": 3},
        }
    )


def grid(spec, **kw):
    return {(a, float(w)): fake_model(a, w, *v, **kw) for (a, w), v in spec.items()}


SPEC = {
    ("cnn", 2.5): (0.90, 0.90),
    ("cnn_lstm1", 2.5): (0.93, 0.93, 0.01),
    ("cnn_lstm3", 2.5): (0.905, 0.905),
    ("cnn", 10): (0.901, 0.90),
    ("cnn_lstm1", 10): (0.96, 0.96, 0.08),
    ("cnn_lstm3", 10): (0.959, 0.95, 0.08),
}


def test_every_choice_is_made_on_the_selection_seeds_validation():
    """The test fold favours cnn_lstm3 at 10 s, validation favours cnn_lstm1 at 10 s: the best is the validation
    choice. Label families are ranked on validation too (rhythm gains nothing on test, 0.05 on validation)."""
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
    assert st.family_order == ["rhythm", "MI"]
    assert st.selection == (0, 1) and st.confirmation == (2, 3, 4)
    # only the selection seeds' validation counts: make seeds 2-4 of cnn_lstm3 @ 10 s shine on validation
    models[("cnn_lstm3", 10.0)].runs.loc[2:, "val_macro_auroc"] = 0.99
    assert analyse(models, params()).best == ("cnn_lstm1", 10.0)
    models[("cnn_lstm3", 10.0)].runs.loc[:1, "val_macro_auroc"] = 0.99
    assert analyse(models, params()).best == ("cnn_lstm3", 10.0)


def test_a_choice_is_confirmed_on_seeds_that_took_no_part_in_it():
    """The best recurrent model's selection seeds are lucky on test too (their luck carries over); its confirmation
    seeds are not. The recurrence contrast must rest on the confirmation seeds alone; a contrast fixed in advance
    (depth) on every seed."""
    spec = dict(SPEC)
    models = grid(spec, noise=0.0005, seed_sd=0.0)
    lucky = fake_model("cnn_lstm1", 10, 0.901, 0.97, seed_effect=[0.05, 0.05, 0, 0, 0], noise=0.0005)
    models[("cnn_lstm1", 10.0)] = lucky
    st = analyse(models, params())
    h = st.get("recurrence/10")
    assert h.seeds == "confirmation" and abs(h.difference) < 0.005  # the selection seeds' luck is left out
    assert st.get("reference_depth/10/lstm/3").seeds == "all"
    assert st.get("recurrence/10").estimate.seed_parts[0].n_seeds == 3


def test_answer_sentences_say_what_each_question_found():
    st = analyse(grid(SPEC), params())
    text = "\n".join(answer(st))
    assert "**Best model** (chosen on the validation fold of seeds 0, 1): **cnn_lstm1 @ 10 s**" in text
    assert (
        "**Recurrence at all**, 10 s: cnn_lstm1 @ 10 s (the best recurrent model) against cnn @ 10 s: **better**"
        in text
    )
    assert "[recurrence]" in text and "[reference_depth]" in text and "[context]" in text
    assert "The published choice** cnn_lstm1 @ 10 s is the model chosen as best at 10 s" in text
    assert "no significant difference" not in text and "as good as the best" not in text
    assert "**LSTM depth**, 2.5 s: 3 layers instead of 1" in text and "**worse**" in text


def test_no_effect_is_said_only_as_equivalence_else_inconclusive_with_what_is_resolvable():
    same = {(a, w): (0.9, 0.9 + 0.001 * i) for i, (a, w) in enumerate(SPEC)}
    precise = analyse(grid(same, noise=0.0003, seed_sd=0.0003), params())
    assert precise.get("reference_depth/2.5/lstm/3").verdict.wording == "equivalent within 0.01"
    vague = analyse(grid(same, noise=0.02, seed_sd=0.01), params())
    v = vague.get("reference_depth/2.5/lstm/3").verdict
    assert v.wording.startswith("inconclusive: this study can resolve differences of") and v.mde > 0.01
    assert "inconclusive: this study can resolve differences of" in "\n".join(answer(vague))


def test_one_graphical_procedure_shares_alpha_over_every_claim():
    st = analyse(grid(SPEC), params())
    weights = [h.weight for h in st.hypotheses.values()]
    assert sum(weights) == pytest.approx(1.0) and min(weights) > 0
    primary = [h for h in st.hypotheses.values() if st.is_primary(h)]
    assert sum(h.weight for h in primary) == pytest.approx(0.8)
    groups = {
        h.group for h in primary
    }  # published_choice too, where the reference is not the best at a window
    assert (
        {"recurrence", "reference_depth"} <= groups <= {"recurrence", "reference_depth", "published_choice"}
    )
    table = hypotheses_table(st)
    assert set(table["tier"]) == {"primary", "secondary"} and (table["level reached"] >= 0).all()
    assert (table["level reached"] <= 0.05 + 1e-12).all()


def test_power_is_stated_for_every_primary_hypothesis():
    st = analyse(grid(SPEC), params())
    names = {r.name for r in st.power}
    assert names == {h.name for h in st.hypotheses.values() if st.is_primary(h)}
    for r in st.power:
        assert 0 <= r.power_at_margin <= 1 and r.mde > 0 and r.level > 0
    assert len(power_table(st)) == len(st.power)


def test_bounded_figures_stay_in_their_range():
    near_one = {(a, w): (0.998, 0.9 + 0.001 * i) for i, (a, w) in enumerate(SPEC)}
    st = analyse(grid(near_one, noise=0.01, seed_sd=0.005), params())
    for key in st.models:
        for f in (ENDPOINT, *TESTED):
            lo, hi = st.interval(key, f)
            assert 0 <= lo <= hi <= 1, (key, f, lo, hi)
    assert any(st.figures[k][ENDPOINT].interval.clipped for k in st.models)


def test_header_and_warnings_say_what_the_run_rests_on():
    models = grid(
        {("cnn", 2.5): (0.9, 0.9), ("cnn_lstm1", 2.5): (0.91, 0.91), ("cnn_lstm3", 2.5): (0.9, 0.9)}
    )
    for m in models.values():
        m.per_class.loc[3, "test_positives"] = 0
        m.per_class.loc[2, "test_positive_patients"] = 2
        m.runs["bootstrap_acceptance"] = 0.4
    st = analyse(models, params(windows=[2.5]))
    info = RunInfo("../shared/ptbxl", "subdiagnostic", 100, {"train": 380, "val": 50, "test": 66}, 4)
    text = "\n".join(header(st, info) + warnings(st, info))
    assert f"{md_escape('../shared/ptbxl')}, 100 Hz" in text and "test 66 (300 patients)" in text
    assert (
        "Classes without a positive in the test fold** (left out of macro-AUROC and macro-AUPRC): R2" in text
    )
    assert "3 or fewer positive test patients (their AUROC rests on a handful of patients): R1 (2)" in text
    assert "3 architectures x 1 window length (2.5 s) x 5 seeds (0, 1, 2, 3, 4)" in text
    assert "selection seeds (0, 1)" in text and "confirmation seeds (2, 3, 4)" in text
    assert "Primary endpoint" in text and "Welch-Satterthwaite" in text and "crops and aggregation" in text
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
    # macro-AUPRC of ~0.91 with a tight interval lies above 0.4715; a Hamming loss of 0.05 is above (worse than) 0.0338
    assert rows.loc[1, "cnn_lstm1 @ 2.5 s"].endswith("higher than published (better)")
    assert rows.loc[0, "cnn_lstm1 @ 2.5 s"].endswith("higher than published (worse)")
    sentence = published_sentence(st)[0]
    assert "higher than published (worse) on Hamming loss" in sentence and "not a test" in sentence
    assert "beaten" not in sentence
    for m in models.values():  # a Hamming loss below the published one is better (lower is better)
        m.runs["hamming_loss"], m.resampled["hamming_loss"] = 0.02, m.resampled["hamming_loss"] * 0 + 0.02
    # the result is computed once: analysed again with the new figures
    assert (
        "lower than published (better) on Hamming loss"
        in published_sentence(analyse(models, params(windows=[2.5])))[0]
    )


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
        ["ecg-crnn", "bootstrap", "--out", str(tmp_path / "b"), *common[0:2], *common[2:]],
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
            str(tmp_path / "b"),
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


def test_the_report_says_which_recipe_each_model_trained_with():
    from ecg_crnn.recipe import Recipe
    from ecg_crnn.report.tables import study_table

    models = grid({("cnn", 2.5): (0.9, 0.9), ("cnn_lstm1", 2.5): (0.91, 0.91)})
    st = analyse(models, params(windows=[2.5]))
    split = {"train": 380, "val": 50, "test": 66}
    default = Recipe(0.003, 0.3, 0.01, tuned=False)
    shared = RunInfo("x", "subdiagnostic", 100, split, 4, {k: default for k in st.models})
    text = "\n".join(header(st, shared) + warnings(st, shared))
    assert "AdamW at peak learning rate 0.003, dropout 0.3, weight decay 0.01 for every architecture" in text
    tuned = {("cnn", 2.5): Recipe(0.004, 0.2, 0.01, tuned=True), ("cnn_lstm1", 2.5): default}
    own = RunInfo("x", "subdiagnostic", 100, split, 4, tuned)
    text = "\n".join(header(st, own) + warnings(st, own))
    assert (
        "own recipe, tuned on the validation fold with the same budget for each (recipe.yaml; 1 of 2 models)"
        in text
    )
    assert "peak learning rate 0.004, dropout 0.2" in text and "the other 1 at the shared default" in text
    assert (
        "peak learning rate 0.003" not in text.split("the other 1")[0]
    )  # never the default as if every model's
    table = study_table(st, tuned).set_index("model")["recipe"]
    assert table["cnn"] == "lr 0.004, dropout 0.2, wd 0.01 (tuned)" and table["cnn_lstm1"].endswith(
        "(default)"
    )
    assert "rotation" not in text  # one rotation: the recipes were tuned on the split the test fold is out of
    two = st.params.model_copy(update={"segment": st.params.segment.model_copy(update={"rotations": [0, 1]})})
    rotated = dataclasses.replace(st, params=two)  # the warning reads the parameters only
    assert "rotation 1 shifts the folds" in "\n".join(warnings(rotated, own))
    assert "rotation 1 shifts" not in "\n".join(
        warnings(rotated, shared)
    )  # nothing tuned: nothing chosen on it


def test_the_best_models_headline_rests_on_the_seeds_that_did_not_choose_it():
    """Seeds 0 and 1 (the selection seeds) are lucky on every fold for one model: they choose it, and its headline
    figure must not carry their luck (the study table, every seed, does)."""
    lucky = [0.03, 0.03, 0.0, 0.0, 0.0]
    models = grid(
        {("cnn", 2.5): (0.9, 0.9), ("cnn_lstm1", 2.5): (0.9, 0.92), ("cnn_lstm3", 2.5): (0.9, 0.9)},
        seed_sd=0.0,
    )
    models[("cnn_lstm1", 2.5)] = fake_model("cnn_lstm1", 2.5, 0.9, 0.92, seed_effect=lucky)
    st = analyse(models, params(windows=[2.5]))
    assert st.best == ("cnn_lstm1", 2.5) and st.confirmation == (2, 3, 4)
    every, confirmed = st.figures[st.best][ENDPOINT].point, st.headline(st.best, ENDPOINT).point
    assert every - confirmed == pytest.approx(0.03 * 2 / 5, abs=0.003)  # the selection seeds' luck, left out
    said = "\n".join(answer(st))
    assert f"primary macro-AUROC {fig(confirmed)} [" in said and "3 confirmation seeds (2, 3, 4)" in said
    assert st.headline(("cnn_lstm3", 2.5), ENDPOINT) is st.figures[("cnn_lstm3", 2.5)][ENDPOINT]  # not chosen

"""The study's statistics: every choice on the validation fold, then paired, Holm-corrected tests on the test fold.

A model is one architecture at one window length, trained with several seeds. Its figure is the mean over
seeds of the seeds' test figures. Its uncertainty comes from a hierarchical bootstrap: each replicate
resamples the seeds (with replacement) and the test patients (the evaluate stages' shared patient weights),
so an interval accounts for both seed-to-seed and patient-to-patient variation. Two models are compared
replicate by replicate on the same patients (paired).

Choices (the best model, the best recurrent model per window, the order of label families) use the mean
validation macro-AUROC over seeds; the test fold only reports. Differences are tested with the bootstrap's
standard error (two-sided Wald test; for "as good as the best", a one-sided non-inferiority test against
the margin of study.margins), and all p-values the report states are Holm-adjusted as one family.
"""

from __future__ import annotations

import json
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from .config import Params
from .errors import EcgCrnnError
from .metrics import LOWER_IS_BETTER, TESTED, auroc_per_class, interval
from .models import get_architecture

PRIMARY = "macro_auroc"
Key = tuple[str, float]  # (architecture, window in seconds)


@dataclass
class Model:
    arch: str
    window: float
    seeds: list[int]
    runs: pd.DataFrame  # one row per seed: the evaluate stage's metrics.json
    resampled: dict[str, np.ndarray]  # figure -> (seeds, resamples)
    class_auroc: np.ndarray  # (seeds, resamples, classes)
    per_class: pd.DataFrame  # class, family, test_positives, auroc (mean over seeds)
    val_class_auroc: np.ndarray  # (classes,) mean over seeds, validation fold
    cost: dict
    histories: dict[int, pd.DataFrame]  # seed -> history.csv
    test_y: np.ndarray = field(repr=False, default=None)
    test_p: dict[int, np.ndarray] = field(repr=False, default_factory=dict)

    @property
    def key(self) -> Key:
        return (self.arch, self.window)

    @property
    def name(self) -> str:
        return f"{self.arch} @ {self.window:g} s"

    @property
    def type(self) -> str:
        return get_architecture(self.arch).family

    @property
    def depth(self) -> int:
        return get_architecture(self.arch).layers

    def point(self, figure: str) -> float:
        return float(self.runs[figure].mean())

    def seed_sd(self, figure: str) -> float:
        return float(self.runs[figure].std(ddof=1)) if len(self.runs) > 1 else 0.0

    @property
    def val(self) -> float:
        return float(self.runs["val_macro_auroc"].mean())


def _window_dirs(root: Path) -> dict[float, Path]:
    out = {}
    for d in Path(root).iterdir() if Path(root).is_dir() else []:
        if d.is_dir() and d.name.endswith("s"):
            try:
                out[float(d.name[:-1])] = d
            except ValueError:
                continue
    return out


def _nanmean_seeds(values: np.ndarray) -> np.ndarray:
    """Mean over seeds; NaN (without numpy's warning) for a class the validation fold cannot score."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=0)


def load_models(evaluation: Path, models: Path, params: Params) -> dict[Key, Model]:
    """Every (architecture, window) of the configured grid, with every seed of train.seeds; a missing
    evaluation is named."""
    ev_dirs, model_dirs = _window_dirs(evaluation), _window_dirs(models)
    out: dict[Key, Model] = {}
    for window in params.study.windows:
        for arch in params.study.architectures:
            runs, resampled, class_auroc, per_class, val_auc, hist, test_p = [], {}, [], [], [], {}, {}
            test_y = None
            for seed in params.train.seeds:
                d = ev_dirs.get(float(window), Path(evaluation) / f"{window:g}s") / arch / f"seed{seed}"
                m = model_dirs.get(float(window), Path(models) / f"{window:g}s") / arch / f"seed{seed}"
                try:
                    runs.append(json.loads((d / "metrics.json").read_text()))
                    npz = np.load(d / "resamples.npz")
                    pred = np.load(d / "predictions.npz")
                    pc = pd.read_csv(d / "per_class.csv")
                    hist[seed] = pd.read_csv(m / "history.csv")
                except FileNotFoundError as exc:
                    raise EcgCrnnError(
                        f"{exc.filename}: missing (train and evaluate {arch} at {window:g} s, seed {seed})"
                    ) from None
                for k in TESTED:
                    resampled.setdefault(k, []).append(npz[k])
                class_auroc.append(npz["class_auroc"])
                per_class.append(pc)
                val_auc.append(auroc_per_class(pred["val_y"], pred["val_p"]))
                test_y, test_p[seed] = pred["test_y"], pred["test_p"]
            cost_path = ev_dirs.get(float(window), Path(evaluation) / f"{window:g}s") / arch / "cost.json"
            cost = json.loads(cost_path.read_text()) if cost_path.is_file() else {}
            timing = []
            for seed in params.train.seeds:
                t = model_dirs.get(float(window), Path(models) / f"{window:g}s") / arch / f"seed{seed}"
                t = t / "timing.json"
                timing.append(json.loads(t.read_text())["train_seconds"] if t.is_file() else np.nan)
            cost["train_seconds"] = float(np.nansum(timing)) if np.isfinite(timing).any() else np.nan
            pc = per_class[0][["class", "family", "test_positives"]].copy()
            pc["auroc"] = np.mean([p["auroc"].to_numpy(float) for p in per_class], axis=0)
            lengths = {len(v) for vals in resampled.values() for v in vals}
            if len(lengths) != 1:
                raise EcgCrnnError(
                    "evaluations used different bootstrap resamples; re-run the evaluate stages"
                )
            out[(arch, float(window))] = Model(
                arch,
                float(window),
                list(params.train.seeds),
                pd.DataFrame(runs),
                {k: np.stack(v) for k, v in resampled.items()},
                np.stack(class_auroc),
                pc,
                _nanmean_seeds(np.stack(val_auc)),
                cost,
                hist,
                test_y,
                test_p,
            )
    lengths = {m.resampled[PRIMARY].shape[1] for m in out.values()}
    if len(lengths) != 1:
        raise EcgCrnnError("evaluations used different bootstrap resamples; re-run the evaluate stages")
    return out


# ---- the hierarchical bootstrap -------------------------------------------------------------------------


class Replicates:
    """Per model, which seeds each bootstrap replicate draws (with replacement); patients are already
    resampled identically for every model by the evaluate stages' shared weights."""

    def __init__(self, models: dict[Key, Model], seed: int):
        self.draws: dict[Key, np.ndarray] = {}
        for key, m in models.items():
            n_seeds, n_resamples = m.resampled[PRIMARY].shape
            tag = zlib.crc32(f"{key[0]}@{key[1]:g}".encode())
            rng = np.random.default_rng([seed, tag])
            self.draws[key] = rng.integers(0, n_seeds, size=(n_resamples, n_seeds))

    def figure(self, m: Model, figure: str) -> np.ndarray:
        """(resamples,) the mean over the drawn seeds of the figure on the resampled patients."""
        values = m.resampled[figure]  # (seeds, resamples)
        d = self.draws[m.key]
        return values[d, np.arange(values.shape[1])[:, None]].mean(axis=1)

    def class_auroc(self, m: Model) -> np.ndarray:
        """(resamples, classes)"""
        d = self.draws[m.key]
        return m.class_auroc[d, np.arange(d.shape[0])[:, None]].mean(axis=1)


def oriented(figure: str, value):
    """Higher is better for every figure once Hamming loss changes sign."""
    return -value if figure in LOWER_IS_BETTER else value


@dataclass
class Hypothesis:
    """One hypothesis of the report's family. `difference` is oriented: positive means `a` is better."""

    name: str
    kind: str  # "difference" (two-sided, H0: no difference) or "non-inferiority" (H0: a worse by >= margin)
    figure: str
    a: str
    b: str
    difference: float
    se: float
    margin: float = 0.0
    p: float = 1.0
    p_holm: float = 1.0

    @property
    def lo(self) -> float:
        return self.difference - 1.959963984540054 * self.se

    @property
    def hi(self) -> float:
        return self.difference + 1.959963984540054 * self.se


def make_test(name: str, kind: str, figure: str, a: str, b: str, point: float, reps: np.ndarray, margin=0.0):
    se = float(np.std(reps, ddof=1)) if len(reps) > 1 else 0.0
    if kind == "difference":
        p = 1.0 if point == 0 else 0.0 if se == 0 else float(2 * norm.sf(abs(point) / se))
    else:
        z = (point + margin) / se if se > 0 else (np.inf if point + margin > 0 else -np.inf)
        p = float(norm.sf(z))
    return Hypothesis(name, kind, figure, a, b, float(point), se, margin, p)


def holm(tests: list[Hypothesis]) -> None:
    """Holm's step-down adjustment of every test's p-value, in place (family-wise error control)."""
    order = np.argsort([t.p for t in tests], kind="mergesort")
    m, running = len(tests), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * tests[i].p))
        tests[i].p_holm = running


# ---- the study ------------------------------------------------------------------------------------------


@dataclass
class Study:
    models: dict[Key, Model]
    params: Params
    reps: Replicates
    best: Key = None  # chosen on validation
    best_per_window: dict[float, Key] = field(default_factory=dict)
    best_recurrent: dict[float, Key] = field(default_factory=dict)
    tests: list[Hypothesis] = field(default_factory=list)
    by_name: dict[str, Hypothesis] = field(default_factory=dict)
    family_order: list[str] = field(default_factory=list)  # ranked on validation

    @property
    def windows(self) -> list[float]:
        return sorted({k[1] for k in self.models})

    def interval(self, m: Model, figure: str, level: float = 0.95) -> tuple[float, float]:
        return interval(self.reps.figure(m, figure), level)

    def add(self, test: Hypothesis) -> Hypothesis:
        self.tests.append(test)
        self.by_name[test.name] = test
        return test

    def diff(self, name: str, a: Model, b: Model, figure: str, kind="difference", margin=0.0) -> Hypothesis:
        point = oriented(figure, a.point(figure) - b.point(figure))
        reps = oriented(figure, self.reps.figure(a, figure) - self.reps.figure(b, figure))
        return self.add(make_test(name, kind, figure, a.name, b.name, point, reps, margin))

    def families(self) -> dict[str, list[int]]:
        """Label family -> indices of its classes scored on the test fold."""
        m = next(iter(self.models.values()))
        scored = np.isfinite(m.class_auroc[0]).all(axis=0)
        fam: dict[str, list[int]] = {}
        for i, f in enumerate(m.per_class["family"]):
            if scored[i]:
                fam.setdefault(str(f), []).append(i)
        return fam

    def family_gain(self, window: float, family: list[int]) -> tuple[float, np.ndarray]:
        """Mean per-class test AUROC of the best recurrent model minus the CNN's, over a family's classes."""
        rnn, cnn = self.models[self.best_recurrent[window]], self.models[("cnn", window)]
        point = float(
            np.mean(rnn.per_class["auroc"].to_numpy()[family] - cnn.per_class["auroc"].to_numpy()[family])
        )
        reps = (self.reps.class_auroc(rnn)[:, family] - self.reps.class_auroc(cnn)[:, family]).mean(axis=1)
        return point, reps


def analyse(models: dict[Key, Model], params: Params) -> Study:
    """Make every choice on validation, then state and Holm-correct every test the report reports."""
    st = Study(models, params, Replicates(models, params.evaluate.bootstrap_seed))
    margins = params.study.margins
    st.best = max(models, key=lambda k: models[k].val)
    for w in st.windows:
        in_window = [k for k in models if k[1] == w]
        st.best_per_window[w] = max(in_window, key=lambda k: models[k].val)
        recurrent = [k for k in in_window if k[0] != "cnn"]
        if recurrent:
            st.best_recurrent[w] = max(recurrent, key=lambda k: models[k].val)
    best = models[st.best]

    # 1. every model against the best, on every tested figure: different? as good (non-inferior)?
    for key, m in models.items():
        if key == st.best:
            continue
        for fig in TESTED:
            st.diff(f"vs_best/{m.name}/{fig}", m, best, fig)
            st.diff(f"noninf/{m.name}/{fig}", m, best, fig, "non-inferiority", getattr(margins, fig))
    # 2. every model against the reference architecture at its window (the primary figure)
    for (arch, w), m in models.items():
        ref = models.get((params.study.reference, w))
        if ref is not None and arch != params.study.reference:
            st.diff(f"vs_reference/{m.name}", m, ref, PRIMARY)
    # 3. recurrence at all, per window: the best recurrent model (chosen on validation) against the CNN
    for w, key in st.best_recurrent.items():
        if ("cnn", w) in models:
            for fig in TESTED:
                st.diff(f"recurrence/{w:g}/{fig}", models[key], models[("cnn", w)], fig)
    # 4. depth, per window and recurrent type: the deepest stack against one layer
    for w in st.windows:
        for kind in sorted({m.type for k, m in models.items() if k[1] == w and m.depth}):
            stack = sorted(
                (m for k, m in models.items() if k[1] == w and m.type == kind), key=lambda m: m.depth
            )
            if len(stack) >= 2:
                st.diff(f"depth/{w:g}/{kind}", stack[-1], stack[0], PRIMARY)
    # 5. label families: where recurrence helps, per window (ranked on validation)
    fams = st.families()
    val_gain = {}
    for f, idx in fams.items():
        gains = []
        for w, key in st.best_recurrent.items():
            if ("cnn", w) in models:
                point, reps = st.family_gain(w, idx)
                st.add(
                    make_test(f"family/{w:g}/{f}", "difference", "class_auroc", key[0], "cnn", point, reps)
                )
                gains.append(
                    np.nanmean(models[key].val_class_auroc[idx] - models[("cnn", w)].val_class_auroc[idx])
                )
        val_gain[f] = float(np.mean(gains)) if gains else 0.0
    st.family_order = sorted(fams, key=lambda f: -val_gain[f])
    # 6. context: does the value of recurrence grow from the shortest to the longest window?
    short, long = st.windows[0], st.windows[-1]
    if (
        short != long
        and {short, long} <= set(st.best_recurrent)
        and {("cnn", short), ("cnn", long)} <= set(models)
    ):
        r_s, c_s = models[st.best_recurrent[short]], models[("cnn", short)]
        r_l, c_l = models[st.best_recurrent[long]], models[("cnn", long)]
        for fig in TESTED:
            point = oriented(fig, (r_l.point(fig) - c_l.point(fig)) - (r_s.point(fig) - c_s.point(fig)))
            reps = oriented(
                fig,
                (st.reps.figure(r_l, fig) - st.reps.figure(c_l, fig))
                - (st.reps.figure(r_s, fig) - st.reps.figure(c_s, fig)),
            )
            st.add(
                make_test(
                    f"context/{fig}",
                    "difference",
                    fig,
                    f"recurrence @ {long:g} s",
                    f"recurrence @ {short:g} s",
                    point,
                    reps,
                )
            )
        for f, idx in fams.items():
            p_l, reps_l = st.family_gain(long, idx)
            p_s, reps_s = st.family_gain(short, idx)
            st.add(
                make_test(
                    f"context_family/{f}",
                    "difference",
                    "class_auroc",
                    f"{f} @ {long:g} s",
                    f"{f} @ {short:g} s",
                    p_l - p_s,
                    reps_l - reps_s,
                )
            )
        st.diff("context_cnn", c_l, c_s, PRIMARY)
        st.diff("context_recurrent", r_l, r_s, PRIMARY)
    holm(st.tests)
    return st


def verdict(st: Study, m: Model, figure: str = PRIMARY) -> str:
    """How a model stands against the best (chosen on validation), after Holm's correction."""
    if m.key == st.best:
        return "best"
    alpha = st.params.study.alpha
    ni = st.by_name[f"noninf/{m.name}/{figure}"]
    diff = st.by_name[f"vs_best/{m.name}/{figure}"]
    if diff.p_holm < alpha and diff.difference > 0:
        return "better"
    if ni.p_holm < alpha:
        return "as good"
    if diff.p_holm < alpha:
        return "worse"
    return "inconclusive"

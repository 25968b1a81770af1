"""The study's statistics: every choice on the validation fold, then paired, Holm-corrected tests on the test fold.

A model is one architecture at one window length, trained with K seeds; its figure is the mean over seeds of
the seeds' test figures. Two sources of error are accounted for: which test patients were sampled (the
evaluate stages' shared patient resamples, identical for every model, so comparisons are paired) and which
seeds were drawn (training randomness).

- A model's interval: percentiles of a hierarchical bootstrap; each replicate takes the patient resample and
  draws K seeds with replacement from the model's seeds, their deviations from the seed mean first inflated by
  sqrt(K / (K - 1)) (resampling K values with replacement otherwise shrinks their variance by (K - 1) / K).
- A comparison is a contrast: a signed sum of models' figures (a difference, or a difference of differences
  for "does the value of recurrence grow with context"). Its standard error adds the patient part (the variance
  of the contrast over the shared resamples, seeds averaged) and each model's seed variance over K; the
  reference distribution is Student's t with Welch-Satterthwaite degrees of freedom (the seed part rests on
  K - 1 of them per model). Two-sided tests for differences, one-sided for non-inferiority against
  study.margins.
- Holm's step-down correction within each stated family: the answer's sentences, and the table's verdicts
  of every model against the best.

Choices (the best model, the best recurrent model per window, the order of label families) use the mean
validation macro-AUROC over seeds; the test fold only reports.
"""

from __future__ import annotations

import json
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import t as student

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
    seed_class_auroc: np.ndarray  # (seeds, classes) each seed's per-class test AUROC
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
            # per seed, as every other figure of a model is its seeds' mean
            cost["train_seconds"] = float(np.nanmean(timing)) if np.isfinite(timing).any() else np.nan
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
                np.stack([p["auroc"].to_numpy(float) for p in per_class]),
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


# ---- the hierarchical bootstrap and contrasts -----------------------------------------------------------

Figure = str | tuple  # a tested figure's name, or ("classes", indices): the mean AUROC over those classes


def seed_values(m: Model, figure: Figure) -> tuple[np.ndarray, np.ndarray]:
    """(each seed's figure on the whole test fold (K,), each seed's figure per patient resample (K, B))."""
    if isinstance(figure, tuple):
        idx = list(figure[1])
        return m.seed_class_auroc[:, idx].mean(axis=1), m.class_auroc[:, :, idx].mean(axis=2)
    return m.runs[figure].to_numpy(float), m.resampled[figure]


class Replicates:
    """Per model, which seeds each bootstrap replicate draws (with replacement), for the models' intervals."""

    def __init__(self, models: dict[Key, Model], seed: int):
        self.draws: dict[Key, np.ndarray] = {}
        for key, m in models.items():
            n_seeds, n_resamples = m.resampled[PRIMARY].shape
            tag = zlib.crc32(f"{key[0]}@{key[1]:g}".encode())
            rng = np.random.default_rng([seed, tag])
            self.draws[key] = rng.integers(0, n_seeds, size=(n_resamples, n_seeds))

    def figure(self, m: Model, figure: Figure) -> np.ndarray:
        """(resamples,): per patient resample, the mean of K seeds drawn with replacement, their deviations from
        the resample's seed mean inflated by sqrt(K / (K - 1)) so that the seed mean's variance is s^2 / K."""
        _, values = seed_values(m, figure)  # (K, B)
        k = values.shape[0]
        center = values.mean(axis=0)
        if k < 2:
            return center
        deviation = (values - center) * np.sqrt(k / (k - 1))
        d = self.draws[m.key]
        return center + deviation[d, np.arange(values.shape[1])[:, None]].mean(axis=1)


def oriented(figure: Figure, value):
    """Higher is better for every figure once Hamming loss changes sign."""
    return -value if isinstance(figure, str) and figure in LOWER_IS_BETTER else value


@dataclass
class Hypothesis:
    """One hypothesis of a stated family. `difference` is oriented: positive means `a` is better."""

    name: str
    kind: str  # "difference" (two-sided, H0: no difference) or "non-inferiority" (H0: a worse by >= margin)
    figure: str
    a: str
    b: str
    difference: float
    se: float
    df: float
    family: str = "answer"  # the Holm family: "answer" (the sentences) or "table" (verdicts against the best)
    margin: float = 0.0
    p: float = 1.0
    p_holm: float = 1.0

    @property
    def half_width(self) -> float:
        return float(student.ppf(0.975, self.df) * self.se) if self.se > 0 else 0.0

    @property
    def lo(self) -> float:
        return self.difference - self.half_width

    @property
    def hi(self) -> float:
        return self.difference + self.half_width


@dataclass
class Contrast:
    point: float
    se: float
    df: float


def contrast(terms: list[tuple[float, Model]], figure: Figure) -> Contrast:
    """sum(w * figure of model) over `terms`, oriented (higher is better), with its standard error: the patient
    part from the shared resamples (each model's seeds averaged, so paired across models) plus each model's
    seed variance over K, and Welch-Satterthwaite degrees of freedom."""
    point, patient, seed_parts = 0.0, 0.0, []
    for w, m in terms:
        pts, reps = seed_values(m, figure)
        point += w * float(pts.mean())
        patient = patient + w * reps.mean(axis=0)
        if len(pts) > 1:
            seed_parts.append((w**2 * float(pts.var(ddof=1)) / len(pts), len(pts) - 1))
    var_patient = float(np.var(oriented(figure, patient), ddof=1))
    var = var_patient + sum(v for v, _ in seed_parts)
    seed_df = sum(v**2 / dof for v, dof in seed_parts)
    df = var**2 / seed_df if seed_df > 0 else np.inf
    return Contrast(float(oriented(figure, point)), float(np.sqrt(var)), float(df))


def make_test(name, kind, figure, a, b, c: Contrast, family="answer", margin=0.0) -> Hypothesis:
    if c.se == 0:  # identical models, or no variation measured: nothing can be claimed
        p = 1.0
    elif kind == "difference":
        p = float(2 * student.sf(abs(c.point) / c.se, c.df))
    else:
        p = float(student.sf((c.point + margin) / c.se, c.df))
    label = figure if isinstance(figure, str) else "class_auroc"
    return Hypothesis(name, kind, label, a, b, c.point, c.se, c.df, family, margin, p)


def holm(tests: list[Hypothesis]) -> None:
    """Holm's step-down adjustment of the p-values, in place, within each family (family-wise error control)."""
    for family in {t.family for t in tests}:
        members = [t for t in tests if t.family == family]
        order = np.argsort([t.p for t in members], kind="mergesort")
        m, running = len(members), 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (m - rank) * members[i].p))
            members[i].p_holm = running


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

    def add(self, name, kind, figure, a: str, b: str, terms, family="answer", margin=0.0) -> Hypothesis:
        test = make_test(name, kind, figure, a, b, contrast(terms, figure), family, margin)
        self.tests.append(test)
        self.by_name[name] = test
        return test

    def diff(self, name: str, a: Model, b: Model, figure, kind="difference", margin=0.0, family="answer"):
        return self.add(name, kind, figure, a.name, b.name, [(1.0, a), (-1.0, b)], family, margin)

    def families(self) -> dict[str, list[int]]:
        """Label family -> indices of its classes scored on the test fold."""
        m = next(iter(self.models.values()))
        scored = np.isfinite(m.class_auroc[0]).all(axis=0)
        fam: dict[str, list[int]] = {}
        for i, f in enumerate(m.per_class["family"]):
            if scored[i]:
                fam.setdefault(str(f), []).append(i)
        return fam


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
    ref_arch = params.study.reference

    # The table's family: every model against the best on the primary figure, different? as good?
    for key, m in models.items():
        if key != st.best:
            st.diff(f"vs_best/{m.name}", m, best, PRIMARY, family="table")
            st.diff(
                f"noninf/{m.name}", m, best, PRIMARY, "non-inferiority", margins.macro_auroc, family="table"
            )
    # The answer's family. The published choice against the best, on every headline figure:
    for w in st.windows:
        ref = models.get((ref_arch, w))
        if ref is not None and ref.key != st.best:
            for fig in TESTED:
                st.diff(f"reference/{w:g}/{fig}", ref, best, fig)
    # Recurrence at all, per window: the best recurrent model (chosen on validation) against the CNN.
    for w, key in st.best_recurrent.items():
        if ("cnn", w) in models:
            for fig in TESTED:
                st.diff(f"recurrence/{w:g}/{fig}", models[key], models[("cnn", w)], fig)
    # Depth, per window and recurrent type: the deepest stack against one layer.
    for w in st.windows:
        for kind in sorted({m.type for k, m in models.items() if k[1] == w and m.depth}):
            stack = sorted(
                (m for k, m in models.items() if k[1] == w and m.type == kind), key=lambda m: m.depth
            )
            if len(stack) >= 2:
                st.diff(f"depth/{w:g}/{kind}", stack[-1], stack[0], PRIMARY)
    # Label families: where recurrence helps, per window; ranked by their gain on the validation fold.
    fams = st.families()
    val_gain = {}
    for f, idx in fams.items():
        gains = []
        for w, key in st.best_recurrent.items():
            if ("cnn", w) in models:
                rnn, cnn = models[key], models[("cnn", w)]
                st.add(
                    f"family/{w:g}/{f}",
                    "difference",
                    ("classes", idx),
                    rnn.name,
                    cnn.name,
                    [(1.0, rnn), (-1.0, cnn)],
                )
                gains.append(np.nanmean(rnn.val_class_auroc[idx] - cnn.val_class_auroc[idx]))
        val_gain[f] = float(np.mean(gains)) if gains else 0.0
    st.family_order = sorted(fams, key=lambda f: -val_gain[f])
    # Context: does the value of recurrence grow from the shortest to the longest window? For the best recurrent
    # model at each window (which may be two architectures) and for one fixed architecture, the reference.
    short, long = st.windows[0], st.windows[-1]
    if (
        short != long
        and {short, long} <= set(st.best_recurrent)
        and {("cnn", short), ("cnn", long)} <= set(models)
    ):
        r_s, c_s = models[st.best_recurrent[short]], models[("cnn", short)]
        r_l, c_l = models[st.best_recurrent[long]], models[("cnn", long)]
        interaction = [(1.0, r_l), (-1.0, c_l), (-1.0, r_s), (1.0, c_s)]
        for fig in TESTED:
            st.add(
                f"context/{fig}",
                "difference",
                fig,
                f"{r_l.name} - {c_l.name}",
                f"{r_s.name} - {c_s.name}",
                interaction,
            )
        for f, idx in fams.items():
            st.add(
                f"context_family/{f}",
                "difference",
                ("classes", idx),
                f"{f} @ {long:g} s",
                f"{f} @ {short:g} s",
                interaction,
            )
        ref_s, ref_l = models.get((ref_arch, short)), models.get((ref_arch, long))
        if ref_s is not None and ref_l is not None and ref_arch != "cnn":
            st.add(
                "context_reference",
                "difference",
                PRIMARY,
                f"{ref_l.name} - {c_l.name}",
                f"{ref_s.name} - {c_s.name}",
                [(1.0, ref_l), (-1.0, c_l), (-1.0, ref_s), (1.0, c_s)],
            )
        st.diff("context_cnn", c_l, c_s, PRIMARY)
        st.diff("context_recurrent", r_l, r_s, PRIMARY)
    holm(st.tests)
    return st


def verdict(st: Study, m: Model) -> str:
    """How a model stands against the best (chosen on validation) on macro-AUROC, after Holm."""
    if m.key == st.best:
        return "best"
    alpha = st.params.study.alpha
    ni, diff = st.by_name[f"noninf/{m.name}"], st.by_name[f"vs_best/{m.name}"]
    worse, as_good = diff.p_holm < alpha and diff.difference < 0, ni.p_holm < alpha
    if worse:
        return "worse, within the margin" if as_good else "worse"
    if diff.p_holm < alpha and diff.difference > 0:
        return "better"
    return "as good" if as_good else "inconclusive"

"""The comparison: every choice on the validation fold, then every test the report reports, computed once.

`analyse` returns a frozen StudyResult: the choices (best model, best per window, best recurrent model per window,
the order of label families), each model's intervals and verdict, and the hypotheses in named groups (the table's
verdicts against the best; the published choice, recurrence, depth, label families and context in the answer).
The report only renders it. Choices use the mean validation macro-AUROC over seeds; the test fold only reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import Params
from ..metrics import TESTED, interval
from .results import PRIMARY, Key, Model
from .statistics import Figure, Hypothesis, Replicates, contrast, holm, make_test

Interval = tuple[float, float]


@dataclass(frozen=True)
class ContextTests:
    """Does the value of recurrence grow from the shortest window to the longest?"""

    figures: dict[
        str, Hypothesis
    ]  # the interaction (best recurrent - CNN at long) - (... at short), per figure
    families: dict[str, Hypothesis]  # the same, per label family (mean per-class AUROC)
    reference: Hypothesis | None  # the same for one fixed architecture, study.reference
    cnn: Hypothesis  # the CNN at long against short
    recurrent: Hypothesis  # the best recurrent model at long against short


@dataclass(frozen=True)
class StudyResult:
    params: Params
    models: dict[Key, Model]
    windows: list[float]
    best: Key
    best_per_window: dict[float, Key]
    best_recurrent: dict[float, Key]
    label_families: dict[str, list[int]]  # label family -> indices of its classes scored on the test fold
    family_order: list[str]  # ranked on validation by the gain from recurrence
    intervals: dict[Key, dict[str, Interval]]  # each model's 95% interval per tested figure
    verdicts: dict[Key, str]  # against the best, on macro-AUROC, after Holm
    vs_best: dict[Key, Hypothesis]  # the table's group: difference from the best ...
    noninf: dict[Key, Hypothesis]  # ... and non-inferiority within study.margins.macro_auroc
    reference: dict[float, dict[str, Hypothesis]]  # window -> figure -> the published choice against the best
    recurrence: dict[float, dict[str, Hypothesis]]  # window -> figure -> best recurrent model against the CNN
    depth: dict[float, dict[str, Hypothesis]]  # window -> recurrent type -> deepest stack against one layer
    label_gain: dict[float, dict[str, Hypothesis]]  # window -> label family -> best recurrent against the CNN
    context: ContextTests | None
    tests: list[Hypothesis] = field(default_factory=list)  # all of them, in the order they were stated

    def interval(self, key: Key, figure: str) -> Interval:
        return self.intervals[key][figure]


class _Tests:
    """Collects hypotheses as they are stated, so that Holm runs once over each group."""

    def __init__(self):
        self.all: list[Hypothesis] = []

    def add(
        self, name, kind, figure: Figure, a: str, b: str, terms, group="answer", margin=0.0
    ) -> Hypothesis:
        test = make_test(name, kind, figure, a, b, contrast(terms, figure), group, margin)
        self.all.append(test)
        return test

    def diff(self, name, a: Model, b: Model, figure, kind="difference", margin=0.0, group="answer"):
        return self.add(name, kind, figure, a.name, b.name, [(1.0, a), (-1.0, b)], group, margin)


def label_families(models: dict[Key, Model]) -> dict[str, list[int]]:
    """Label family -> indices of its classes scored on the test fold."""
    m = next(iter(models.values()))
    scored = np.isfinite(m.class_auroc[0]).all(axis=0)
    fam: dict[str, list[int]] = {}
    for i, f in enumerate(m.per_class["family"]):
        if scored[i]:
            fam.setdefault(str(f), []).append(i)
    return fam


def _choices(models: dict[Key, Model], windows: list[float]):
    best = max(models, key=lambda k: models[k].val)
    per_window, recurrent = {}, {}
    for w in windows:
        in_window = [k for k in models if k[1] == w]
        per_window[w] = max(in_window, key=lambda k: models[k].val)
        rnn = [k for k in in_window if k[0] != "cnn"]
        if rnn:
            recurrent[w] = max(rnn, key=lambda k: models[k].val)
    return best, per_window, recurrent


def _depth_tests(tests: _Tests, models: dict[Key, Model], windows: list[float]) -> dict:
    """Per window and recurrent type: the deepest stack against one layer."""
    out: dict[float, dict[str, Hypothesis]] = {}
    for w in windows:
        for kind in sorted({m.rnn_type for k, m in models.items() if k[1] == w and m.depth}):
            stack = sorted(
                (m for k, m in models.items() if k[1] == w and m.rnn_type == kind), key=lambda m: m.depth
            )
            if len(stack) >= 2:
                out.setdefault(w, {})[kind] = tests.diff(f"depth/{w:g}/{kind}", stack[-1], stack[0], PRIMARY)
    return out


def _label_gain_tests(tests: _Tests, models, best_recurrent, fams) -> tuple[dict, list[str]]:
    """Where recurrence helps, per window and label family; families ranked by their gain on validation."""
    out: dict[float, dict[str, Hypothesis]] = {}
    val_gain = {}
    for f, idx in fams.items():
        gains = []
        for w, key in best_recurrent.items():
            if ("cnn", w) in models:
                rnn, cnn = models[key], models[("cnn", w)]
                out.setdefault(w, {})[f] = tests.add(
                    f"family/{w:g}/{f}",
                    "difference",
                    ("classes", idx),
                    rnn.name,
                    cnn.name,
                    [(1.0, rnn), (-1.0, cnn)],
                )
                gains.append(np.nanmean(rnn.val_class_auroc[idx] - cnn.val_class_auroc[idx]))
        val_gain[f] = float(np.mean(gains)) if gains else 0.0
    return out, sorted(fams, key=lambda f: -val_gain[f])


def _context_tests(tests: _Tests, models, windows, best_recurrent, fams, ref_arch) -> ContextTests | None:
    """Does the value of recurrence grow from the shortest to the longest window? For the best recurrent model at
    each window (which may be two architectures) and for one fixed architecture, the reference."""
    short, long = windows[0], windows[-1]
    if (
        short == long
        or not {short, long} <= set(best_recurrent)
        or not {("cnn", short), ("cnn", long)} <= set(models)
    ):
        return None
    r_s, c_s = models[best_recurrent[short]], models[("cnn", short)]
    r_l, c_l = models[best_recurrent[long]], models[("cnn", long)]
    interaction = [(1.0, r_l), (-1.0, c_l), (-1.0, r_s), (1.0, c_s)]
    a, b = f"{r_l.name} - {c_l.name}", f"{r_s.name} - {c_s.name}"
    figures = {fig: tests.add(f"context/{fig}", "difference", fig, a, b, interaction) for fig in TESTED}
    families = {
        f: tests.add(
            f"context_family/{f}",
            "difference",
            ("classes", idx),
            f"{f} @ {long:g} s",
            f"{f} @ {short:g} s",
            interaction,
        )
        for f, idx in fams.items()
    }
    reference = None
    ref_s, ref_l = models.get((ref_arch, short)), models.get((ref_arch, long))
    if ref_s is not None and ref_l is not None and ref_arch != "cnn":
        reference = tests.add(
            "context_reference",
            "difference",
            PRIMARY,
            f"{ref_l.name} - {c_l.name}",
            f"{ref_s.name} - {c_s.name}",
            [(1.0, ref_l), (-1.0, c_l), (-1.0, ref_s), (1.0, c_s)],
        )
    return ContextTests(
        figures,
        families,
        reference,
        tests.diff("context_cnn", c_l, c_s, PRIMARY),
        tests.diff("context_recurrent", r_l, r_s, PRIMARY),
    )


def verdict(key: Key, best: Key, diff: Hypothesis | None, ni: Hypothesis | None, alpha: float) -> str:
    """How a model stands against the best (chosen on validation) on macro-AUROC, after Holm."""
    if key == best:
        return "best"
    worse, as_good = diff.p_holm < alpha and diff.difference < 0, ni.p_holm < alpha
    if worse:
        return "worse, within the margin" if as_good else "worse"
    if diff.p_holm < alpha and diff.difference > 0:
        return "better"
    return "as good" if as_good else "inconclusive"


def analyse(models: dict[Key, Model], params: Params) -> StudyResult:
    """Make every choice on validation, then state and Holm-correct every test the report reports."""
    windows = sorted({k[1] for k in models})
    best_key, per_window, best_recurrent = _choices(models, windows)
    best, ref_arch, margin = models[best_key], params.study.reference, params.study.margins.macro_auroc
    tests = _Tests()
    # The table's group: every model against the best on the primary figure, different? as good?
    vs_best, noninf = {}, {}
    for key, m in models.items():
        if key != best_key:
            vs_best[key] = tests.diff(f"vs_best/{m.name}", m, best, PRIMARY, group="table")
            noninf[key] = tests.diff(f"noninf/{m.name}", m, best, PRIMARY, "non-inferiority", margin, "table")
    # The answer's group. The published choice against the best, on every headline figure:
    reference = {}
    for w in windows:
        ref = models.get((ref_arch, w))
        if ref is not None and ref.key != best_key:
            reference[w] = {fig: tests.diff(f"reference/{w:g}/{fig}", ref, best, fig) for fig in TESTED}
    # Recurrence at all, per window: the best recurrent model (chosen on validation) against the CNN.
    recurrence = {
        w: {
            fig: tests.diff(f"recurrence/{w:g}/{fig}", models[key], models[("cnn", w)], fig) for fig in TESTED
        }
        for w, key in best_recurrent.items()
        if ("cnn", w) in models
    }
    depth = _depth_tests(tests, models, windows)
    fams = label_families(models)
    label_gain, family_order = _label_gain_tests(tests, models, best_recurrent, fams)
    context = _context_tests(tests, models, windows, best_recurrent, fams, ref_arch)
    holm(tests.all)
    reps = Replicates(models, params.evaluate.bootstrap_seed)
    intervals = {k: {f: interval(reps.figure(m, f)) for f in TESTED} for k, m in models.items()}
    alpha = params.study.alpha
    verdicts = {k: verdict(k, best_key, vs_best.get(k), noninf.get(k), alpha) for k in models}
    return StudyResult(
        params,
        models,
        windows,
        best_key,
        per_window,
        best_recurrent,
        fams,
        family_order,
        intervals,
        verdicts,
        vs_best,
        noninf,
        reference,
        recurrence,
        depth,
        label_gain,
        context,
        tests.all,
    )

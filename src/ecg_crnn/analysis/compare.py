"""The comparison: the study's questions, stated before the run (study.hypotheses in params.yaml), each answered
once, within one family-wise error rate over everything the answer says.

- Choices (the best model, the best recurrent model per window, the order of label families) use the SELECTION
  seeds' validation figures only (study.selection_seeds: the first seeds of train.seeds). Every contrast that
  depends on a choice is formed on the CONFIRMATION seeds, whose weights took no part in it (selection). A contrast
  fixed in advance (the reference's depth, one architecture's context) uses every seed.
- A contrast's estimate, standard error and interval: contrasts (patient part corrected for rare classes, seed
  part on a t reference, intervals kept inside the figure's range).
- Each hypothesis holds the tests its question needs (difference; non-inferiority; equivalence within
  study.margins), worded by decisions: "better", "worse", "equivalent within M", "non-inferior within M", or
  "inconclusive: this study can resolve differences of X or more". Never "no difference".
- Multiplicity: one graphical procedure (multiplicity) over all of them: the primary questions share
  study.hypotheses.primary_share of alpha; the secondary groups the rest, in their stated order, and an
  established group passes its share on (gatekeeping).
- The primary endpoint: macro-AUROC over the classes with at least study.hypotheses.primary_classes test patients
  on each side (rare classes' AUROC rests on a handful of patients and would swamp every contrast); the 23-class
  figure is reported beside it and tested among the secondary questions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import Params
from ..metrics import LOWER_IS_BETTER, TESTED
from ..registry import RNN_TYPES, get_architecture
from .contrasts import Estimate, Interval, SeedRuns, estimate
from .decisions import Claim, Verdict, decide
from .overfitting import gap_estimate, seed_values
from .power import Components, SeedPlan, minimal_detectable_effect, plan_seeds, power
from .results import PRIMARY, Key, Model
from .rotation import pool_folds
from .selection import SeedSplit, choose, split_seeds

ENDPOINT = "primary"  # the primary endpoint's figure name: macro-AUROC over the well-estimated classes


@dataclass(frozen=True)
class Hypothesis:
    """One claim the answer may make: a contrast a - b (oriented: positive means a is better), its tests and
    their verdict at the level the procedure reached."""

    name: str  # e.g. "recurrence/10", unique
    group: str  # the question it answers ("recurrence", "depth", ...)
    figure: str  # "primary", "macro_auroc", ..., "class:NORM", "family:MI"
    a: str
    b: str
    seeds: str  # "confirmation" (it depends on a choice) or "all"
    estimate: Estimate
    margin: float
    tests: tuple[str, ...]
    weight: float  # its initial share of alpha
    verdict: Verdict | None = None

    @property
    def difference(self) -> float:
        return self.estimate.point

    @property
    def interval(self) -> Interval:
        return self.estimate.interval(0.95)


@dataclass(frozen=True)
class PowerRow:
    """For a primary hypothesis: what the study could resolve at the level it was first tested at."""

    name: str
    level: float
    power_at_margin: float
    mde: float  # at 80 % power
    plan: SeedPlan  # the seeds (or test folds, at this run's seeds) that would resolve the margin


@dataclass(frozen=True)
class ModelFigure:
    """One model's figure over all its seeds: the seed mean, the seed-to-seed SD and the 95% interval."""

    point: float
    seed_sd: float
    interval: Interval


@dataclass(frozen=True)
class StudyResult:
    params: Params
    models: dict[Key, Model]
    windows: list[float]
    selection: tuple[int, ...]  # seeds whose validation figures made every choice
    confirmation: tuple[int, ...]  # seeds whose test figures confirm it
    primary_classes: list[str]  # the classes of the primary endpoint
    best: Key
    best_per_window: dict[float, Key]
    best_recurrent: dict[float, Key]
    label_families: dict[str, list[int]]  # label family -> indices of its classes scored on the test fold
    family_order: list[str]  # ranked on the selection seeds' validation by the gain from recurrence
    figures: dict[
        Key, dict[str, ModelFigure]
    ]  # each model's figures ("primary" and the tested ones), all seeds
    hypotheses: dict[str, Hypothesis]  # by name, in the order they were stated
    power: list[PowerRow] = field(default_factory=list)
    rotations: dict[int, dict[Key, Model]] = field(default_factory=dict)  # every rotation's models
    curves: dict[float, dict[Key, ModelFigure]] = field(
        default_factory=dict
    )  # share -> model -> primary figure
    gaps: dict[Key, dict[str, ModelFigure]] = field(default_factory=dict)  # model -> gap_kept, gap_last, fall
    # the chosen models' (best, best per window, best recurrent) figures on the confirmation seeds only
    confirmed: dict[Key, dict[str, ModelFigure]] = field(default_factory=dict)

    def headline(self, key: Key, figure: str) -> ModelFigure:
        """A chosen model's figure on the confirmation seeds (the selection seeds chose it on validation, and their
        seed quality carries over to the test fold: with them its figure would be flattered); any other
        model's on every seed."""
        return self.confirmed.get(key, self.figures[key])[figure]

    def interval(self, key: Key, figure: str) -> tuple[float, float]:
        i = self.figures[key][figure].interval
        return i.lo, i.hi

    def point(self, key: Key, figure: str) -> float:
        return self.figures[key][figure].point

    def group(self, name: str) -> list[Hypothesis]:
        return [h for h in self.hypotheses.values() if h.group == name]

    def get(self, name: str) -> Hypothesis | None:
        return self.hypotheses.get(name)

    @property
    def order(self) -> list[str]:
        h = self.params.study.hypotheses
        return [*h.primary, *h.secondary]

    def is_primary(self, h: Hypothesis) -> bool:
        return h.group in self.params.study.hypotheses.primary

    def verdict_against_best(self, key: Key) -> str:
        h = self.hypotheses.get(f"adequacy/{self.models[key].name}")
        return "best" if key == self.best else (h.verdict.wording if h and h.verdict else "not tested")


# ---- each model's seeds, as the statistics take them ------------------------------------------------------


class _Runs:
    """SeedRuns per (model, figure, seeds, rotation), built once (a model in several terms of a contrast is one
    model). With several rotations of the folds, every estimate is formed per rotation (each its own test patients
    and seeds) and pooled (rotation.pool_folds)."""

    def __init__(self, by_rotation: dict[int, dict[Key, Model]], primary: list[int]):
        self.by_rotation, self.primary, self.cache = by_rotation, primary, {}
        m = self.first
        self.scored = [int(i) for i in np.flatnonzero(self._scored_everywhere())]
        self.names = list(m.per_class["class"])

    @property
    def first(self) -> Model:
        return next(iter(next(iter(self.by_rotation.values())).values()))

    def _scored_everywhere(self) -> np.ndarray:
        """Classes scored on every rotation's test fold with at least 2 patients on each side: with one, the
        bootstrap sees no variance at all (rare_classes), so the class is left out of the macro figures' tests."""
        models = [m for ms in self.by_rotation.values() for m in ms.values()]
        return np.logical_and.reduce(
            [np.isfinite(m.class_auroc[0]).all(axis=0) & (m.minority_patients >= 2) for m in models]
        )

    def classes(self, figure: str) -> list[int] | None:
        """The class indices of a macro figure given per class; None for an aggregate figure."""
        if figure == ENDPOINT:
            return self.primary
        if figure in ("macro_auroc", "macro_auprc"):
            return self.scored
        if figure.startswith("class:"):
            return [self.names.index(figure[6:])]
        if figure.startswith("family:"):
            fam = figure[7:]
            return [i for i in self.scored if str(self.first.per_class["family"].iloc[i]) == fam]
        if figure.startswith(ROBUST):  # robustness figures are on the primary endpoint's classes
            return self.primary
        return None

    def get(self, key: Key, figure: str, seeds: tuple[int, ...], rotation: int) -> SeedRuns:
        k = (key, figure, seeds, rotation)
        if k not in self.cache:
            m, idx = self.by_rotation[rotation][key], self.classes(figure)
            order = [m.seeds.index(s) for s in seeds]
            val = m.runs["val_macro_auroc"].to_numpy(float)[order]
            if figure.startswith(ROBUST):
                points, resamples = _robust(m, figure, order, idx)
            elif idx is None:
                points, resamples = m.runs[figure].to_numpy(float)[order], m.resampled[figure][order]
            else:
                auprc = figure == "macro_auprc"
                points = (m.seed_class_auprc if auprc else m.seed_class_auroc)[np.ix_(order, idx)]
                resamples = (m.class_auprc if auprc else m.class_auroc)[order][:, :, idx]
            self.cache[k] = SeedRuns(seeds, points, resamples, val)
        return self.cache[k]

    def minority(self, figure: str, rotation: int) -> np.ndarray | None:
        idx = self.classes(figure)
        m = next(iter(self.by_rotation[rotation].values()))
        return None if idx is None else m.minority_patients[idx]

    def estimate(self, terms, figure: str, seeds: tuple[int, ...]) -> Estimate:
        """sum w * figure over `terms` [(w, key)], on `seeds`, pooled over the rotations."""
        bounds = (-1.0, 1.0) if figure.startswith("drop:") else (0.0, 1.0)
        per_rotation = [
            estimate([(w, self.get(k, figure, seeds, r)) for w, k in terms], self.minority(figure, r), bounds)
            for r in self.by_rotation
        ]
        return pool_folds(per_rotation)


ROBUST = ("curve:", "drop:")  # figures of the robustness stage: "curve:gaussian", "drop:gaussian"


def _robust(m: Model, figure: str, order: list[int], idx: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """A corruption's robustness figure per seed and resample on the given classes: "curve": the mean per-class AUROC
    over its severities (the area under its robustness curve, per severity step); "drop": that minus the clean
    per-class AUROC (how much the corruption costs; negative is a loss)."""
    kind, corruption = figure.split(":", 1)
    rob = m.robustness
    conds = rob.conditions_of(corruption)
    points = np.mean([rob.seed_class_auroc[c][np.ix_(order, idx)] for c in conds], axis=0)
    resamples = np.mean([rob.class_auroc[c][order][:, :, idx] for c in conds], axis=0)
    if kind == "drop":
        points = points - m.seed_class_auroc[np.ix_(order, idx)]
        resamples = resamples - m.class_auroc[order][:, :, idx]
    return points, resamples


def contrast(
    by_rotation: dict[int, dict], terms, figure: str, seeds: tuple[int, ...], primary=None
) -> Estimate:
    """One contrast sum w * figure over `terms` [(w, key)] of the models in `by_rotation` ({rotation: {key: Model}}),
    on `seeds`, pooled over rotations; `primary`: the classes of per-class figures (default: every testable one)."""
    runs = _Runs(by_rotation, [])
    runs.primary = primary if primary is not None else runs.scored
    return runs.estimate(terms, figure, tuple(seeds))


def primary_classes(models: list[Model], at_least: int) -> list[int]:
    """Indices of the classes with at least `at_least` test patients on each side in every rotation's test fold;
    every testable class (2 patients on each side) when fewer than two qualify (a tiny test fold: the report says
    so)."""
    scored = np.logical_and.reduce(
        [np.isfinite(m.class_auroc[0]).all(axis=0) & (m.minority_patients >= 2) for m in models]
    )
    enough = np.logical_and.reduce([m.minority_patients >= at_least for m in models])
    ok = [int(i) for i in np.flatnonzero(scored & enough)]
    return ok if len(ok) >= 2 else [int(i) for i in np.flatnonzero(scored)]


def seed_split(params: Params) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(selection, confirmation) seeds; with study.selection_seeds 0 every seed does both (a demonstration
    setting: choices then reuse the seeds that confirm them, and the report says so)."""
    seeds, n = tuple(params.train.seeds), params.study.selection_seeds
    if n == 0:
        return seeds, seeds
    split = split_seeds(
        seeds, n
    )  # the split the selection simulation checks (tests/test_statistics_simulation.py)
    return split.selection, split.confirmation


# ---- the choices, on the selection seeds' validation figures ---------------------------------------------


def _choices(by_rotation: dict[int, dict[Key, Model]], windows: list[float], selection: tuple[int, ...]):
    """The best model, the best per window and the best recurrent model per window, each by selection.choose
    (the rule the selection simulation checks) on the selection seeds' validation macro-AUROC, averaged over the
    rotations (one choice for all of them)."""
    models = next(iter(by_rotation.values()))
    k = len(selection)
    runs = {
        key: SeedRuns(
            tuple(selection),
            np.zeros(k),
            np.zeros((k, 1)),
            val=np.array([np.mean([ms[key].val_of([s]) for ms in by_rotation.values()]) for s in selection]),
        )
        for key in models
    }
    split = SeedSplit(tuple(selection), ())
    best = choose(runs, list(models), split)
    per_window, recurrent = {}, {}
    for w in windows:
        in_window = [key for key in models if key[1] == w]
        per_window[w] = choose(runs, in_window, split)
        rnn = [key for key in in_window if key[0] != "cnn"]
        if rnn:
            recurrent[w] = choose(runs, rnn, split)
    return best, per_window, recurrent


def label_families(models: dict[Key, Model]) -> dict[str, list[int]]:
    m = next(iter(models.values()))
    scored = np.isfinite(m.class_auroc[0]).all(axis=0)
    fam: dict[str, list[int]] = {}
    for i, f in enumerate(m.per_class["family"]):
        if scored[i]:
            fam.setdefault(str(f), []).append(i)
    return fam


def _family_order(by_rotation, best_recurrent, fams, selection) -> list[str]:
    """Label families ranked by the gain from recurrence on the selection seeds' validation fold."""
    gain = {}
    for f, idx in fams.items():
        values = []
        for w, key in best_recurrent.items():
            for models in by_rotation.values():
                if ("cnn", w) not in models:
                    continue
                rnn, cnn = models[key], models[("cnn", w)]
                r = rnn.val_class_auroc[[rnn.seeds.index(s) for s in selection]][:, idx]
                c = cnn.val_class_auroc[[cnn.seeds.index(s) for s in selection]][:, idx]
                values.append(np.nanmean(r) - np.nanmean(c))
        gain[f] = float(np.mean(values)) if values else 0.0
    return sorted(fams, key=lambda f: -gain[f])


# ---- the hypotheses ----------------------------------------------------------------------------------------


class _Builder:
    """States the hypotheses of each question, in the order they are named in params.yaml."""

    def __init__(self, st: dict, runs: _Runs, params: Params, curves: _Runs | None = None):
        self.st, self.runs, self.params, self.curves = st, runs, params, curves
        self.out: list[Hypothesis] = []

    def margin(self, figure: str) -> float:
        m = self.params.study.margins
        if figure == ENDPOINT or figure.startswith("family:"):
            return m.macro_auroc
        if figure.startswith("class:"):
            return m.class_auroc
        if figure.startswith(ROBUST) or figure.startswith("gap"):
            return m.macro_auroc
        return getattr(m, figure)

    def add(self, name, group, figure, terms, seeds_kind, tests, a, b, runs: _Runs | None = None, est=None):
        seeds = self.st["confirmation"] if seeds_kind == "confirmation" else tuple(self.params.train.seeds)
        est = est if est is not None else (runs or self.runs).estimate(terms, figure, seeds)
        if figure in LOWER_IS_BETTER:
            est = est.negated()
        h = Hypothesis(name, group, figure, a, b, seeds_kind, est, self.margin(figure), tuple(tests), 0.0)
        self.out.append(h)
        return h


def _name(key: Key) -> str:
    return f"{key[0]} @ {key[1]:g} s"


DIFF_EQUIV = ("difference", "equivalence")
DIFF_NONINF = ("difference", "noninferiority")


def _recurrence(b: _Builder, models, st) -> None:
    for w, key in st["best_recurrent"].items():
        if ("cnn", w) in models:
            terms = [(1.0, key), (-1.0, ("cnn", w))]
            b.add(
                f"recurrence/{w:g}",
                "recurrence",
                ENDPOINT,
                terms,
                "confirmation",
                DIFF_EQUIV,
                _name(key),
                _name(("cnn", w)),
            )


def _depth(b: _Builder, models, st, kinds: list[str], group: str) -> None:
    for w in st["windows"]:
        for kind in kinds:
            stack = {m.depth: k for k, m in models.items() if k[1] == w and m.rnn_type == kind}
            for layers in sorted(stack):
                if layers != 1 and 1 in stack:
                    terms = [(1.0, stack[layers]), (-1.0, stack[1])]
                    name = f"{group}/{w:g}/{kind}/{layers}"
                    b.add(
                        name, group, ENDPOINT, terms, "all", DIFF_EQUIV, _name(stack[layers]), _name(stack[1])
                    )


def _published_choice(b: _Builder, models, st, figures: list[str], group: str) -> None:
    """The reference against the best model at the same window (so the window is not confounded)."""
    ref = b.params.study.reference
    for w in st["windows"]:
        key, best = (ref, w), st["best_per_window"][w]
        if key in models and key != best:
            for fig in figures:
                name = f"{group}/{w:g}" + ("" if fig == ENDPOINT else f"/{fig}")
                terms = [(1.0, key), (-1.0, best)]
                b.add(name, group, fig, terms, "confirmation", DIFF_NONINF, _name(key), _name(best))


def _context(b: _Builder, models, st) -> None:
    short, long = st["windows"][0], st["windows"][-1]
    rec = st["best_recurrent"]
    if short == long or not {short, long} <= set(rec) or not {("cnn", short), ("cnn", long)} <= set(models):
        return
    terms = [(1.0, rec[long]), (-1.0, ("cnn", long)), (-1.0, rec[short]), (1.0, ("cnn", short))]
    a, z = f"{_name(rec[long])} - cnn", f"{_name(rec[short])} - cnn"
    b.add("context/best", "context", ENDPOINT, terms, "confirmation", DIFF_EQUIV, a, z)
    ref = b.params.study.reference
    if ref != "cnn" and {(ref, short), (ref, long)} <= set(models):
        terms = [(1.0, (ref, long)), (-1.0, ("cnn", long)), (-1.0, (ref, short)), (1.0, ("cnn", short))]
        a, z = f"{_name((ref, long))} - cnn", f"{_name((ref, short))} - cnn"
        b.add("context/reference", "context", ENDPOINT, terms, "all", DIFF_EQUIV, a, z)


def _per_label(b: _Builder, models, st, group: str) -> None:
    """Best recurrent model against the CNN per label family ("label_families") or per class ("classes")."""
    names = b.runs.names
    for w, key in st["best_recurrent"].items():
        if ("cnn", w) not in models:
            continue
        terms = [(1.0, key), (-1.0, ("cnn", w))]
        if group == "label_families":  # a family with no testable class in some rotation has nothing to test
            labels = [(f"family:{f}", f) for f in st["family_order"] if b.runs.classes(f"family:{f}")]
        else:
            labels = [(f"class:{names[i]}", names[i]) for i in b.runs.scored]
        for figure, label in labels:
            b.add(
                f"{group}/{w:g}/{label}",
                group,
                figure,
                terms,
                "confirmation",
                DIFF_EQUIV,
                _name(key),
                _name(("cnn", w)),
            )


def _robustness(b: _Builder, models, st) -> None:
    """Does recurrence, or depth, change what each corruption costs? Per window and corruption: the drop of the best
    recurrent model against the CNN's (confirmation seeds), and of the reference's deepest stack against one layer
    (every seed)."""
    if any(m.robustness is None for m in models.values()):
        return
    ref = get_architecture(b.params.study.reference)
    corruptions = next(iter(models.values())).robustness.corruptions
    for w in st["windows"]:
        rec = st["best_recurrent"].get(w)
        stack = sorted(
            (m for k, m in models.items() if k[1] == w and m.rnn_type == ref.rnn_type), key=lambda m: m.depth
        )
        for c in corruptions:
            fig = f"drop:{c}"
            if rec is not None and ("cnn", w) in models:
                terms = [(1.0, rec), (-1.0, ("cnn", w))]
                b.add(
                    f"robustness/{w:g}/{c}/recurrence",
                    "robustness",
                    fig,
                    terms,
                    "confirmation",
                    DIFF_EQUIV,
                    _name(rec),
                    _name(("cnn", w)),
                )
            if len(stack) >= 2 and stack[0].depth == 1:
                terms = [(1.0, stack[-1].key), (-1.0, stack[0].key)]
                b.add(
                    f"robustness/{w:g}/{c}/depth",
                    "robustness",
                    fig,
                    terms,
                    "all",
                    DIFF_EQUIV,
                    stack[-1].name,
                    stack[0].name,
                )


def _learning_curves(b: _Builder, models, st) -> None:
    """Does the gap between architectures change with the share of training data? Per window: (the reference's
    deepest stack minus one layer at the smallest share) minus (the same at the largest), and the same for the
    reference against the CNN; fixed in advance, every seed. Negative: the deeper (or recurrent) model falls further
    behind with less data."""
    if b.curves is None:
        return
    lo, hi = min(st["fractions"]), max(st["fractions"])
    ref = get_architecture(b.params.study.reference)
    for w in st["windows"]:
        stack = sorted(
            (m for k, m in models.items() if k[1] == w and m.rnn_type == ref.rnn_type), key=lambda m: m.depth
        )
        pairs = []
        if len(stack) >= 2 and stack[0].depth == 1:
            pairs.append(("depth", stack[-1].arch, stack[0].arch))
        if ref.name != "cnn" and ("cnn", w) in models and (ref.name, w) in models:
            pairs.append(("recurrence", ref.name, "cnn"))
        for kind, a, z in pairs:
            terms = [(1.0, (a, w, lo)), (-1.0, (z, w, lo)), (-1.0, (a, w, hi)), (1.0, (z, w, hi))]
            b.add(
                f"learning_curves/{w:g}/{kind}",
                "learning_curves",
                ENDPOINT,
                terms,
                "all",
                DIFF_EQUIV,
                f"{a} - {z} @ {w:g} s, {lo:g} of the data",
                f"the same with {hi:g}",
                runs=b.curves,
            )


def _overfitting(b: _Builder, models, st) -> None:
    """Does the generalization gap grow with depth? Per window and recurrent type: the deepest stack's gap at its
    kept epoch minus one layer's, every seed (fixed in advance)."""
    seeds = tuple(b.params.train.seeds)
    rotations = list(b.runs.by_rotation.values())
    for w in st["windows"]:
        for kind in RNN_TYPES:
            stack = sorted(
                (m for k, m in models.items() if k[1] == w and m.rnn_type == kind), key=lambda m: m.depth
            )
            if len(stack) < 2 or stack[0].depth != 1:
                continue
            deep, one = stack[-1].key, stack[0].key
            terms = [(1.0, [ms[deep] for ms in rotations]), (-1.0, [ms[one] for ms in rotations])]
            est = gap_estimate(terms, "gap_kept", seeds)
            if np.isfinite(est.point):
                name = f"overfitting/{w:g}/{kind}"
                b.add(
                    name, "overfitting", "gap_kept", None, "all", DIFF_EQUIV, _name(deep), _name(one), est=est
                )


def _adequacy(b: _Builder, models, st) -> None:
    """Every model against the best: is it non-inferior within the margin? (the smallest such model is named)."""
    for key in models:
        if key != st["best"]:
            terms = [(1.0, key), (-1.0, st["best"])]
            b.add(
                f"adequacy/{_name(key)}",
                "adequacy",
                ENDPOINT,
                terms,
                "confirmation",
                DIFF_NONINF,
                _name(key),
                _name(st["best"]),
            )


def _state(question: str, b: _Builder, models, st) -> None:
    ref_type = get_architecture(b.params.study.reference).rnn_type
    if question == "recurrence":
        _recurrence(b, models, st)
    elif question == "reference_depth":
        _depth(b, models, st, [ref_type] if ref_type != "none" else [], "reference_depth")
    elif question == "depth":
        _depth(b, models, st, [t for t in RNN_TYPES if t != ref_type], "depth")
    elif question == "published_choice":
        _published_choice(b, models, st, [ENDPOINT], "published_choice")
    elif question == "published_figures":
        _published_choice(b, models, st, list(TESTED), "published_figures")
    elif question == "context":
        _context(b, models, st)
    elif question in ("label_families", "classes"):
        _per_label(b, models, st, question)
    elif question == "adequacy":
        _adequacy(b, models, st)
    elif question == "robustness":
        _robustness(b, models, st)
    elif question == "learning_curves":
        _learning_curves(b, models, st)
    elif question == "overfitting":
        _overfitting(b, models, st)


# ---- multiplicity and power ------------------------------------------------------------------------------


def _weights(hyps: list[Hypothesis], params: Params) -> list[float]:
    """The primary questions share primary_share of alpha equally; each secondary group an equal part of the
    rest, equally among its hypotheses (with no secondary question, the primary ones take all of it)."""
    h = params.study.hypotheses
    prim = [x for x in hyps if x.group in h.primary]
    groups = [g for g in h.secondary if any(x.group == g for x in hyps)]
    share = h.primary_share if groups else 1.0
    out = []
    for x in hyps:
        if x.group in h.primary:
            out.append(share / len(prim))
        else:
            n = sum(1 for y in hyps if y.group == x.group)
            out.append((1.0 - share) / len(groups) / n)
    return out


def _tested(hyps: list[Hypothesis], params: Params) -> list[Hypothesis]:
    """Every hypothesis with its verdict: one graphical procedure, the primary questions as one group first, then
    each secondary question in its order."""
    if not hyps:
        return []
    h = params.study.hypotheses
    weights = _weights(hyps, params)
    tier = {g: "primary" for g in h.primary}
    claims = [
        Claim(x.name, tier.get(x.group, x.group), x.estimate, x.margin, x.tests, w)
        for x, w in zip(hyps, weights, strict=True)
    ]
    order = [g for g in ["primary", *h.secondary] if any(c.group == g for c in claims)]
    verdicts = decide(claims, order, params.study.alpha)
    return [
        Hypothesis(**{**x.__dict__, "weight": w, "verdict": verdicts[x.name]})
        for x, w in zip(hyps, weights, strict=True)
    ]


def _power(hyps: list[Hypothesis], params: Params) -> list[PowerRow]:
    rows = []
    for x in hyps:
        if x.group in params.study.hypotheses.primary:
            level, est = params.study.alpha * x.weight, x.estimate
            pilot = max(p.n_seeds for p in est.seed_parts)
            plan = plan_seeds(Components.from_estimate(est), x.margin, level, seeds_per_fold=pilot)
            rows.append(
                PowerRow(
                    x.name,
                    level,
                    power(x.margin, est.se, est.df, level) if est.se > 0 else 1.0,
                    minimal_detectable_effect(est.se, est.df, level),
                    plan,
                )
            )
    return rows


def _curve_runs(fractions: dict, primary: list[int]) -> _Runs:
    """One _Runs over every share of the data: models keyed (arch, window, share), so contrasts can span shares
    (the same test fold and resamples for all: paired)."""
    rotations = next(iter(fractions.values())).keys()
    combined = {r: {(*k, f): m for f, by in fractions.items() for k, m in by[r].items()} for r in rotations}
    return _Runs(combined, primary)


def _curve_figures(curves: _Runs, fractions: dict, seeds: tuple[int, ...]) -> dict:
    keys = next(iter(curves.by_rotation.values()))
    out: dict[float, dict[Key, ModelFigure]] = {}
    for a, w, f in keys:
        out.setdefault(f, {})[(a, w)] = _figure(curves, (a, w, f), ENDPOINT, seeds)
    return dict(sorted(out.items()))


def _gap_figures(by_rotation, seeds) -> dict:
    out = {}
    for k in next(iter(by_rotation.values())):
        row = {}
        for f in ("gap_kept", "gap_last", "fall"):
            est = gap_estimate([(1.0, [ms[k] for ms in by_rotation.values()])], f, seeds)
            sds = [seed_values(ms[k], f, seeds).std(ddof=1) for ms in by_rotation.values()]
            row[f] = ModelFigure(est.point, float(np.mean(sds)), est.interval())
        out[k] = row
    return out


def _robust_figures(m: Model) -> list[str]:
    return (
        []
        if m.robustness is None
        else [f"{k}:{c}" for c in m.robustness.corruptions for k in ("curve", "drop")]
    )


def _confirmed(runs: _Runs, chosen: set[Key], confirmation, seeds) -> dict[Key, dict[str, ModelFigure]]:
    """The chosen models' figures on the confirmation seeds; none when every seed both chose and confirms."""
    if tuple(confirmation) == tuple(seeds):
        return {}
    return {k: {f: _figure(runs, k, f, tuple(confirmation)) for f in (ENDPOINT, *TESTED)} for k in chosen}


def _figure(runs: _Runs, key: Key, figure: str, seeds: tuple[int, ...]) -> ModelFigure:
    est = runs.estimate([(1.0, key)], figure, seeds)
    sds = [runs.get(key, figure, seeds, r).figure().std(ddof=1) for r in runs.by_rotation]
    return ModelFigure(est.point, float(np.mean(sds)), est.interval())


def analyse(models, params: Params, fractions: dict | None = None) -> StudyResult:
    """Make every choice on the selection seeds' validation, then state, test and size every hypothesis.
    `models`: {rotation: {(arch, window): Model}} at one share of the training data, or {(arch, window): Model}
    for a single rotation. `fractions`: {share: {rotation: {(arch, window): Model}}} for every share of
    study.train_fractions, when there are several (the learning curves)."""
    by_rotation = models if isinstance(next(iter(models)), int) else {0: models}
    first_models = next(iter(by_rotation.values()))
    windows = sorted({k[1] for k in first_models})
    selection, confirmation = seed_split(params)
    best, per_window, best_recurrent = _choices(by_rotation, windows, selection)
    every = [m for ms in by_rotation.values() for m in ms.values()]
    primary = primary_classes(every, params.study.hypotheses.primary_classes)
    fams = label_families(first_models)
    st = {
        "windows": windows,
        "best": best,
        "best_per_window": per_window,
        "best_recurrent": best_recurrent,
        "confirmation": confirmation,
        "family_order": _family_order(by_rotation, best_recurrent, fams, selection),
        "fractions": sorted(fractions or []),
    }
    runs = _Runs(by_rotation, primary)
    curves = _curve_runs(fractions, primary) if fractions and len(fractions) > 1 else None
    builder = _Builder(st, runs, params, curves)
    for question in [*params.study.hypotheses.primary, *params.study.hypotheses.secondary]:
        _state(question, builder, first_models, st)
    hyps = _tested(builder.out, params)
    seeds = tuple(params.train.seeds)
    figures = {
        k: {f: _figure(runs, k, f, seeds) for f in (ENDPOINT, *TESTED, *_robust_figures(m))}
        for k, m in first_models.items()
    }
    confirmed = _confirmed(runs, {best, *per_window.values(), *best_recurrent.values()}, confirmation, seeds)
    return StudyResult(
        params,
        first_models,
        windows,
        selection,
        confirmation,
        [runs.names[i] for i in primary],
        best,
        per_window,
        best_recurrent,
        fams,
        st["family_order"],
        figures,
        {x.name: x for x in hyps},
        _power(hyps, params),
        by_rotation,
        _curve_figures(curves, fractions, seeds) if curves else {},
        _gap_figures(by_rotation, seeds),
        confirmed,
    )


__all__ = [
    "ENDPOINT",
    "PRIMARY",
    "Hypothesis",
    "PowerRow",
    "StudyResult",
    "analyse",
    "primary_classes",
    "seed_split",
]


def sized(st: StudyResult, target: float | None = None, confidence: float = 0.8) -> list[PowerRow]:
    """The primary hypotheses sized for a target difference (default: each one's margin) from this run, taken as a
    pilot: the seeds per model, or the test folds at this run's seeds, that resolve it at 80% power."""
    rows = []
    for r in st.power:
        h = st.hypotheses[r.name]
        pilot = max(p.n_seeds for p in h.estimate.seed_parts)
        plan = plan_seeds(
            Components.from_estimate(h.estimate),
            target or h.margin,
            r.level,
            confidence=confidence,
            seeds_per_fold=pilot,
        )
        rows.append(PowerRow(r.name, r.level, r.power_at_margin, r.mde, plan))
    return rows

"""What the report says in words: what the study rests on, its design (the questions stated before the run), its
caveats, and the answer. Every sentence is computed from the analysis' result and names the question it answers;
"no difference" is never said: a claim of no effect is an equivalence within a stated margin, otherwise the
sentence says what the study could have resolved."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..analysis.compare import ENDPOINT, Hypothesis, StudyResult
from ..markup import md_escape
from ..metrics import TESTED
from ..redaction import redact
from ..registry import RNN_TYPES
from ..schedule import schedule_epochs
from .format import NAMES, ci_headline, fig, kilo, plural, signed
from .palette import LABELS
from .published import published_sentence

SMALL_TEST_FOLD = 1000  # records: below this, intervals are wide and rare classes have a handful of positives
SMALL_BUDGET = 20  # epochs
FEW_PATIENTS = 3  # positive test patients: a class's AUROC then rests on almost nothing
QUESTIONS = {
    "recurrence": "does recurrence help at all (the best recurrent model against the CNN alone), per window",
    "reference_depth": "do deeper stacks of the reference's type help (2 and 3 layers against 1), per window",
    "published_choice": "is the published choice (study.reference) non-inferior to the best model at its window",
    "depth": "the same depth question for the other recurrent types",
    "published_figures": "the published choice against the best on every published figure",
    "context": "does the value of recurrence grow from the shortest window to the longest",
    "label_families": "where recurrence helps, per label family",
    "adequacy": "which models are non-inferior to the best (the smallest adequate model)",
    "classes": "where recurrence helps, per class",
    "robustness": "does recurrence, or depth, change what each corruption costs",
    "learning_curves": "does the gap between architectures change with the share of training data",
    "overfitting": "does the generalization gap grow with depth",
}


@dataclass
class RunInfo:
    """What the report rests on, beyond the evaluations: the data and the recipe."""

    source: str
    task: str
    sampling_rate: int
    split_records: dict[str, int]
    class_count: int
    # (architecture, window) -> the recipe its models trained with (recipe.yaml's entry, or the shared default);
    # empty: every model with params.yaml's shared default
    recipes: dict = field(default_factory=dict)


def seeds_text(seeds) -> str:
    return ", ".join(map(str, seeds))


# ---- what the report rests on ---------------------------------------------------------------------------


def _data_lines(st: StudyResult, info: RunInfo) -> list[str]:
    m0 = next(iter(st.models.values()))
    pc = m0.per_class
    absent = [md_escape(c) for c in pc.loc[pc["test_positives"] == 0, "class"]]  # names come from the data
    patients = pc["test_positive_patients"] if "test_positive_patients" in pc else pc["test_positives"]
    few = [
        (md_escape(c), int(n)) for c, n in zip(pc["class"], patients, strict=True) if 0 < n <= FEW_PATIENTS
    ]
    few_text = (
        f" {FEW_PATIENTS} or fewer positive test patients (their AUROC rests on a handful of patients): "
        + ", ".join(f"{c} ({n})" for c, n in few)
        + "."
        if few
        else ""
    )
    return [
        f"- **Data**: {md_escape(redact(info.source))}, {info.sampling_rate} Hz, task {md_escape(info.task)} "
        f"({info.class_count} classes); "
        f"records per split: train {info.split_records.get('train', 0):,}, validation "
        f"{info.split_records.get('val', 0):,}, test {info.split_records.get('test', 0):,} "
        f"({int(m0.runs.iloc[0]['test_patients']):,} patients).",
        f"- **Classes without a positive in the test fold** (left out of macro-AUROC and macro-AUPRC): "
        f"{', '.join(absent) if absent else 'none'}." + few_text,
    ]


def _optimizer_text(st: StudyResult, info: RunInfo) -> str:
    """What the models trained with: the shared default, or each (architecture, window)'s tuned recipe."""
    p = st.params
    recipes = [info.recipes[k] for k in st.models if k in info.recipes]
    tuned = [r for r in recipes if r.tuned]
    shared = f"peak learning rate {p.train.lr:g}, dropout {p.models.dropout:g}, weight decay {p.train.weight_decay:g}"
    if not tuned:
        return (
            f"AdamW at {shared} for every architecture (params.yaml's shared default; recipe.yaml tunes none)"
        )

    def span(values) -> str:
        lo, hi = min(values), max(values)
        return f"{lo:.3g}" if lo == hi else f"{lo:.3g}-{hi:.3g}"

    rest = len(st.models) - len(tuned)
    return (
        f"AdamW with each architecture's and window's own recipe, tuned on the validation fold with the same budget "
        f"for each (recipe.yaml; {len(tuned)} of {len(st.models)} models): peak learning rate "
        f"{span([r.lr for r in tuned])}, dropout {span([r.dropout for r in tuned])}, weight decay "
        f"{span([r.weight_decay for r in tuned])}, per model in the study table"
        + (f"; the other {rest} at the shared default ({shared})" if rest else "")
    )


def _recipe_lines(st: StudyResult, info: RunInfo) -> list[str]:
    p = st.params
    sizes = [m.cost.get("params") for m in st.models.values() if m.cost.get("params")]
    warm, cool = schedule_epochs(p.train)
    warmup_text = f"warm-up {plural(warm, 'epoch')}, then " if warm else "no warm-up, "
    stopping = (
        f"started early when the validation macro-AUROC has not improved for {p.train.patience} epochs "
        "after the warm-up; "
        if p.train.patience
        else "no early stopping; "
    )
    lines = []
    if sizes:
        lines.append(
            f"- **Grid**: {plural(len(p.study.architectures), 'architecture')} x "
            f"{plural(len(st.windows), 'window length')} ({', '.join(f'{w:g} s' for w in st.windows)}) x "
            f"{plural(len(p.train.seeds), 'seed')} ({seeds_text(p.train.seeds)}); models of {kilo(min(sizes))} "
            f"to {kilo(max(sizes))} parameters (CNN channels {p.models.channels}, {p.models.hidden} recurrent "
            "units per direction)."
        )
    lines.append(
        f"- **Recipe**: a budget of {p.train.epochs} epochs for every run; {_optimizer_text(st, info)}; "
        f"{warmup_text}constant, then a {cool}-epoch cosine cool-down to zero, "
        + stopping
        + "the weights of the best validation epoch are kept (see the schedule plot). Training crops and "
        "test-time windows differ between window lengths (random crops and the aggregate of several windows at "
        "2.5 s; the whole record once at 10 s): the context question is therefore a difference of differences "
        "(recurrent minus CNN at the long window, minus the same at the short one), in which whatever a window's "
        "crops and aggregation do to both architectures alike cancels."
    )
    return lines


def _design_lines(st: StudyResult) -> list[str]:
    p, h = st.params, st.params.study.hypotheses
    separate = st.selection != st.confirmation
    m0 = next(iter(st.models.values()))
    scored = np.isfinite(m0.class_auroc[0]).all(axis=0)
    untestable = [
        md_escape(c)
        for c, n, ok in zip(m0.per_class["class"], m0.minority_patients, scored, strict=True)
        if ok and n < 2
    ]
    choice = (
        f"every choice (the best model, the best recurrent model per window, the order of label families) is "
        f"made on the validation fold of the selection seeds ({seeds_text(st.selection)}) and confirmed on the "
        f"test fold by the confirmation seeds ({seeds_text(st.confirmation)}), whose weights took no part in it"
        if separate
        else "study.selection_seeds is 0: choices are made on the same seeds that confirm them, so the confirmed "
        "figures of chosen models are optimistic (a demonstration setting)"
    )
    primary = ", ".join(map(md_escape, st.primary_classes))
    return [
        f"- **Questions, stated before the run** (params.yaml `study.hypotheses`; every sentence below names its "
        f"question): primary: {'; '.join(QUESTIONS[q] for q in h.primary)}. Secondary, in this order: "
        f"{'; '.join(QUESTIONS[q] for q in h.secondary) or 'none'}. One graphical procedure keeps the family-wise "
        f"error rate at alpha = {p.study.alpha:g} over everything this report claims: the primary questions share "
        f"{h.primary_share:.0%} of alpha, the secondary ones the rest in their order, and a question whose "
        "hypotheses are all established passes its share on.",
        (
            f"- **Primary endpoint**: macro-AUROC over the {len(st.primary_classes)} classes with at least "
            f"{h.primary_classes} test patients on each side ({primary}): a rare class's AUROC rests on a handful "
            "of patients and would swamp every contrast."
            if not _fallback(st)
            else f"- **Primary endpoint**: fewer than two classes have {h.primary_classes} test patients on each "
            f"side, so it falls back to the macro-AUROC over every class with at least 2 ({primary})."
        )
        + " The macro-AUROC over every scored class, the figure published work reports, stands beside it."
        + (
            f" Classes with a single test patient on one side have no interval and are left out of the tests: "
            f"{', '.join(untestable)}."
            if untestable
            else ""
        ),
        f"- **Seeds**: {choice}; contrasts fixed in advance (the reference's depth, one architecture's context) "
        "use every seed.",
        "- **Statistics**: a model's figure is the mean over its seeds; its 95% interval and every contrast's "
        "add the patient part (the test fold's shared patient resamples, so comparisons are paired, with each "
        "class's bootstrap variance corrected for its few patients and the rarest floored) and the seed part, on "
        "Student's t with Welch-Satterthwaite degrees of freedom, kept inside the figure's range. Margins "
        "(`study.margins`): "
        + ", ".join(f"{getattr(p.study.margins, f):g} {NAMES[f]}" for f in TESTED)
        + f", {p.study.margins.class_auroc:g} per-class AUROC. 'Equivalent within M' and 'non-inferior within M' "
        "are tests (two one-sided tests, one-sided); 'inconclusive: resolves X or more' names the smallest "
        "difference the study would find with 80% power at the level the hypothesis was tested at.",
    ]


def header(st: StudyResult, info: RunInfo) -> list[str]:
    return [*_data_lines(st, info), *_recipe_lines(st, info), *_design_lines(st)]


# ---- caveats ----------------------------------------------------------------------------------------------


def _still_rising(h, epochs: int, window: int = 3) -> bool:
    """The validation curve was still rising when the cool-down began (or the best epoch is the budget's last)."""
    if not len(h):
        return False
    best = int(h.loc[h["val_macro_auroc"].idxmax(), "epoch"])
    if best == len(h) == epochs:
        return True
    peak = h["lr"].max()
    decaying = h.index[(h["lr"] < peak * (1 - 1e-9)) & (h["epoch"] > h.loc[h["lr"].idxmax(), "epoch"])]
    if not len(decaying):
        return False
    start = h.index.get_loc(decaying[0])  # the first epoch of the cool-down
    before = h["val_macro_auroc"].iloc[max(0, start - window) : start + 1].to_numpy()
    return len(before) > 1 and bool(np.all(np.diff(before) > 0))


def _unconverged(st: StudyResult) -> list[str]:
    runs = [
        f"{m.name} seed {s}"
        for m in st.models.values()
        for s, h in m.histories.items()
        if _still_rising(h, st.params.train.epochs)
    ]
    if not runs:
        return []
    more = f" and {len(runs) - 6} more (the table's best/last epoch column)" if len(runs) > 6 else ""
    return [
        f"{plural(len(runs), 'run')} may be under-trained: the validation figure was still rising when the "
        f"cool-down began, or peaked at the budget's last epoch: {', '.join(runs[:6])}{more}."
    ]


def warnings(st: StudyResult, info: RunInfo) -> list[str]:
    p = st.params
    out = []
    test_n = info.split_records.get("test", 0)
    if test_n < SMALL_TEST_FOLD:
        out.append(
            f"The test fold has only {test_n:,} records: intervals are wide and rare classes rest on a handful "
            "of positives."
        )
    if p.train.epochs < SMALL_BUDGET:
        out.append(
            f"A budget of {p.train.epochs} epochs is short: deeper recurrent stacks converge more slowly."
        )
    if len(st.confirmation) < 3:
        out.append(
            f"Only {plural(len(st.confirmation), 'confirmation seed')}: seed-to-seed variation is barely measured."
        )
    rotated = [r for r in p.segment.rotations if r != 0]
    if rotated and any(r.tuned for r in info.recipes.values()):
        out.append(
            f"The recipes were tuned on the configured split; rotation {', '.join(map(str, rotated))} shifts the "
            "folds, so its test fold holds patients the tuning trained or chose on: for the recipe's choice its "
            "figures are not out of sample (rotation 0's are)."
        )
    if st.selection == st.confirmation:
        out.append(
            "Choices reuse the seeds that confirm them (study.selection_seeds: 0): chosen models look better."
        )
    if _fallback(st):
        out.append(
            f"Fewer than two classes have {p.study.hypotheses.primary_classes} test patients on each side: the "
            "primary endpoint falls back to every scored class."
        )
    out += _unconverged(st)
    clipped = [
        f"{m.name} {NAMES[f]}"
        for m in st.models.values()
        for f in TESTED
        if st.figures[m.key][f].interval.clipped
    ]
    if clipped:
        out.append(
            "Intervals that reach a figure's bound (clipped there; the normal approximation is strained): "
            + ", ".join(clipped[:8])
            + (f" and {len(clipped) - 8} more" if len(clipped) > 8 else "")
            + "."
        )
    kept = float(next(iter(st.models.values())).runs.iloc[0].get("bootstrap_acceptance", 1.0))
    if kept < 0.9:
        out.append(
            f"Only {kept:.0%} of the patient resamples kept every scored class (rare classes with a handful of "
            "patients): the intervals are conditional on keeping them."
        )
    if out:
        small = test_n < SMALL_TEST_FOLD or p.train.epochs < SMALL_BUDGET
        out.insert(
            0, "**This run is too small or too short to support conclusions**:" if small else "**Caveats**:"
        )
    return out


def _fallback(st: StudyResult) -> bool:
    m = next(iter(st.models.values()))
    return int((m.minority_patients >= st.params.study.hypotheses.primary_classes).sum()) < 2


# ---- the answer ------------------------------------------------------------------------------------------


def stated(h: Hypothesis) -> str:
    i = h.interval
    what = "primary macro-AUROC" if h.figure == ENDPOINT else NAMES.get(h.figure, h.figure)
    # the interval is the usual 95% one; the verdict beside it was tested at the hypothesis' own level, which is
    # stricter, so an interval that excludes 0 may sit next to "inconclusive": say both
    level = f"; tested at level {h.verdict.level:.2g}" if h.verdict.level > 0 else ""
    return f"{what} {signed(h.difference)}, 95% CI [{signed(i.lo)}, {signed(i.hi)}]{level}"


def said(h: Hypothesis) -> str:
    """The verdict with its numbers and the question it belongs to."""
    return f"**{h.verdict.wording}** ({stated(h)}; [{h.group}])"


def _best(st: StudyResult) -> list[str]:
    best = st.models[st.best]
    sd = st.headline(st.best, ENDPOINT).seed_sd
    seeds = (
        f"mean of the {plural(len(st.confirmation), 'confirmation seed')} ({seeds_text(st.confirmation)}), SD {sd:.4f}"
        if st.confirmed
        else f"mean of {plural(len(best.seeds), 'seed')}, SD {sd:.4f}; the same seeds chose it"
    )
    return [
        f"- **Best model** (chosen on the validation fold of seeds {seeds_text(st.selection)}): **{best.name}**, "
        f"primary macro-AUROC {ci_headline(st, best, ENDPOINT)} ({seeds}), "
        f"macro-AUROC over every scored class {ci_headline(st, best, 'macro_auroc')}; "
        f"{kilo(best.cost.get('params', 0))} parameters."
    ]


def _recurrence(st: StudyResult) -> list[str]:
    out = []
    for h in st.group("recurrence"):
        w = h.name.split("/")[1]
        out.append(
            f"- **Recurrence at all**, {w} s: {h.a} (the best recurrent model) against {h.b}: {said(h)}."
        )
    return out


def _depth(st: StudyResult, group: str) -> list[str]:
    out = []
    by_type: dict[tuple[str, str], list[Hypothesis]] = {}
    for h in st.group(group):
        _, w, kind, _layers = h.name.split("/")
        by_type.setdefault((w, kind), []).append(h)
    for (w, kind), hs in sorted(by_type.items(), key=lambda kv: (float(kv[0][0]), RNN_TYPES.index(kv[0][1]))):
        parts = []
        for h in hs:
            layers = h.name.split("/")[-1]
            a, b = st.models[_key(st, h.a)], st.models[_key(st, h.b)]
            ratio = a.cost.get("params", np.nan) / b.cost.get("params", np.nan)
            parts.append(f"{layers} layers instead of 1 ({ratio:.1f}x the parameters): {said(h)}")
        out.append(f"- **{LABELS[kind]} depth**, {w} s: " + "; ".join(parts) + ".")
    return out


def _key(st: StudyResult, name: str):
    return next(k for k, m in st.models.items() if m.name == name)


def _published_choice(st: StudyResult) -> list[str]:
    out = []
    ref = st.params.study.reference
    for w in st.windows:
        key = (ref, w)
        if key == st.best_per_window.get(w):
            out.append(
                f"- **The published choice** {st.models[key].name} is the model chosen as best at {w:g} s."
            )
            continue
        h = st.get(f"published_choice/{w:g}")
        if h is not None:
            out.append(f"- **The published choice** {h.a} against the best at {w:g} s ({h.b}): {said(h)}.")
        others = [st.get(f"published_figures/{w:g}/{f}") for f in TESTED]
        others = [x for x in others if x is not None and x.verdict is not None]
        if others:
            out.append(
                f"- Its published figures against the best, {w:g} s: "
                + "; ".join(f"{NAMES[x.figure]} {x.verdict.wording} ({signed(x.difference)})" for x in others)
                + " [published_figures]."
            )
    return out


def _context(st: StudyResult) -> list[str]:
    out = []
    for h in st.group("context"):
        which = (
            "the best recurrent model"
            if h.name.endswith("best")
            else f"the reference {st.params.study.reference}"
        )
        out.append(
            f"- **What context adds** ({which}): the gain over the CNN at {st.windows[-1]:g} s minus the gain at "
            f"{st.windows[0]:g} s ({h.a} against {h.b}): {said(h)}."
        )
    return out


def _per_label(st: StudyResult, group: str, title: str) -> list[str]:
    out = []
    for w in st.windows:
        hs = [h for h in st.group(group) if h.name.split("/")[1] == f"{w:g}"]
        if not hs:
            continue
        kinds: dict[str, list[str]] = {}
        for h in hs:
            label = md_escape(h.name.split("/", 2)[2])  # a class or family name: from the data
            v = h.verdict.wording
            kind = v if not v.startswith("inconclusive") else "inconclusive"
            kinds.setdefault(kind, []).append(f"{label} {signed(h.difference)}")
        parts = [f"{k}: {', '.join(v)}" for k, v in kinds.items()]
        out.append(
            f"- **{title}**, {w:g} s (best recurrent model minus the CNN; [{group}]): "
            + "; ".join(parts)
            + "."
        )
    return out


def _smallest_adequate(st: StudyResult) -> list[str]:
    hs = st.group("adequacy")
    if not hs:
        return []
    margin = st.params.study.margins.macro_auroc
    best = st.models[st.best]
    adequate = [h for h in hs if h.verdict.noninferior]
    smaller = [
        h
        for h in adequate
        if st.models[_key(st, h.a)].cost.get("params", np.inf) < best.cost.get("params", 0)
    ]
    inconclusive = [h for h in hs if h.verdict.wording.startswith("inconclusive")]
    # each model counted once: non-inferior (some of them also measurably worse, but within the margin), worse
    # beyond the margin, inconclusive
    within = sum(h.verdict.worse for h in adequate)
    tally = (
        f"{len(adequate)} of {len(hs)} other models shown non-inferior within {margin:g}"
        + (f" ({within} of them worse, but within it)" if within else "")
        + f", {sum(h.verdict.worse and not h.verdict.noninferior for h in hs)} worse beyond it, "
        f"{len(inconclusive)} inconclusive"
    )
    if smaller:
        s = min(smaller, key=lambda h: st.models[_key(st, h.a)].cost.get("params", np.inf))
        m = st.models[_key(st, s.a)]
        return [
            f"- **Smallest model non-inferior to the best** within {margin:g} primary macro-AUROC: **{m.name}**, "
            f"{kilo(m.cost.get('params', 0))} parameters against the best's {kilo(best.cost.get('params', 0))} "
            f"({stated(s)}; [adequacy]). Of the others: {tally}."
        ]
    # what the inconclusive contrasts could resolve, as a range (the best-resolved one alone would flatter the rest)
    mdes = [h.verdict.mde for h in inconclusive if np.isfinite(h.verdict.mde) and h.verdict.mde > 0]
    span = "" if not mdes else fig(min(mdes)) if len(mdes) == 1 else f"{fig(min(mdes))} to {fig(max(mdes))}"
    return [
        f"- **No model smaller than the best is shown non-inferior** within {margin:g} primary macro-AUROC "
        f"([adequacy]; {tally}"
        + (f"; these contrasts resolve differences of {span} or more" if span else "")
        + ")."
    ]


def answer(st: StudyResult) -> list[str]:
    return [
        *_best(st),
        *_recurrence(st),
        *_depth(st, "reference_depth"),
        *_published_choice(st),
        *_depth(st, "depth"),
        *_context(st),
        *_per_label(st, "label_families", "Where recurrence helps, by label family"),
        *_smallest_adequate(st),
        *_per_label(st, "classes", "Where recurrence helps, by class"),
        *published_sentence(st),
    ]

"""What the report says in words: what the study rests on, its caveats, and the answer. Every sentence is
computed from the analysis' result; nothing is fixed in advance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..analysis.compare import StudyResult
from ..analysis.results import PRIMARY
from ..markup import md_escape
from ..metrics import TESTED
from ..redaction import redact
from ..registry import RNN_TYPES
from ..schedule import schedule_epochs
from .format import NAMES, ci, kilo, p_value, plural, signed, with_interval
from .palette import LABELS
from .published import published_sentence

SMALL_TEST_FOLD = 1000  # records: below this, intervals are wide and rare classes have a handful of positives
SMALL_BUDGET = 20  # epochs


@dataclass
class RunInfo:
    """What the report rests on, beyond the evaluations: the data and the recipe."""

    source: str
    task: str
    sampling_rate: int
    split_records: dict[str, int]
    class_count: int


# ---- what the report rests on ---------------------------------------------------------------------------


def _data_lines(st: StudyResult, info: RunInfo) -> list[str]:
    m0 = next(iter(st.models.values()))
    pc = m0.per_class
    absent = [md_escape(c) for c in pc.loc[pc["test_positives"] == 0, "class"]]
    few = pc.loc[(pc["test_positives"] > 0) & (pc["test_positives"] < 5), ["class", "test_positives"]]
    few_text = (
        " Fewer than 5 test positives: "
        + ", ".join(f"{md_escape(c)} ({int(n)})" for c, n in few.itertuples(index=False))
        + "."
        if len(few)
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


def _recipe_lines(st: StudyResult) -> list[str]:
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
    grid = (
        f"- **Grid**: {plural(len(p.study.architectures), 'architecture')} x "
        f"{plural(len(st.windows), 'window length')} ({', '.join(f'{w:g} s' for w in st.windows)}) x "
        f"{plural(len(p.train.seeds), 'seed')} ({', '.join(map(str, p.train.seeds))}); "
        f"models of {kilo(min(sizes))} to {kilo(max(sizes))} parameters (CNN channels {p.models.channels}, "
        f"{p.models.hidden} recurrent units per direction)."
    )
    recipe = (
        f"- **Recipe**: a budget of {p.train.epochs} epochs for every run; AdamW at peak learning rate "
        f"{p.train.lr:g}, {warmup_text}constant, then a {cool}-epoch cosine cool-down to zero, "
        + stopping
        + "the weights of the best validation epoch are kept (see the schedule plot)."
    )
    return ([grid] if sizes else []) + [recipe]


def _statistics_line(st: StudyResult) -> str:
    p = st.params
    runs = next(iter(st.models.values())).runs.iloc[0]
    return (
        f"- **Statistics**: every choice on the validation fold (fold {', '.join(map(str, p.segment.val_folds))}; "
        "it also served early stopping and the thresholds, so its figures are optimistic); the test fold "
        f"({', '.join(map(str, p.segment.test_folds))}) only reports. A model's figure is the mean over its seeds; "
        f"its 95% interval comes from {int(runs['bootstrap_resamples']):,} hierarchical bootstrap replicates "
        "(test patients resampled, shared by all models, then seeds drawn with replacement, variance-corrected); "
        f"{runs.get('bootstrap_acceptance', 1.0):.0%} of the patient draws kept a positive and a negative of every "
        "scored class (the others were redrawn, so intervals are conditional on that class set). Macro-AUROC and "
        "macro-AUPRC average over the scored classes, the thresholded figures over all. Comparisons: paired "
        "contrasts whose standard error adds the patient part and each model's seed variance over its "
        f"{plural(len(p.train.seeds), 'seed')}, against Student's t with Welch-Satterthwaite degrees of freedom; "
        f"Holm-adjusted at alpha = {p.study.alpha:g} within two stated families: the answer's "
        f"{plural(sum(t.group == 'answer' for t in st.tests), 'test')}, and the table's verdicts against the best "
        f"({plural(sum(t.group == 'table' for t in st.tests), 'test')}). Intervals of differences are unadjusted. "
        '"As good as the best": non-inferior within '
        + ", ".join(f"{getattr(p.study.margins, f):g} {NAMES[f]}" for f in TESTED)
        + " (macro-AUROC for the table's verdicts)."
    )


def header(st: StudyResult, info: RunInfo) -> list[str]:
    return [*_data_lines(st, info), *_recipe_lines(st), _statistics_line(st)]


def _unconverged(st: StudyResult) -> list[str]:
    epochs = st.params.train.epochs
    runs = [
        f"{m.name} seed {s}"
        for m in st.models.values()
        for s, h in m.histories.items()
        if len(h) and int(h.loc[h["val_macro_auroc"].idxmax(), "epoch"]) == len(h) == epochs
    ]
    if not runs:
        return []
    more = f" and {len(runs) - 6} more (the table's best/last epoch column)" if len(runs) > 6 else ""
    return [
        f"{plural(len(runs), 'run')} reached the best validation score at the budget's last epoch "
        f"and may be under-trained: {', '.join(runs[:6])}{more}."
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
    if len(p.train.seeds) < 3:
        out.append(f"Only {plural(len(p.train.seeds), 'seed')}: seed-to-seed variation is barely measured.")
    out += _unconverged(st)
    outside = [
        f"{m.name} {NAMES[f]}"
        for m in st.models.values()
        for f in TESTED
        if not st.interval(m.key, f)[0] <= m.point(f) <= st.interval(m.key, f)[1]
    ]
    if outside:
        out.append(f"A point estimate lies outside its interval (a skewed statistic): {', '.join(outside)}.")
    kept = float(next(iter(st.models.values())).runs.iloc[0].get("bootstrap_acceptance", 1.0))
    if kept < 0.8:
        out.append(
            f"Only {kept:.0%} of the patient resamples kept every scored class (rare classes with a handful of "
            "patients): the intervals are conditional on keeping them and may be too narrow."
        )
    if out:
        out.insert(
            0,
            "**This run is too small or too short to support conclusions**:"
            if test_n < SMALL_TEST_FOLD or p.train.epochs < SMALL_BUDGET
            else "**Caveats**:",
        )
    return out


# ---- the answer ------------------------------------------------------------------------------------------


def _significant(st: StudyResult, t) -> bool:
    return t.p_holm < st.params.study.alpha


def _trend(
    st, t, up: str = "gains", down: str = "loses", flat: str = "shows no significant difference"
) -> str:
    if not _significant(st, t):
        return flat
    return up if t.difference > 0 else down


def _stated(t) -> str:
    return f"{with_interval(t)}, Holm {p_value(t.p_holm)}"


def _best_and_smallest(st: StudyResult) -> list[str]:
    p, best = st.params, st.models[st.best]
    lines = [
        f"- **Best model** (chosen on the validation fold): **{best.name}**, test macro-AUROC "
        f"{ci(st, best, PRIMARY)} (mean of {plural(len(best.seeds), 'seed')}, SD {best.seed_sd(PRIMARY):.4f}), "
        f"{kilo(best.cost.get('params', 0))} parameters."
    ]
    verdicts = st.verdicts
    good = [k for k, v in verdicts.items() if v in ("best", "as good", "better")]
    smallest = min(good, key=lambda k: st.models[k].cost.get("params", np.inf))
    counts = {
        v: sum(1 for x in verdicts.values() if x == v)
        for v in ("as good", "worse", "worse, within the margin", "inconclusive", "better")
    }
    tally = (
        f"{counts['as good']} as good, {counts['worse'] + counts['worse, within the margin']} worse, "
        f"{counts['inconclusive']} inconclusive"
        + (f", {counts['better']} better than the validation choice" if counts["better"] else "")
    )
    s = st.models[smallest]
    if smallest == st.best:
        lines.append(
            f"- **Smallest model as good as the best**: the best itself; no smaller model is shown non-inferior "
            f"within {p.study.margins.macro_auroc:g} macro-AUROC (of the others: {tally})."
        )
    else:
        lines.append(
            f"- **Smallest model as good as the best** (non-inferior within {p.study.margins.macro_auroc:g} "
            f"macro-AUROC after Holm; the smallest of those the test fold shows non-inferior): **{s.name}**, "
            f"{ci(st, s, PRIMARY)}, {kilo(s.cost.get('params', 0))} parameters. Of the other models: {tally}."
        )
    return lines


_VERDICT_WORDS = {
    "as good": "is as good as the best",
    "worse": "is worse than the best",
    "worse, within the margin": "is worse than the best, though within the margin",
    "better": "is better than the validation choice",
    "inconclusive": "is neither shown as good as nor worse than the best",
}


def _published_choice(st: StudyResult) -> list[str]:
    lines = []
    for w in st.windows:
        ref = st.models.get((st.params.study.reference, w))
        if ref is None:
            continue
        v = st.verdicts[ref.key]
        if v == "best":
            lines.append(
                f"- **The published choice** {ref.name}: {ci(st, ref, PRIMARY)}; it is the best model."
            )
            continue
        others = "; ".join(f"{NAMES[f]} {_stated(st.reference[w][f])}" for f in TESTED if f != PRIMARY)
        lines.append(
            f"- **The published choice** {ref.name}: {ci(st, ref, PRIMARY)}; it {_VERDICT_WORDS[v]} "
            f"(macro-AUROC {_stated(st.vs_best[ref.key])}). Its other figures against the best: {others}."
        )
    return lines


def _recurrence_and_depth(st: StudyResult) -> list[str]:
    lines = []
    for w, key in st.best_recurrent.items():
        t = st.recurrence.get(w, {}).get(PRIMARY)
        if t is not None:
            lines.append(
                f"- **Recurrence at all**, {w:g} s: the best recurrent model ({key[0]}, chosen on validation) "
                f"{_trend(st, t, 'beats', 'trails', 'shows no significant difference from')} the CNN alone: "
                f"macro-AUROC {_stated(t)}."
            )
    for w in st.windows:
        for kind, t in sorted(st.depth.get(w, {}).items(), key=lambda kv: RNN_TYPES.index(kv[0])):
            stack = sorted(
                (m for k, m in st.models.items() if k[1] == w and m.rnn_type == kind), key=lambda m: m.depth
            )
            ratio = stack[-1].cost.get("params", np.nan) / stack[0].cost.get("params", np.nan)
            lines.append(
                f"- **{LABELS[kind]} depth**, {w:g} s: {stack[-1].depth} layers instead of {stack[0].depth} "
                f"{_trend(st, t)} (macro-AUROC {_stated(t)}) for {ratio:.1f}x the parameters."
            )
    return lines


def _context(st: StudyResult) -> list[str]:
    c = st.context
    if c is None:
        return []
    p, t = st.params, c.figures[PRIMARY]
    short, long = st.windows[0], st.windows[-1]
    r_s, r_l = st.best_recurrent[short][0], st.best_recurrent[long][0]
    same = "" if r_s == r_l else f" ({r_s} at {short:g} s, {r_l} at {long:g} s: two architectures)"
    lines = [
        f"- **What context adds**: from {short:g} s to {long:g} s, the value of recurrence (the best recurrent "
        f"model{same} minus the CNN) {_trend(st, t, 'grows', 'shrinks', 'shows no significant change')}: "
        f"macro-AUROC {_stated(t)}. The CNN alone {_trend(st, c.cnn)} ({_stated(c.cnn)}); the best recurrent "
        f"model {_trend(st, c.recurrent)} ({_stated(c.recurrent)})."
    ]
    if c.reference is not None:
        lines.append(
            f"- For one architecture throughout, the reference {p.study.reference}: its gain over the CNN "
            f"{_trend(st, c.reference, 'grows', 'shrinks', 'shows no significant change')} with context "
            f"({_stated(c.reference)})."
        )
    fam = {md_escape(f): c.families[f] for f in st.family_order}  # family names come from the data
    grows = [f for f, t in fam.items() if _significant(st, t) and t.difference > 0]
    shrinks = [f for f, t in fam.items() if _significant(st, t) and t.difference < 0]
    tail = f"; it shrinks for {', '.join(shrinks)}." if shrinks else "."
    if grows:
        lines.append(
            f"- The gain from recurrence grows with context for the {', '.join(f'**{f}**' for f in grows)} "
            f"{'family' if len(grows) == 1 else 'families'} ("
            + "; ".join(f"{f} {_stated(fam[f])}" for f in grows)
            + ")"
            + tail
        )
    else:
        lines.append("- No label family's gain from recurrence grows significantly with context" + tail)
    return lines


def _where_recurrence_helps(st: StudyResult) -> list[str]:
    lines = []
    for w in st.best_recurrent:
        tests = {md_escape(f): st.label_gain[w][f] for f in st.family_order if f in st.label_gain.get(w, {})}
        if not tests:
            continue
        parts = [f"{f} {signed(t.difference)}{'*' if _significant(st, t) else ''}" for f, t in tests.items()]
        helped = [f for f, t in tests.items() if _significant(st, t) and t.difference > 0]
        hurt = [f for f, t in tests.items() if _significant(st, t) and t.difference < 0]
        verdict_text = (f"It helps {', '.join(helped)}" if helped else "It helps no family significantly") + (
            f"; it hurts {', '.join(hurt)}." if hurt else "."
        )
        lines.append(
            f"- **Where recurrence helps**, {w:g} s (mean per-class AUROC gain of {st.best_recurrent[w][0]} over the "
            f"CNN; families ranked on validation; * significant after Holm): {', '.join(parts)}. {verdict_text}"
        )
    return lines


def answer(st: StudyResult) -> list[str]:
    return [
        *_best_and_smallest(st),
        *_published_choice(st),
        *_recurrence_and_depth(st),
        *_context(st),
        *_where_recurrence_helps(st),
        *published_sentence(st),
    ]

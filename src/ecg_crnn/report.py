"""The study report: what it rests on, the answer in sentences, the tables, and the published figures beside
this run's. Every sentence is computed from the analysis (compare.analyse); nothing is fixed in advance.

report.md is the one source; report.html is rendered from it with raw HTML disabled, so a class or lead
name taken from a CSV reaches the page escaped.
"""

from __future__ import annotations

import base64
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_dir, write_json
from .compare import PRIMARY, Model, Study, verdict
from .metrics import LOWER_IS_BETTER, TESTED
from .plots import LABELS, PLOTS

NAMES = {
    "macro_auroc": "macro-AUROC",
    "macro_auprc": "macro-AUPRC",
    "micro_f1": "micro-F1",
    "subset_accuracy": "subset accuracy",
    "hamming_loss": "Hamming loss",
}
# Jafari & Jafari (2026, arXiv 2601.18830), their best model, CNN + 1 BiLSTM, PTB-XL subdiagnostic test fold.
PUBLISHED = {"hamming_loss": 0.0338, "macro_auprc": 0.4715, "micro_f1": 0.6979, "subset_accuracy": 0.5723}
PUBLISHED_SOURCE = "Jafari & Jafari (2026, arXiv 2601.18830), CNN + 1 BiLSTM"
# The classes those figures are over: PTB-XL's 23 diagnostic subclasses. Against another class set (a synthetic
# set, another task, a subset that lost classes) "beaten" would mean nothing, so the report then says so instead.
PUBLISHED_CLASSES = frozenset(
    [
        "AMI",
        "CLBBB",
        "CRBBB",
        "ILBBB",
        "IMI",
        "IRBBB",
        "ISCA",
        "ISCI",
        "ISC_",
        "IVCD",
        "LAFB/LPFB",
        "LAO/LAE",
        "LMI",
        "LVH",
        "NORM",
        "NST_",
        "PMI",
        "RAO/RAE",
        "RVH",
        "SEHYP",
        "STTC",
        "WPW",
        "_AVB",
    ]
)
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


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def _md_cell(value) -> str:
    return str(value).replace("|", "\\|")


def _fig(v: float) -> str:
    return f"{v:.4f}" if abs(v) < 0.1 else f"{v:.3f}"


def ci(st: Study, m: Model, figure: str) -> str:
    lo, hi = st.interval(m, figure)
    return f"{_fig(m.point(figure))} [{_fig(lo)}, {_fig(hi)}]"


def _p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _d(v: float) -> str:
    """A signed difference: 4 decimals below 0.01, and never "-0.000" (rounding to zero drops the sign)."""
    digits = 4 if abs(v) < 0.01 else 3
    return f"{round(v, digits) + 0.0:+.{digits}f}"


def _signed(t) -> str:
    return f"{_d(t.difference)} [{_d(t.lo)}, {_d(t.hi)}]"


def _k(v: float) -> str:
    return f"{v / 1e3:.0f}k" if v >= 1e3 else f"{v:.0f}"


# ---- what the report rests on ---------------------------------------------------------------------------


def header(st: Study, info: RunInfo) -> list[str]:
    p = st.params
    m0 = next(iter(st.models.values()))
    runs = m0.runs.iloc[0]
    pc = m0.per_class
    absent = pc.loc[pc["test_positives"] == 0, "class"].tolist()
    few = pc.loc[(pc["test_positives"] > 0) & (pc["test_positives"] < 5), ["class", "test_positives"]]
    sizes = [m.cost.get("params") for m in st.models.values() if m.cost.get("params")]
    warm, cool = round(p.train.warmup * p.train.epochs), max(1, round(p.train.cooldown * p.train.epochs))
    warmup_text = f"warm-up {plural(warm, 'epoch')}, then " if warm else "no warm-up, "
    lines = [
        f"- **Data**: {info.source}, {info.sampling_rate} Hz, task `{info.task}` ({info.class_count} classes); "
        f"records per split: train {info.split_records.get('train', 0):,}, validation "
        f"{info.split_records.get('val', 0):,}, test {info.split_records.get('test', 0):,} "
        f"({int(runs['test_patients']):,} patients).",
        f"- **Classes without a positive in the test fold** (left out of macro-AUROC and macro-AUPRC): "
        f"{', '.join(absent) if absent else 'none'}."
        + (
            " Fewer than 5 test positives: "
            + ", ".join(f"{c} ({n})" for c, n in few.itertuples(index=False))
            + "."
            if len(few)
            else ""
        ),
        f"- **Grid**: {plural(len(p.study.architectures), 'architecture')} x "
        f"{plural(len(st.windows), 'window length')} ({', '.join(f'{w:g} s' for w in st.windows)}) x "
        f"{plural(len(p.train.seeds), 'seed')} ({', '.join(map(str, p.train.seeds))}); "
        f"models of {_k(min(sizes))} to {_k(max(sizes))} parameters (CNN channels {p.models.channels}, "
        f"{p.models.hidden} recurrent units per direction)."
        if sizes
        else "",
        f"- **Recipe**: a budget of {p.train.epochs} epochs for every run; AdamW at peak learning rate "
        f"{p.train.lr:g}, {warmup_text}constant, then a {cool}-epoch cosine cool-down to zero, "
        + (
            f"started early when the validation macro-AUROC has not improved for {p.train.patience} epochs "
            "after the warm-up; "
            if p.train.patience
            else "no early stopping; "
        )
        + "the weights of the best validation epoch are kept (see the schedule plot).",
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
        f"{plural(sum(t.family == 'answer' for t in st.tests), 'test')}, and the table's verdicts against the best "
        f"({plural(sum(t.family == 'table' for t in st.tests), 'test')}). Intervals of differences are unadjusted. "
        '"As good as the best": non-inferior within '
        + ", ".join(f"{getattr(p.study.margins, f):g} {NAMES[f]}" for f in TESTED)
        + " (macro-AUROC for the table's verdicts).",
    ]
    return [line for line in lines if line]


def warnings(st: Study, info: RunInfo) -> list[str]:
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
    unconverged = [
        f"{m.name} seed {s}"
        for m in st.models.values()
        for s, h in m.histories.items()
        if len(h) and int(h.loc[h["val_macro_auroc"].idxmax(), "epoch"]) == len(h) == p.train.epochs
    ]
    if unconverged:
        out.append(
            f"{plural(len(unconverged), 'run')} reached the best validation score at the budget's last epoch "
            f"and may be under-trained: {', '.join(unconverged[:6])}"
            + (
                f" and {len(unconverged) - 6} more (the table's best/last epoch column)"
                if len(unconverged) > 6
                else ""
            )
            + "."
        )
    outside = [
        f"{m.name} {NAMES[f]}"
        for m in st.models.values()
        for f in TESTED
        if not st.interval(m, f)[0] <= m.point(f) <= st.interval(m, f)[1]
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


def _significant(st: Study, t) -> bool:
    return t.p_holm < st.params.study.alpha


def _trend(
    st: Study, t, up: str = "gains", down: str = "loses", flat: str = "shows no significant difference"
) -> str:
    if not _significant(st, t):
        return flat
    return up if t.difference > 0 else down


def _stated(t) -> str:
    return f"{_signed(t)}, Holm {_p(t.p_holm)}"


def answer(st: Study) -> list[str]:
    p = st.params
    best = st.models[st.best]
    lines = [
        f"- **Best model** (chosen on the validation fold): **{best.name}**, test macro-AUROC "
        f"{ci(st, best, PRIMARY)} (mean of {plural(len(best.seeds), 'seed')}, SD {best.seed_sd(PRIMARY):.4f}), "
        f"{_k(best.cost.get('params', 0))} parameters."
    ]
    verdicts = {k: verdict(st, m) for k, m in st.models.items()}
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
            f"{ci(st, s, PRIMARY)}, {_k(s.cost.get('params', 0))} parameters. Of the other models: {tally}."
        )
    for w in st.windows:
        ref = st.models.get((p.study.reference, w))
        if ref is None:
            continue
        v = verdicts[ref.key]
        if v == "best":
            lines.append(
                f"- **The published choice** {ref.name}: {ci(st, ref, PRIMARY)}; it is the best model."
            )
            continue
        t = st.by_name[f"vs_best/{ref.name}"]
        word = {
            "as good": "is as good as the best",
            "worse": "is worse than the best",
            "worse, within the margin": "is worse than the best, though within the margin",
            "better": "is better than the validation choice",
            "inconclusive": "is neither shown as good as nor worse than the best",
        }[v]
        others = "; ".join(
            f"{NAMES[f]} {_stated(st.by_name[f'reference/{w:g}/{f}'])}" for f in TESTED if f != PRIMARY
        )
        lines.append(
            f"- **The published choice** {ref.name}: {ci(st, ref, PRIMARY)}; it {word} "
            f"(macro-AUROC {_stated(t)}). Its other figures against the best: {others}."
        )
    for w, key in st.best_recurrent.items():
        t = st.by_name.get(f"recurrence/{w:g}/{PRIMARY}")
        if t is None:
            continue
        lines.append(
            f"- **Recurrence at all**, {w:g} s: the best recurrent model ({key[0]}, chosen on validation) "
            f"{_trend(st, t, 'beats', 'trails', 'shows no significant difference from')} the CNN alone: "
            f"macro-AUROC {_stated(t)}."
        )
    for w in st.windows:
        for kind in ("lstm", "gru", "bilstm", "bigru"):
            t = st.by_name.get(f"depth/{w:g}/{kind}")
            if t is None:
                continue
            stack = sorted(
                (m for k, m in st.models.items() if k[1] == w and m.type == kind), key=lambda m: m.depth
            )
            ratio = stack[-1].cost.get("params", np.nan) / stack[0].cost.get("params", np.nan)
            lines.append(
                f"- **{LABELS[kind]} depth**, {w:g} s: {stack[-1].depth} layers instead of {stack[0].depth} "
                f"{_trend(st, t)} (macro-AUROC {_stated(t)}) for {ratio:.1f}x the parameters."
            )
    if "context/macro_auroc" in st.by_name:
        t = st.by_name["context/macro_auroc"]
        short, long = st.windows[0], st.windows[-1]
        r_s, r_l = st.best_recurrent[short][0], st.best_recurrent[long][0]
        cnn, rec = st.by_name["context_cnn"], st.by_name["context_recurrent"]
        same = "" if r_s == r_l else f" ({r_s} at {short:g} s, {r_l} at {long:g} s: two architectures)"
        lines.append(
            f"- **What context adds**: from {short:g} s to {long:g} s, the value of recurrence (the best recurrent "
            f"model{same} minus the CNN) {_trend(st, t, 'grows', 'shrinks', 'shows no significant change')}: "
            f"macro-AUROC {_stated(t)}. The CNN alone {_trend(st, cnn)} ({_stated(cnn)}); the best recurrent "
            f"model {_trend(st, rec)} ({_stated(rec)})."
        )
        ref = st.by_name.get("context_reference")
        if ref is not None:
            lines.append(
                f"- For one architecture throughout, the reference {p.study.reference}: its gain over the CNN "
                f"{_trend(st, ref, 'grows', 'shrinks', 'shows no significant change')} with context "
                f"({_stated(ref)})."
            )
        fam = {f: st.by_name[f"context_family/{f}"] for f in st.family_order}
        grows = [f for f, t in fam.items() if _significant(st, t) and t.difference > 0]
        shrinks = [f for f, t in fam.items() if _significant(st, t) and t.difference < 0]
        if grows:
            lines.append(
                f"- The gain from recurrence grows with context for the {', '.join(f'**{f}**' for f in grows)} "
                f"{'family' if len(grows) == 1 else 'families'} ("
                + "; ".join(f"{f} {_stated(fam[f])}" for f in grows)
                + ")"
                + (f"; it shrinks for {', '.join(shrinks)}." if shrinks else ".")
            )
        else:
            lines.append(
                "- No label family's gain from recurrence grows significantly with context"
                + (f"; it shrinks for {', '.join(shrinks)}." if shrinks else ".")
            )
    for w in st.best_recurrent:
        tests = {
            f: st.by_name[f"family/{w:g}/{f}"] for f in st.family_order if f"family/{w:g}/{f}" in st.by_name
        }
        if not tests:
            continue
        parts = [f"{f} {_d(t.difference)}{'*' if _significant(st, t) else ''}" for f, t in tests.items()]
        helped = [f for f, t in tests.items() if _significant(st, t) and t.difference > 0]
        hurt = [f for f, t in tests.items() if _significant(st, t) and t.difference < 0]
        verdict_text = (f"It helps {', '.join(helped)}" if helped else "It helps no family significantly") + (
            f"; it hurts {', '.join(hurt)}." if hurt else "."
        )
        lines.append(
            f"- **Where recurrence helps**, {w:g} s (mean per-class AUROC gain of {st.best_recurrent[w][0]} over the "
            f"CNN; families ranked on validation; * significant after Holm): {', '.join(parts)}. {verdict_text}"
        )
    lines += published_sentence(st)
    return lines


# ---- the published figures -------------------------------------------------------------------------------


def published_mismatch(st: Study) -> str | None:
    """Why this run's figures cannot be set against the published ones, or None when its classes are theirs."""
    classes = set(next(iter(st.models.values())).per_class["class"])
    if classes == PUBLISHED_CLASSES:
        return None
    outside, missing = classes - PUBLISHED_CLASSES, PUBLISHED_CLASSES - classes
    return (
        f"the published figures are over PTB-XL's 23 diagnostic subclasses, and this run scores "
        f"{plural(len(classes), 'class', 'classes')}"
        + (f", {len(outside)} of them not among those" if outside else "")
        + (f" ({plural(len(missing), 'subclass', 'subclasses')} of theirs absent)" if missing else "")
    )


def _against_published(st: Study, m: Model, fig: str) -> str:
    """Beaten when this run's whole 95% interval lies on the better side of the published number."""
    lo, hi = st.interval(m, fig)
    published = PUBLISHED[fig]
    if fig in LOWER_IS_BETTER:
        return "beaten" if hi < published else "not reached" if lo > published else "not distinguishable"
    return "beaten" if lo > published else "not reached" if hi < published else "not distinguishable"


def _published_models(st: Study) -> list[Model]:
    shown = [st.models[k] for w in st.windows if (k := (st.params.study.reference, w)) in st.models]
    return shown if st.best in [m.key for m in shown] else [*shown, st.models[st.best]]


def published_rows(st: Study) -> pd.DataFrame:
    comparable = published_mismatch(st) is None
    rows = []
    for fig, published in PUBLISHED.items():
        row = {"figure": NAMES[fig], "published": f"{published:.4f}"}
        for m in _published_models(st):
            status = _against_published(st, m, fig) if comparable else "other classes"
            row[m.name + (" (best)" if m.key == st.best else "")] = f"{ci(st, m, fig)}: {status}"
        rows.append(row)
    return pd.DataFrame(rows)


def published_sentence(st: Study) -> list[str]:
    mismatch = published_mismatch(st)
    if mismatch:
        return [f"- **Against the published figures** ({PUBLISHED_SOURCE}): not comparable; {mismatch}."]
    ref = st.models.get((st.params.study.reference, st.windows[0]))
    out = []
    for m in [x for x in (ref, st.models[st.best]) if x is not None]:
        status: dict[str, list[str]] = {}
        for fig in PUBLISHED:
            status.setdefault(_against_published(st, m, fig), []).append(NAMES[fig])
        out.append(
            f"- **Against the published figures** ({PUBLISHED_SOURCE}), {m.name}"
            + (" (best)" if m.key == st.best and m is not ref else "")
            + ": "
            + "; ".join(f"{k} on {', '.join(v)}" for k, v in status.items())
            + " (this run's unadjusted 95% interval against their single number, whose own error is not known)."
        )
        if m.key == st.best:
            break
    return out


# ---- tables ----------------------------------------------------------------------------------------------


def study_table(st: Study) -> pd.DataFrame:
    rows = []
    for m in sorted(st.models.values(), key=lambda m: (m.window, m.depth, m.type)):
        row = {"window": f"{m.window:g} s", "model": m.arch}
        for fig in TESTED:
            row[NAMES[fig]] = ci(st, m, fig)
        row["SD over seeds"] = f"{m.seed_sd(PRIMARY):.4f}"
        row["val macro-AUROC"] = f"{m.val:.4f}"
        row["params"] = _k(m.cost.get("params", np.nan))
        row["MMAC/record"] = f"{m.cost.get('macs_per_record', np.nan) / 1e6:.1f}"
        row["CPU ms/record"] = f"{m.cost.get('cpu_latency_ms', np.nan):.1f}"
        row["train s/seed"] = f"{m.cost.get('train_seconds', np.nan):.0f}"
        row["best/last epoch"] = ", ".join(
            f"{int(h.loc[h['val_macro_auroc'].idxmax(), 'epoch'])}/{len(h)}"
            for h in m.histories.values()
            if len(h)
        )
        row["vs best"] = verdict(st, m)
        rows.append(row)
    return pd.DataFrame(rows)


def tests_table(st: Study) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "test": t.name,
                "kind": t.kind,
                "family": t.family,
                "figure": t.figure,
                "a": t.a,
                "b": t.b,
                "difference (a better: +)": round(t.difference, 5),
                "95% CI": f"[{t.lo:+.4f}, {t.hi:+.4f}]",
                "df": round(t.df, 1) if np.isfinite(t.df) else "inf",
                "margin": t.margin if t.kind == "non-inferiority" else "",
                "p": t.p,
                "p (Holm)": t.p_holm,
                "significant": t.p_holm < st.params.study.alpha,
            }
            for t in st.tests
        ]
    )


def family_table(st: Study) -> pd.DataFrame:
    rows = []
    fams = st.families()
    names = next(iter(st.models.values())).per_class["class"].tolist()
    for f in st.family_order:
        row = {"family": f, "classes": ", ".join(names[i] for i in fams[f])}
        for w in st.best_recurrent:
            t = st.by_name.get(f"family/{w:g}/{f}")
            if t is not None:
                row[f"gain {w:g} s ({st.best_recurrent[w][0]} - cnn)"] = f"{_signed(t)} ({_p(t.p_holm)})"
        t = st.by_name.get(f"context_family/{f}")
        if t is not None:
            row["growth with context"] = f"{_signed(t)} ({_p(t.p_holm)})"
        rows.append(row)
    return pd.DataFrame(rows)


def headline_metrics(st: Study) -> dict:
    """The DVC metric: the headline figure of every model, namespaced by window and architecture."""
    out: dict = {
        "best": {"model": st.models[st.best].name, PRIMARY: round(st.models[st.best].point(PRIMARY), 5)}
    }
    for m in st.models.values():
        out.setdefault(f"{m.window:g}s", {})[m.arch] = round(m.point(PRIMARY), 5)
    return out


def summary(st: Study) -> dict:
    """Machine-readable results (non-metric JSON): every choice, model and test."""
    return {
        "best": {"arch": st.best[0], "window_s": st.best[1]},
        "best_per_window": {f"{w:g}": k[0] for w, k in st.best_per_window.items()},
        "best_recurrent": {f"{w:g}": k[0] for w, k in st.best_recurrent.items()},
        "family_order": st.family_order,
        "models": {
            m.name: {
                "arch": m.arch,
                "window_s": m.window,
                "verdict": verdict(st, m),
                "val_macro_auroc": m.val,
                **{
                    f: {"point": m.point(f), "ci": list(st.interval(m, f)), "seed_sd": m.seed_sd(f)}
                    for f in TESTED
                },
                **m.cost,
            }
            for m in st.models.values()
        },
        "tests": {
            t.name: {
                "family": t.family,
                "difference": t.difference,
                "ci": [t.lo, t.hi],
                "df": t.df,
                "p": t.p,
                "p_holm": t.p_holm,
                "significant": t.p_holm < st.params.study.alpha,
            }
            for t in st.tests
        },
    }


# ---- rendering -------------------------------------------------------------------------------------------


def _table_md(df: pd.DataFrame) -> str:
    return df.map(_md_cell).to_markdown(index=False) if len(df) else "(none)"


def drift_section(drift_dir: Path | None, prediction_dir: Path | None) -> list[str]:
    """Markdown lines summarizing the drift stages' results, linking their reports (relative to reports/study)."""
    lines = []
    path = Path(drift_dir) / "summary.json" if drift_dir is not None else None
    if path is not None and path.is_file():
        lines += [
            "| fold | role | records | drifted columns | dataset drift |",
            "| --- | --- | ---: | ---: | --- |",
        ]
        for name, v in json.loads(path.read_text()).items():
            lines.append(
                f"| {_md_cell(name.removeprefix('fold_'))} | {_md_cell(v['role'])} | {v['records']} | "
                f"{v['drifted_columns']}/{v['columns']} | {'**yes**' if v['dataset_drift'] else 'no'} |"
            )
        lines += ["", f"Reports: [drift between folds](../{Path(drift_dir).name}/index.html)."]
    path = Path(prediction_dir) / "summary.json" if prediction_dir is not None else None
    if path is not None and path.is_file():
        p = json.loads(path.read_text())
        lines.append(
            f"Predicted scores of the reference model, test fold against validation fold: "
            f"{p['drifted_columns']}/{p['columns']} classes drift "
            f"([report](../{Path(prediction_dir).name}/index.html))."
        )
    return lines


def render_html(markdown: str, images: dict[str, Path]) -> str:
    """report.md as a self-contained page: images inlined, raw HTML in the Markdown escaped."""
    from markdown_it import MarkdownIt

    for name, path in images.items():
        data = base64.b64encode(path.read_bytes()).decode()
        markdown = markdown.replace(f"](plots/{name}.png)", f"](data:image/png;base64,{data})")
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    style = (
        "body{font-family:sans-serif;max-width:1300px;margin:2em auto;padding:0 1em}table{border-collapse:"
        "collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px}img{max-width:100%}"
        "blockquote{border-left:4px solid #d62728;background:#fff3f3;margin:1em 0;padding:.5em 1em}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>ecg-crnn study</title>"
        f"<style>{style}</style></head><body>{body}</body></html>"
    )


def write_report(
    st: Study,
    info: RunInfo,
    out_dir: Path,
    metrics_path: Path | None = None,
    drift_dir: Path | None = None,
    prediction_drift_dir: Path | None = None,
) -> dict:
    findings = answer(st)
    caveats = warnings(st, info)
    drift = drift_section(drift_dir, prediction_drift_dir)
    with atomic_dir(out_dir) as tmp:
        (tmp / "plots").mkdir()
        for name, fn in PLOTS.items():
            fn(st, tmp / "plots" / f"{name}.png")
        table = study_table(st)
        table.to_csv(tmp / "study.csv", index=False)
        tests_table(st).to_csv(tmp / "tests.csv", index=False)
        family_table(st).to_csv(tmp / "family_gains.csv", index=False)
        mismatch = published_mismatch(st)
        md = [
            "# How much temporal modeling is enough?",
            "",
            "## What this rests on",
            "",
            *header(st, info),
            "",
        ]
        if caveats:
            md += ["> " + caveats[0], *[f"> - {c}" for c in caveats[1:]], ""]
        md += [
            "## Answer",
            "",
            *findings,
            "",
            "## Study table",
            "",
            'Mean of seeds [95% CI]; "vs best": against the model chosen on validation, after Holm '
            "(as good = non-inferior within the margin).",
            "",
            _table_md(table),
            "",
            "## The published figures beside this run's",
            "",
            f"{PUBLISHED_SOURCE}; a figure is beaten when this run's whole 95% interval is on the better side "
            "of the published number. The published thresholds and splits may differ."
            + (f" **Not comparable here**: {mismatch}; shown for reference only." if mismatch else ""),
            "",
            _table_md(published_rows(st)),
            "",
            "## Where recurrence helps, by label family",
            "",
            "Mean per-class test AUROC of the best recurrent model (chosen on validation) minus the CNN's, "
            "with 95% CI and Holm-adjusted p; families ranked by their gain on the validation fold.",
            "",
            _table_md(family_table(st)),
            "",
            "## Plots",
            "",
            *[f"![{name}](plots/{name}.png)" for name in PLOTS],
            "",
            f"Every test with its raw and Holm-adjusted p-value: `tests.csv` ({plural(len(st.tests), 'test')}).",
        ]
        if drift:
            md += ["", "## Drift between folds", "", *drift]
        text = "\n".join(md) + "\n"
        (tmp / "report.md").write_text(text)
        (tmp / "report.html").write_text(render_html(text, {n: tmp / "plots" / f"{n}.png" for n in PLOTS}))
        (tmp / "summary.json").write_text(json.dumps(summary(st), indent=2, default=float) + "\n")
    if metrics_path is not None:
        write_json(metrics_path, headline_metrics(st))
    best = st.models[st.best]
    print(f"compare: best {best.name} ({best.point(PRIMARY):.4f}) -> {out_dir}/report.html", file=sys.stderr)
    return summary(st)

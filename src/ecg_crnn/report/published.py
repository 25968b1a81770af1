"""The published figures beside this run's: Jafari & Jafari (2026), whose best model is the study's reference."""

from __future__ import annotations

import pandas as pd

from ..analysis.compare import StudyResult
from ..analysis.results import Model
from ..metrics import LOWER_IS_BETTER
from .format import NAMES, ci_headline, plural

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


def published_mismatch(st: StudyResult) -> str | None:
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


def against_published(st: StudyResult, m: Model, fig: str) -> str:
    """Where this run's 95% interval lies against the published single number: "higher", "lower" or "overlaps".
    Descriptive, not a test: the published protocol (split, thresholds) is not this run's and its own error is
    not known, so neither "beaten" nor "not reached" would be defensible."""
    i = st.headline(m.key, fig).interval  # a chosen model on its confirmation seeds
    lo, hi = i.lo, i.hi
    published = PUBLISHED[fig]
    return "higher" if lo > published else "lower" if hi < published else "overlaps"


def better_side(fig: str, where: str) -> str:
    """'higher' or 'lower' said as better or worse for the figure (lower is better for Hamming loss)."""
    if where == "overlaps":
        return "overlaps the published value"
    good = (where == "lower") == (fig in LOWER_IS_BETTER)
    return f"{where} than published ({'better' if good else 'worse'})"


def published_models(st: StudyResult) -> list[Model]:
    shown = [st.models[k] for w in st.windows if (k := (st.params.study.reference, w)) in st.models]
    return shown if st.best in [m.key for m in shown] else [*shown, st.models[st.best]]


def published_rows(st: StudyResult) -> pd.DataFrame:
    comparable = published_mismatch(st) is None
    rows = []
    for fig, published in PUBLISHED.items():
        row = {"figure": NAMES[fig], "published": f"{published:.4f}"}
        for m in published_models(st):
            status = better_side(fig, against_published(st, m, fig)) if comparable else "other classes"
            row[m.name + (" (best)" if m.key == st.best else "")] = f"{ci_headline(st, m, fig)}: {status}"
        rows.append(row)
    return pd.DataFrame(rows)


def published_sentence(st: StudyResult) -> list[str]:
    mismatch = published_mismatch(st)
    if mismatch:
        return [f"- **Against the published figures** ({PUBLISHED_SOURCE}): not comparable; {mismatch}."]
    ref = st.models.get((st.params.study.reference, st.windows[0]))
    out = []
    for m in [x for x in (ref, st.models[st.best]) if x is not None]:
        status: dict[str, list[str]] = {}
        for fig in PUBLISHED:
            status.setdefault(better_side(fig, against_published(st, m, fig)), []).append(NAMES[fig])
        out.append(
            f"- **Against the published figures** ({PUBLISHED_SOURCE}), {m.name}"
            + (" (best)" if m.key == st.best and m is not ref else "")
            + ": "
            + "; ".join(f"{k} on {', '.join(v)}" for k, v in status.items())
            + " (this run's 95% interval against their single number: descriptive, not a test; their protocol and "
            "error are not this run's)."
        )
        if m.key == st.best:
            break
    return out

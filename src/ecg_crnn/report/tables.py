"""The report's tables (study.csv, tests.csv, family_gains.csv), the DVC metric and the machine-readable summary."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis.compare import StudyResult
from ..analysis.results import PRIMARY
from ..metrics import TESTED
from .format import NAMES, ci, kilo, p_value, with_interval


def _best_last(m) -> str:
    return ", ".join(
        f"{int(h.loc[h['val_macro_auroc'].idxmax(), 'epoch'])}/{len(h)}"
        for h in m.histories.values()
        if len(h)
    )


def study_table(st: StudyResult) -> pd.DataFrame:
    rows = []
    for m in sorted(st.models.values(), key=lambda m: (m.window, m.depth, m.rnn_type)):
        row = {"window": f"{m.window:g} s", "model": m.arch}
        for f in TESTED:
            row[NAMES[f]] = ci(st, m, f)
        row["SD over seeds"] = f"{m.seed_sd(PRIMARY):.4f}"
        row["val macro-AUROC"] = f"{m.val:.4f}"
        row["params"] = kilo(m.cost.get("params", np.nan))
        row["MMAC/record"] = f"{m.cost.get('macs_per_record', np.nan) / 1e6:.1f}"
        row["CPU ms/record"] = f"{m.cost.get('cpu_latency_ms', np.nan):.1f}"
        row["train s/seed"] = f"{m.cost.get('train_seconds', np.nan):.0f}"
        row["best/last epoch"] = _best_last(m)
        row["vs best"] = st.verdicts[m.key]
        rows.append(row)
    return pd.DataFrame(rows)


def tests_table(st: StudyResult) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "test": t.name,
                "kind": t.kind,
                "family": t.group,
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


def family_table(st: StudyResult) -> pd.DataFrame:
    rows = []
    names = next(iter(st.models.values())).per_class["class"].tolist()
    for f in st.family_order:
        row = {"family": f, "classes": ", ".join(names[i] for i in st.label_families[f])}
        for w in st.best_recurrent:
            t = st.label_gain.get(w, {}).get(f)
            if t is not None:
                row[f"gain {w:g} s ({st.best_recurrent[w][0]} - cnn)"] = (
                    f"{with_interval(t)} ({p_value(t.p_holm)})"
                )
        if st.context is not None:
            t = st.context.families[f]
            row["growth with context"] = f"{with_interval(t)} ({p_value(t.p_holm)})"
        rows.append(row)
    return pd.DataFrame(rows)


def headline_metrics(st: StudyResult) -> dict:
    """The DVC metric: the headline figure of every model, namespaced by window and architecture."""
    best = st.models[st.best]
    out: dict = {"best": {"model": best.name, PRIMARY: round(best.point(PRIMARY), 5)}}
    for m in st.models.values():
        out.setdefault(f"{m.window:g}s", {})[m.arch] = round(m.point(PRIMARY), 5)
    return out


def summary(st: StudyResult) -> dict:
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
                "verdict": st.verdicts[m.key],
                "val_macro_auroc": m.val,
                **{
                    f: {"point": m.point(f), "ci": list(st.interval(m.key, f)), "seed_sd": m.seed_sd(f)}
                    for f in TESTED
                },
                **m.cost,
            }
            for m in st.models.values()
        },
        "tests": {
            t.name: {
                "family": t.group,
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

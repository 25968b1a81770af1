"""The report's tables (study.csv, tests.csv, power.csv, family_gains.csv), the DVC metric and the machine-readable
summary."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis.compare import ENDPOINT, Hypothesis, StudyResult
from ..analysis.decisions import p_values
from ..analysis.results import PRIMARY
from ..metrics import TESTED
from .format import NAMES, ci, fig, kilo, signed

FIGURE_NAMES = {ENDPOINT: "primary macro-AUROC", **NAMES}


def _best_last(m) -> str:
    return ", ".join(
        f"{int(h.loc[h['val_macro_auroc'].idxmax(), 'epoch'])}/{len(h)}"
        for h in m.histories.values()
        if len(h)
    )


def study_table(st: StudyResult, recipes: dict | None = None) -> pd.DataFrame:
    """One row per model; `recipes` ((architecture, window) -> Recipe) adds what each trained with."""
    rows = []
    for m in sorted(st.models.values(), key=lambda m: (m.window, m.depth, m.rnn_type)):
        row = {"window": f"{m.window:g} s", "model": m.arch}
        for f in (ENDPOINT, *TESTED):
            row[FIGURE_NAMES[f]] = ci(st, m, f)
        row["SD over seeds"] = f"{st.figures[m.key][ENDPOINT].seed_sd:.4f}"
        row["val macro-AUROC (selection seeds)"] = f"{m.val_of(st.selection):.4f}"
        row["params"] = kilo(m.cost.get("params", np.nan))
        row["MMAC/record"] = f"{m.cost.get('macs_per_record', np.nan) / 1e6:.1f}"
        row["CPU ms/record"] = f"{m.cost.get('cpu_latency_ms', np.nan):.1f}"
        row["train s/seed"] = f"{m.cost.get('train_seconds', np.nan):.0f}"
        row["best/last epoch"] = _best_last(m)
        row["vs best"] = st.verdict_against_best(m.key)
        if recipes and m.key in recipes:
            r = recipes[m.key]
            row["recipe"] = f"lr {r.lr:.3g}, dropout {r.dropout:.3g}, wd {r.weight_decay:.3g}" + (
                " (tuned)" if r.tuned else " (default)"
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _test_row(st: StudyResult, h: Hypothesis) -> dict:
    i, p, v = h.interval, p_values(h.estimate, h.margin), h.verdict
    return {
        "hypothesis": h.name,
        "question": h.group,
        "tier": "primary" if st.is_primary(h) else "secondary",
        "figure": FIGURE_NAMES.get(h.figure, h.figure),
        "a": h.a,
        "b": h.b,
        "seeds": h.seeds,
        "difference (a better: +)": round(h.difference, 5),
        "95% CI": f"[{i.lo:+.4f}, {i.hi:+.4f}]",
        "se": round(h.estimate.se, 5),
        "df": round(h.estimate.df, 1) if np.isfinite(h.estimate.df) else "inf",
        "margin": h.margin,
        "tests": " + ".join(h.tests),
        "p (difference)": p.difference,
        "p (non-inferiority)": p.noninferiority,
        "p (equivalence)": p.equivalence,
        "alpha share": round(h.weight, 6),
        "level reached": v.level,
        "verdict": v.wording,
    }


def hypotheses_table(st: StudyResult) -> pd.DataFrame:
    return pd.DataFrame([_test_row(st, h) for h in st.hypotheses.values()])


def power_table(st: StudyResult, rows_in=None) -> pd.DataFrame:
    rows = []
    for r in st.power if rows_in is None else rows_in:
        h, plan = st.hypotheses[r.name], r.plan
        folds = (
            f"{plan.folds} test folds at {plan.seeds_per_fold} seeds"
            if plan.folds
            else "more than 10 test folds"
        )
        rows.append(
            {
                "hypothesis": r.name,
                "contrast": f"{h.a} - {h.b}",
                "level": f"{r.level:.2g}",
                "se": f"{h.estimate.se:.4f}",
                "margin": f"{h.margin:g}",
                "power at the margin": f"{r.power_at_margin:.2f}",
                "resolves (80% power)": fig(r.mde),
                "seeds per model to resolve the margin": plan.seeds
                or "none (the patient part alone exceeds it)",
                "resolves with unlimited seeds": fig(plan.mde_unlimited_seeds),
                f"resolves with 10-fold rotation ({plan.seeds_per_fold} seeds)": fig(plan.mde_by_folds[-1]),
                "test folds to resolve the target": folds,
            }
        )
    return pd.DataFrame(rows)


def family_table(st: StudyResult) -> pd.DataFrame:
    rows = []
    names = next(iter(st.models.values())).per_class["class"].tolist()
    for f in st.family_order:
        row = {"family": f, "classes": ", ".join(names[i] for i in st.label_families[f])}
        for w in st.windows:
            h = st.get(f"label_families/{w:g}/{f}")
            if h is not None:
                i = h.interval
                row[f"gain {w:g} s ({h.a.split(' @ ')[0]} - cnn)"] = (
                    f"{signed(h.difference)} [{signed(i.lo)}, {signed(i.hi)}]: {h.verdict.wording}"
                )
        rows.append(row)
    return pd.DataFrame(rows)


def headline_metrics(st: StudyResult) -> dict:
    """The DVC metric: every model's macro-AUROC over every scored class (the published figure) and the best
    model's primary endpoint, namespaced by window and architecture."""
    best = st.models[st.best]
    out: dict = {
        "best": {
            "model": best.name,
            PRIMARY: round(st.point(st.best, PRIMARY), 5),
            ENDPOINT: round(st.point(st.best, ENDPOINT), 5),
        }
    }
    for m in st.models.values():
        out.setdefault(f"{m.window:g}s", {})[m.arch] = round(st.point(m.key, PRIMARY), 5)
    return out


def _model_summary(st: StudyResult, m) -> dict:
    return {
        "arch": m.arch,
        "window_s": m.window,
        "verdict": st.verdict_against_best(m.key),
        "val_macro_auroc": m.val_of(st.selection),
        **{
            f: {"point": x.point, "ci": [x.interval.lo, x.interval.hi], "seed_sd": x.seed_sd}
            for f, x in st.figures[m.key].items()
        },
        **m.cost,
    }


def _hypothesis_summary(st: StudyResult, h: Hypothesis) -> dict:
    v = h.verdict
    return {
        "question": h.group,
        "tier": "primary" if st.is_primary(h) else "secondary",
        "figure": h.figure,
        "a": h.a,
        "b": h.b,
        "seeds": h.seeds,
        "difference": h.difference,
        "ci": [h.interval.lo, h.interval.hi],
        "se": h.estimate.se,
        "df": h.estimate.df,
        "margin": h.margin,
        "level": v.level,
        "verdict": v.wording,
        "better": v.better,
        "worse": v.worse,
        "equivalent": v.equivalent,
        "noninferior": v.noninferior,
        "mde": v.mde,
    }


def summary(st: StudyResult) -> dict:
    """Machine-readable results (non-metric JSON): every choice, model, hypothesis and power figure."""
    return {
        "best": {"arch": st.best[0], "window_s": st.best[1]},
        "best_per_window": {f"{w:g}": k[0] for w, k in st.best_per_window.items()},
        "best_recurrent": {f"{w:g}": k[0] for w, k in st.best_recurrent.items()},
        "selection_seeds": list(st.selection),
        "confirmation_seeds": list(st.confirmation),
        "primary_classes": st.primary_classes,
        "family_order": st.family_order,
        "models": {m.name: _model_summary(st, m) for m in st.models.values()},
        "tests": {h.name: _hypothesis_summary(st, h) for h in st.hypotheses.values()},
        "power": {
            r.name: {
                "level": r.level,
                "power_at_margin": r.power_at_margin,
                "mde": r.mde,
                "seeds_to_resolve_margin": r.plan.seeds,
                "mde_unlimited_seeds": r.plan.mde_unlimited_seeds,
                "folds_to_resolve_margin": r.plan.folds,
                "mde_by_folds": list(r.plan.mde_by_folds),
            }
            for r in st.power
        },
        "learning_curves": {
            f"{f:g}": {
                f"{k[0]} @ {k[1]:g} s": {"point": x.point, "ci": [x.interval.lo, x.interval.hi]}
                for k, x in by.items()
            }
            for f, by in st.curves.items()
        },
    }

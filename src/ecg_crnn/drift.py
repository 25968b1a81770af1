"""Drift between PTB-XL's folds, with Evidently (the drift and drift_predictions stages call this).

Every fold is compared with the training folds as reference (a training fold with the other training
folds), over what a model could be sensitive to: patient and recording metadata (age, sex, height,
weight, site, device, recording year), per-lead signal statistics (amplitude, noise, baseline wander),
heart rate, and label prevalence. Once a model exists, its predicted scores on the test fold are compared
with those on the validation fold. Each comparison is a self-contained Evidently HTML report. What DVC tracks
as a metric is one figure per fold (the share of drifted columns, under `drift_share.fold_N`) and, for the
predictions, `prediction_drift.*`; the details (the most drifted columns and their scores, which differ from
run to run) go into a summary.json beside the HTML reports, which `dvc exp show` does not spread into columns.
"""

from __future__ import annotations

import html
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from .config import DriftSettings
from .data.labels import load_labels
from .data.ptbxl import load_database
from .data.signals import SignalCache
from .markup import safe_names

METADATA_NUMERIC = ["age", "height", "weight", "recording_year"]
METADATA_CATEGORICAL = ["sex", "site", "device"]


def signal_features(cache: SignalCache, chunk: int = 1024) -> pd.DataFrame:
    """Per record and lead: amplitude (peak to peak, mV), noise (white-noise level from the second
    difference), baseline wander (std of the 1 s moving average); and heart rate from lead II.
    All vectorized over records: the full dataset takes seconds."""
    n = cache.signals.shape[0]
    fs = cache.fs
    lead_ii = cache.leads.index("II") if "II" in cache.leads else 0
    parts = []
    for s in range(0, n, chunk):
        x = cache.physical(np.arange(s, min(s + chunk, n)))
        frame = {}
        amp = x.max(axis=2) - x.min(axis=2)
        noise = np.diff(x, n=2, axis=2).std(axis=2) / np.sqrt(6.0)
        wander = moving_average(x, max(1, int(fs))).std(axis=2)
        for i, lead in enumerate(cache.leads):
            frame[f"amplitude_{lead}"] = amp[:, i]
            frame[f"noise_{lead}"] = noise[:, i]
            frame[f"wander_{lead}"] = wander[:, i]
        frame["heart_rate"] = heart_rate(x[:, lead_ii], fs)
        parts.append(pd.DataFrame(frame))
    return pd.concat(parts, ignore_index=True)


def moving_average(x: np.ndarray, width: int) -> np.ndarray:
    c = np.cumsum(x, axis=-1, dtype=np.float64)
    return (c[..., width:] - c[..., :-width]) / width


def heart_rate(x: np.ndarray, fs: float) -> np.ndarray:
    """Beats per minute of each row (records x samples): QRS complexes are where the 0.1 s-smoothed slope
    magnitude exceeds 40% of the record's maximum; each rising edge is a beat. NaN for a flat record."""
    envelope = moving_average(np.abs(np.diff(x, axis=-1)), max(1, int(0.1 * fs)))
    peak = envelope.max(axis=-1, keepdims=True)
    above = envelope > 0.4 * peak
    beats = (np.diff(above.astype(np.int8), axis=-1) == 1).sum(axis=-1) + above[:, 0]
    duration_min = x.shape[-1] / fs / 60
    return np.where(peak[:, 0] > 0, beats / duration_min, np.nan)


def drift_table(raw_dir: Path, filtered_dir: Path) -> tuple[pd.DataFrame, list[str], list[str]]:
    """One row per record of the filter stage: fold, metadata, signal statistics, labels (prefixed `label_`)."""
    table, classes = load_labels(filtered_dir)
    db = load_database(raw_dir)
    meta = db.reindex(table["ecg_id"])
    out = pd.DataFrame({"strat_fold": table["strat_fold"].to_numpy()})
    for col in ("age", "height", "weight"):
        out[col] = pd.to_numeric(meta[col], errors="coerce").to_numpy() if col in meta else np.nan
    out["recording_year"] = (
        pd.to_datetime(meta["recording_date"], errors="coerce").dt.year.to_numpy(float)
        if "recording_date" in meta
        else np.nan
    )
    for col in METADATA_CATEGORICAL:
        out[col] = meta[col].astype(str).to_numpy() if col in meta else "unknown"
    features = signal_features(SignalCache.open(filtered_dir))
    labels = table[classes].astype(str).add_prefix("label_")
    out = pd.concat([out, features, labels.reset_index(drop=True)], axis=1)
    numeric = METADATA_NUMERIC + list(features.columns)
    categorical = METADATA_CATEGORICAL + list(labels.columns)
    # Columns that are empty everywhere (height in most of PTB-XL's sites) say nothing about drift.
    numeric = [c for c in numeric if out[c].notna().any()]
    return out, numeric, categorical


def _drifted(method: str, value: float, threshold: float) -> bool:
    """Statistical tests give p-values (drift when below the threshold), the rest distances (drift when at
    or above it)."""
    return value < threshold if method in P_VALUE_METHODS else value >= threshold


METHODS = {
    "tests": {"numerical": ("ks", 0.05), "categorical": ("chisquare", 0.05)},
    "distances": {"numerical": ("wasserstein", 0.1), "categorical": ("jensenshannon", 0.1)},
}
P_VALUE_METHODS = {"ks", "chisquare"}
SMALL_FOLD = 1000


def method_for(method: str, current_records: int) -> str:
    if method == "auto":
        return "tests" if current_records < SMALL_FOLD else "distances"
    return method


def _per_column(metrics: list[dict], chosen: dict, shown: dict[str, str]) -> list[dict]:
    original = {v: k for k, v in shown.items()}
    out = []
    for metric in metrics:
        column = original[metric["config"]["column"]]
        method, threshold = chosen[column]
        score = float(metric["value"])
        drifted = _drifted(method, score, threshold)
        entry = {
            "column": column,
            "method": method,
            "score": score,
            "threshold": threshold,
            "drifted": drifted,
        }
        if shown[column] != column:
            entry["shown_as"] = shown[column]
        out.append(entry)
    return out


def renamed_columns(columns: list[str]) -> dict[str, str]:
    """{column: the identifier its report shows} for the columns whose names are not shown as they are."""
    return {k: v for k, v in safe_names(columns).items() if k != v}


def _as_shown(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> tuple[pd.DataFrame, dict]:
    """`frame` as Evidently may get it: every column name, and every category value, that could end the report's
    script replaced by a plain identifier (the same on both sides of a comparison: map over their union)."""
    shown = safe_names(numeric + categorical)
    out = frame[numeric + categorical].rename(columns=shown)
    for c in categorical:
        values = [str(v) for v in pd.unique(frame[c])]
        mapping = safe_names(values)
        if any(k != v for k, v in mapping.items()):
            out[shown[c]] = frame[c].astype(str).map(mapping).to_numpy()
    return out, shown


def _most_drifted_first(columns: list[dict]) -> list[dict]:
    """p-values ascending, distances descending, on one scale through the threshold."""
    return sorted(
        columns,
        key=lambda c: (
            c["threshold"] / max(c["score"], 1e-300)
            if c["method"] in P_VALUE_METHODS
            else c["score"] / c["threshold"]
        ),
        reverse=True,
    )


def run_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    cfg: DriftSettings,
    html: Path | None = None,
) -> dict:
    """One Evidently report: a ValueDrift metric per column. A comparison drifts when the share of drifted
    columns reaches `drift.drift_share`, as in Evidently's DataDriftPreset, whose per-column summary
    statistics and plots cost ~3x more and are not needed here."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    columns = numeric + categorical
    both, shown = _as_shown(pd.concat([reference, current], ignore_index=True), numeric, categorical)
    ref_shown, cur_shown = both.iloc[: len(reference)], both.iloc[len(reference) :].reset_index(drop=True)
    definition = DataDefinition(
        numerical_columns=[shown[c] for c in numeric], categorical_columns=[shown[c] for c in categorical]
    )
    kind = method_for(cfg.method, len(current))
    chosen = {c: METHODS[kind]["numerical" if c in numeric else "categorical"] for c in columns}
    metrics = [ValueDrift(column=shown[c], method=m, threshold=t) for c, (m, t) in chosen.items()]
    # A category present in only one of the two samples (a rare label absent from a small fold) gives the
    # chi-square test an expected count of zero: scipy divides by it and warns, and the column is (rightly)
    # flagged as drifted. The warning says nothing more than the flag, so it is silenced here alone.
    with np.errstate(divide="ignore", invalid="ignore"):
        snapshot = Report(metrics).run(
            current_data=Dataset.from_pandas(cur_shown, data_definition=definition),
            reference_data=Dataset.from_pandas(ref_shown, data_definition=definition),
        )
    if html is not None:
        snapshot.save_html(str(html))
    per_column = _per_column(snapshot.dict()["metrics"], chosen, shown)
    drifted = _most_drifted_first([c for c in per_column if c["drifted"]])
    share = len(drifted) / len(per_column)
    return {
        "drift_share": share,
        "drifted_columns": len(drifted),
        "columns": len(per_column),
        "method": kind,
        "dataset_drift": share >= cfg.drift_share,
        "most_drifted": drifted,
        "all": per_column,
    }


def comparisons(table: pd.DataFrame, folds: dict[str, list[int]]) -> list[tuple[int, str, list[int]]]:
    """(fold, role, reference folds): every fold against the training folds; a training fold against the others."""
    out = []
    for fold in sorted(set(table["strat_fold"])):
        if fold in folds["train"]:
            out.append((fold, "train", [f for f in folds["train"] if f != fold]))
        elif fold in folds["val"] or fold in folds["test"]:
            out.append((fold, "val" if fold in folds["val"] else "test", folds["train"]))
    return out


_SHARED: dict = {}  # the table, handed to forked workers without pickling it per task


def _compare_one(job) -> tuple[int, dict]:
    fold, ref_folds, html, cfg = job
    table, numeric, categorical = _SHARED["table"]
    ref = table[table["strat_fold"].isin(ref_folds)]
    cur = table[table["strat_fold"] == fold]
    return fold, run_report(ref, cur, numeric, categorical, cfg, html)


def compare_folds(
    table: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    plan,
    out_dir: Path,
    cfg: DriftSettings,
    workers: int | None = None,
) -> dict[int, dict]:
    """Every planned comparison (fold, role, reference folds) as an Evidently report `fold_N.html` in `out_dir`,
    in parallel processes where the platform forks (the table is shared with them, not pickled per task)."""
    jobs = [(fold, ref, Path(out_dir) / f"fold_{fold}.html", cfg) for fold, _, ref in plan]
    _SHARED["table"] = (table, numeric, categorical)
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    try:
        if workers > 1 and multiprocessing.get_start_method() == "fork":
            with ProcessPoolExecutor(workers) as pool:
                return dict(pool.map(_compare_one, jobs))
        return dict(map(_compare_one, jobs))
    finally:
        _SHARED.clear()


def fold_summary(fold: int, role: str, records: int, result: dict, top: int) -> dict:
    return {
        "role": role,
        "records": records,
        "method": result["method"],
        "drift_share": round(result["drift_share"], 4),
        "drifted_columns": result["drifted_columns"],
        "columns": result["columns"],
        "dataset_drift": bool(result["dataset_drift"]),
        "most_drifted": {c["column"]: round(c["score"], 6) for c in result["most_drifted"][:top]},
    }


def drift_metrics(summary: dict) -> dict:
    """The DVC metric: per fold, the share of its columns that drift (namespaced for `dvc exp show`)."""
    return {"drift_share": {k: v["drift_share"] for k, v in summary.items()}}


def score_columns(classes: list[str]) -> list[str]:
    """Column names for predicted scores, one per class (run_report shows a name that is not plain by its legend)."""
    return [f"score_{c}" for c in classes]


def _legend_html(renamed: dict[str, str]) -> str:
    if not renamed:
        return ""
    esc = html.escape
    rows = "".join(f"<tr><td><code>{esc(v)}</code></td><td>{esc(k)}</td></tr>" for k, v in renamed.items())
    return (
        "<h2>Legend</h2><p>Columns whose names from the data could not be shown as they are inside the reports' "
        f"scripts, and the identifiers shown instead:</p><table border=1 cellpadding=4><tr><th>shown as</th>"
        f"<th>column</th></tr>{rows}</table>"
    )


def index_html(summary: dict, renamed: dict[str, str] | None = None) -> str:
    esc = html.escape  # column names come from the CSVs (class and lead names)
    rows = "".join(
        f"<tr><td><a href='{esc(k)}.html'>{esc(k)}</a></td><td>{esc(v['role'])}</td><td>{v['records']}</td>"
        f"<td>{v['drifted_columns']}/{v['columns']}</td><td>{v['drift_share']:.2f}</td>"
        f"<td>{'yes' if v['dataset_drift'] else 'no'}</td>"
        f"<td>{esc(', '.join(list(v['most_drifted'])[:5]))}</td></tr>"
        for k, v in summary.items()
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Drift between folds</title></head><body>"
        "<h1>Drift between folds</h1><table border=1 cellpadding=4><tr><th>fold</th><th>role</th><th>records"
        "</th><th>drifted columns</th><th>share</th><th>dataset drift</th><th>most drifted</th></tr>"
        f"{rows}</table><p>Reference: the training folds (for a training fold, the other ones).</p>"
        f"{_legend_html(renamed or {})}</body></html>"
    )

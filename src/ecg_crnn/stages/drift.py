"""The drift stage: every fold against the training folds (a training fold against the other ones), as
Evidently reports in reports/drift/ (index.html, fold_N.html, summary.json) and the DVC metric reports/drift.json
(the share of drifted columns per fold)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..atomic import atomic_dir, write_json
from ..config import Params
from ..drift import (
    compare_folds,
    comparisons,
    drift_metrics,
    drift_table,
    fold_summary,
    index_html,
    renamed_columns,
)
from ..layout import FILTERED, RAW, REPORTS, SEGMENTED, rotation_dir


@dataclass(frozen=True)
class Paths:
    raw: Path = RAW
    filtered: Path = FILTERED
    segmented: Path = SEGMENTED
    out: Path = REPORTS / "drift"
    summary: Path = REPORTS / "drift.json"


def run(params: Params, paths: Paths = Paths(), workers: int | None = None) -> dict:
    cfg = params.drift
    table, numeric, categorical = drift_table(paths.raw, paths.filtered)
    split = pd.read_csv(rotation_dir(paths.segmented, params.segment.rotations[0]) / "split.csv")
    folds = {
        name: sorted(split.loc[split["split"] == name, "strat_fold"].unique().tolist())
        for name in ("train", "val", "test")
    }
    plan = [
        (f, role, ref)
        for f, role, ref in comparisons(table, folds)
        if (table["strat_fold"] == f).sum() >= 2 and table["strat_fold"].isin(ref).sum() >= 2
    ]
    summary: dict = {}
    with atomic_dir(paths.out) as tmp:
        results = compare_folds(table, numeric, categorical, plan, tmp, cfg, workers)
        for fold, role, ref_folds in plan:
            result = results[fold]
            records = int((table["strat_fold"] == fold).sum())
            summary[f"fold_{fold}"] = fold_summary(fold, role, records, result, cfg.top)
            print(
                f"drift: fold {fold} ({role}) vs folds {ref_folds}: {result['drifted_columns']}/"
                f"{result['columns']} columns drift (share {result['drift_share']:.2f}, {result['method']})"
                f"{' -> DATASET DRIFT' if result['dataset_drift'] else ''}",
                file=sys.stderr,
            )
        (tmp / "index.html").write_text(index_html(summary, renamed_columns(numeric + categorical)))
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_json(paths.summary, drift_metrics(summary))
    return summary

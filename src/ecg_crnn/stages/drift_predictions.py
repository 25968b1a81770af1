"""The drift_predictions stage: the reference model's predicted scores on the test fold against those on the
validation fold, as an Evidently report in reports/drift_predictions/ and the DVC metric
reports/drift_predictions.json (`prediction_drift.*`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_dir, write_json
from ..config import Params
from ..drift import run_report, score_columns
from ..errors import EcgCrnnError
from ..layout import EVALUATION, REPORTS, RunKey, evaluation_dir


@dataclass(frozen=True)
class Paths:
    evaluation: Path = EVALUATION
    out: Path = REPORTS / "drift_predictions"
    summary: Path = REPORTS / "drift_predictions.json"


def run(params: Params, key: RunKey, paths: Paths = Paths()) -> dict:
    cfg = params.drift
    predictions = evaluation_dir(key, paths.evaluation) / "predictions.npz"
    try:
        npz = np.load(predictions)
    except FileNotFoundError:
        raise EcgCrnnError(f"{predictions}: not found (run the evaluate stage first)") from None
    cols = score_columns([str(c) for c in npz["classes"]])
    ref = pd.DataFrame(npz["val_p"], columns=cols)
    cur = pd.DataFrame(npz["test_p"], columns=cols)
    with atomic_dir(paths.out) as tmp:
        result = run_report(ref, cur, cols, [], cfg, tmp / "index.html")
        summary = {
            "predictions": str(predictions),
            "reference": "validation fold",
            "current": "test fold",
            "method": result["method"],
            "drift_share": round(result["drift_share"], 4),
            "drifted_columns": result["drifted_columns"],
            "columns": result["columns"],
            "dataset_drift": bool(result["dataset_drift"]),
            "most_drifted": {c["column"]: round(c["score"], 6) for c in result["most_drifted"][: cfg.top]},
        }
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_json(
        paths.summary,
        {
            "prediction_drift": {
                "drift_share": summary["drift_share"],
                "dataset_drift": summary["dataset_drift"],
            }
        },
    )
    return summary

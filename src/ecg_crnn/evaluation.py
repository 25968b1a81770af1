"""Evaluation of one trained model (one architecture, window and seed).

Thresholds are tuned per class on the validation fold and only then applied to the test fold, which is
scored once. The test figures are computed by one function for the point estimate (every record once) and
for every patient resample (records weighted by how often their patient was drawn), over one fixed class
set, so each point estimate and its resamples describe the same figure. The per-resample values are kept:
the comparison stage pairs models resample by resample and resamples seeds on top (a hierarchical bootstrap).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .artifact import model_from_artifact
from .config import EvaluateSettings
from .dataset import StudyData
from .metrics import (
    TESTED,
    auprc_per_class,
    auroc_per_class,
    bootstrap_figures,
    f1_per_class,
    headline,
    macro_auroc,
    scored_classes,
    tune_thresholds,
    weighted_figures,
)
from .models import pick_device, predict_proba
from .resources import bind


@dataclass
class Evaluation:
    metrics: dict
    thresholds: np.ndarray
    per_class: pd.DataFrame
    resampled: dict[str, np.ndarray]  # figure -> (resamples,)
    resampled_class: dict[str, np.ndarray]  # "auroc", "auprc" -> (resamples, classes)
    val_p: np.ndarray
    test_p: np.ndarray


def evaluate_model(
    checkpoint: dict, data: StudyData, weights: np.ndarray, cfg: EvaluateSettings, device: str = "auto"
) -> Evaluation:
    dev = pick_device(device)
    # The thread count the model was trained with (train.threads): on CPU the scores depend on it, and so
    # they are a function of the model file alone. Files from before the setting leave torch's count.
    bind(checkpoint.get("train_settings", {}).get("threads"), dev)
    model = model_from_artifact(checkpoint).to(dev)
    val, test = data.splits["val"], data.splits["test"]
    val_p = predict_proba(model, val.x, data.eval_starts, data.window, cfg.aggregate, device=dev)
    test_p = predict_proba(model, test.x, data.eval_starts, data.window, cfg.aggregate, device=dev)
    thresholds = tune_thresholds(val.y, val_p)
    scored = scored_classes(test.y)
    point, _ = weighted_figures(test.y, test_p, thresholds, np.ones((1, len(test.y))), scored)
    resampled, per_class_resampled = bootstrap_figures(test.y, test_p, thresholds, weights)
    secondary = headline(test.y, test_p, thresholds)  # figures reported without intervals
    metrics = {key: float(point[key][0]) for key in TESTED}
    metrics.update(
        {
            "micro_auroc": secondary["micro_auroc"],
            "macro_f1": secondary["macro_f1"],
            "val_macro_auroc": macro_auroc(val.y, val_p),
            "arch": checkpoint["arch"],
            "window_s": float(checkpoint["window_s"]),
            "seed": int(checkpoint["seed"]),
            "best_epoch": int(checkpoint["best_epoch"]),
            "epochs_run": int(checkpoint["epochs_run"]),
            "val_records": int(len(val.ecg_ids)),
            "test_records": int(len(test.ecg_ids)),
            "test_patients": int(len(np.unique(test.patient_ids))),
            "scored_classes": int(scored.sum()),
            "bootstrap_resamples": int(len(weights)),
        }
    )
    y = test.y.astype(bool)
    per_class = pd.DataFrame(
        {
            "class": data.classes,
            "family": [data.families.get(c, "other") for c in data.classes],
            "test_positives": y.sum(axis=0),
            # patients, not records: the bootstrap resamples patients, so a class's precision rests on them
            "test_positive_patients": patients_with(y, test.patient_ids),
            "test_negative_patients": patients_with(~y, test.patient_ids),
            "auroc": auroc_per_class(y, test_p),
            "auprc": auprc_per_class(y, test_p),
            "f1": f1_per_class(y, test_p >= thresholds),
            "threshold": thresholds,
        }
    )
    return Evaluation(metrics, thresholds, per_class, resampled, per_class_resampled, val_p, test_p)


def patients_with(y: np.ndarray, patients: np.ndarray) -> np.ndarray:
    """Per class, how many patients have at least one record with the label (y: records x classes)."""
    _, inverse = np.unique(np.asarray(patients), return_inverse=True)
    per_patient = np.zeros((inverse.max() + 1, y.shape[1]), bool)
    np.logical_or.at(per_patient, inverse, np.asarray(y, bool))
    return per_patient.sum(axis=0)

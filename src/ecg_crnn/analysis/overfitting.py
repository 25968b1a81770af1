"""Overfitting, measured: each run's generalization gap (the fixed training subset's macro-AUROC minus the
validation fold's, from history.csv) at the epoch whose weights were kept and at the last epoch, and how far the
validation curve fell after its peak (early stopping keeps the peak's weights, so a fall is the overfitting it
masks). A gap varies only with the seed (the subset and the validation fold are fixed), so its uncertainty is the
seed part alone: Student's t on the seeds, pooled over rotations of the folds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .contrasts import Estimate, SeedPart
from .rotation import pool_folds


def run_gaps(history: pd.DataFrame) -> dict[str, float]:
    """One run's gap at its kept (best validation) epoch and at its last, and the validation fall after the peak."""
    if "train_macro_auroc" not in history or not history["train_macro_auroc"].notna().any():
        return {"gap_kept": np.nan, "gap_last": np.nan, "fall": np.nan}
    best = history["val_macro_auroc"].idxmax()
    gap = history["train_macro_auroc"] - history["val_macro_auroc"]
    return {
        "gap_kept": float(gap.loc[best]),
        "gap_last": float(gap.iloc[-1]),
        "fall": float(history["val_macro_auroc"].max() - history["val_macro_auroc"].iloc[-1]),
    }


def seed_values(model, figure: str, seeds) -> np.ndarray:
    return np.array([run_gaps(model.histories[s])[figure] for s in seeds])


def gap_estimate(terms: list[tuple[float, list]], figure: str, seeds) -> Estimate:
    """sum w * (seed-mean `figure`) over `terms` [(w, [the model in each rotation])], its seed part per model and
    rotation, pooled over rotations (each rotation's runs are trained afresh: independent)."""
    per_rotation = []
    for r in range(len(terms[0][1])):
        point, parts = 0.0, []
        for w, models in terms:
            v = seed_values(models[r], figure, seeds)
            point += w * float(v.mean())
            parts.append(SeedPart(w, float(v.var(ddof=1)) if len(v) > 1 else 0.0, len(v)))
        per_rotation.append(Estimate(point, 0.0, np.inf, tuple(parts), (-2.0, 2.0)))
    return pool_folds(per_rotation)

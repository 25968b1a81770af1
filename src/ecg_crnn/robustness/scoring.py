"""One trained model scored on the test fold under every condition of a robustness plan.

Every model sees the same corrupted records (the corruptions are seeded by condition and ecg_id), and every
condition is scored on the evaluate stage's shared patient resamples, so a comparison of two models' robustness is
paired twice over: the same noise on the same patients. A lost lead reads the training folds' mean (so exactly 0
once standardized: "this lead is missing", as models are usually told). The thresholds are the ones tuned on the
clean validation fold: what a deployed model would use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..dataset import standardize
from ..metrics import TESTED, auroc_per_class, bootstrap_figures, scored_classes, weighted_figures
from ..models import predict_proba
from .noise import NoiseSource
from .plan import Condition, RobustnessPlan
from .registry import corrupt


@dataclass(frozen=True)
class TestFold:
    """The test fold as the robustness stage needs it: physical signals (mV), labels, record ids."""

    x_mv: np.ndarray  # (N, leads, T) float32
    y: np.ndarray  # (N, classes)
    ecg_ids: np.ndarray
    fs: float
    leads: tuple[str, ...]


@dataclass(frozen=True)
class Scored:
    condition: Condition
    source: str  # where the condition's noise came from: "nstdb", "synthetic" or "none"
    figures: dict[str, float]  # the tested figures on the whole test fold
    class_auroc: np.ndarray  # (classes,) on the whole test fold
    resampled_class_auroc: np.ndarray  # (resamples, classes)


def score(
    model: torch.nn.Module,
    checkpoint: dict,
    fold: TestFold,
    condition: Condition,
    plan: RobustnessPlan,
    noise: NoiseSource,
    thresholds: np.ndarray,
    weights: np.ndarray,
    aggregate: str,
    device: torch.device,
) -> Scored:
    mean = np.asarray(checkpoint["mean"], np.float32)
    std = np.asarray(checkpoint["std"], np.float32)
    out = corrupt(
        fold.x_mv,
        fold.ecg_ids,
        condition.name,
        condition.severity,
        seed=plan.seed,
        fs=fold.fs,
        leads=fold.leads,
        noise=noise,
        snr_per=plan.snr_per,
        fill_mv=mean,
    )
    x = standardize(out.x, mean, std)
    p = predict_proba(model, x, checkpoint["eval_starts"], checkpoint["window"], aggregate, device=device)
    point, per_class = weighted_figures(
        fold.y, p, thresholds, np.ones((1, len(fold.y))), scored_classes(fold.y)
    )
    resampled, resampled_class = bootstrap_figures(fold.y, p, thresholds, weights)
    return Scored(
        condition,
        out.source,
        {k: float(point[k][0]) for k in TESTED},
        # the evaluate stage's own per-class function, so that the clean condition reproduces its figures bit for
        # bit (the weighted one with unit weights agrees only to the last bit)
        auroc_per_class(fold.y, p),
        resampled_class["auroc"],
    )

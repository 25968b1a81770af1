"""Evaluation of one trained architecture: test-fold figures with bootstrap intervals, and its cost.

Thresholds are tuned per class on the validation fold and only then applied to the test fold, which is
scored once. Every figure of the headline gets a 95% percentile interval from the shared resampling
indices, whose per-resample values are kept so that the comparison stage can pair architectures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .config import EvaluateSettings
from .dataset import StudyData
from .metrics import (
    HEADLINE,
    auprc_per_class,
    auroc_per_class,
    bootstrap_headline,
    f1_per_class,
    headline,
    interval,
    tune_thresholds,
)
from .models import build_model, count_macs, count_parameters
from .train import predict_proba


@dataclass
class Evaluation:
    metrics: dict
    thresholds: np.ndarray
    per_class: pd.DataFrame
    bootstrap: pd.DataFrame
    val_p: np.ndarray
    test_p: np.ndarray


def models_from_checkpoint(checkpoint: dict) -> list[torch.nn.Module]:
    cfg = checkpoint["model_settings"]
    models = []
    for seed in checkpoint["seeds"]:
        model = build_model(
            checkpoint["arch"],
            len(checkpoint["leads"]),
            len(checkpoint["classes"]),
            cfg["channels"],
            cfg["kernel_size"],
            cfg["hidden"],
            cfg["dropout"],
        )
        model.load_state_dict(seed["state_dict"])
        models.append(model.eval())
    return models


def ensemble_proba(models, x, starts, window, aggregate) -> np.ndarray:
    """Seeds are averaged: the probability of the study's architecture, not of one lucky seed."""
    return np.mean([predict_proba(m, x, starts, window, aggregate) for m in models], axis=0)


def cpu_latency_ms(model: torch.nn.Module, n_leads: int, starts: list[int], window: int, runs: int) -> float:
    """Median wall time of scoring one 10 s record (all its windows, batch of one record) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = model.to("cpu").eval()
        x = torch.randn(len(starts), n_leads, window)
        times = []
        with torch.no_grad():
            for i in range(runs + 3):
                t = time.perf_counter()
                torch.sigmoid(model(x)).amax(dim=0)
                if i >= 3:  # the first calls warm up allocators and kernels
                    times.append(time.perf_counter() - t)
    finally:
        torch.set_num_threads(threads)
    return float(np.median(times) * 1000)


def evaluate_model(
    checkpoint: dict, data: StudyData, indices: np.ndarray, cfg: EvaluateSettings
) -> Evaluation:
    models = models_from_checkpoint(checkpoint)
    val, test = data.splits["val"], data.splits["test"]
    val_p = ensemble_proba(models, val.x, data.eval_starts, data.window, cfg.aggregate)
    test_p = ensemble_proba(models, test.x, data.eval_starts, data.window, cfg.aggregate)
    thresholds = tune_thresholds(val.y, val_p)
    figures = headline(test.y, test_p, thresholds)
    boot = bootstrap_headline(test.y, test_p, thresholds, indices)
    metrics: dict = {}
    for key in HEADLINE:
        lo, hi = interval(boot[key].to_numpy())
        metrics.update({key: figures[key], f"{key}_lo": lo, f"{key}_hi": hi})
    model = models[0]
    per_record_windows = len(data.eval_starts)
    seeds = checkpoint["seeds"]
    metrics.update(
        {
            "params": count_parameters(model),
            "macs_per_record": count_macs(model, data.n_leads, data.window) * per_record_windows,
            "cpu_latency_ms": cpu_latency_ms(
                model, data.n_leads, data.eval_starts, data.window, cfg.latency_runs
            ),
            "train_seconds": float(sum(s["train_seconds"] for s in seeds)),
            "epochs_run": int(sum(s["epochs_run"] for s in seeds)),
            "val_macro_auroc": float(np.mean([s["best_val_macro_auroc"] for s in seeds])),
            "seeds": len(seeds),
            "test_records": int(len(test.ecg_ids)),
            "bootstrap_resamples": int(len(indices)),
        }
    )
    y = test.y.astype(bool)
    per_class = pd.DataFrame(
        {
            "class": data.classes,
            "family": [data.families.get(c, "other") for c in data.classes],
            "test_positives": y.sum(axis=0),
            "auroc": auroc_per_class(y, test_p),
            "auprc": auprc_per_class(y, test_p),
            "f1": f1_per_class(y, test_p >= thresholds),
            "threshold": thresholds,
        }
    )
    return Evaluation(metrics, thresholds, per_class, boot, val_p, test_p)

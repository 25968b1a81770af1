"""The robustness stage: one trained run scored on its test fold under every condition of params.yaml's `robustness`
section (noise at stated SNRs, baseline wander, powerline, electrode motion, muscle, lead loss, gain, time shifts),
no retraining, into robustness/WINDOWs/ARCH/fracF/rotR/seedS/:
  figures.json    per condition: the tested figures, per-class AUROC, where its noise came from
  resamples.npz   per condition: per-class AUROC under the evaluate stage's shared patient resamples
The corruptions are seeded by condition and ecg_id, so every model sees the same corrupted records.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..artifact import load_model_file, model_from_artifact
from ..atomic import atomic_dir
from ..config import Params
from ..data.labels import load_labels
from ..data.signals import SignalCache
from ..errors import EcgCrnnError
from ..layout import (
    BOOTSTRAP,
    EVALUATION,
    FILTERED,
    MODEL_FILE,
    MODELS,
    NOISE,
    SEGMENTED,
    RunKey,
    bootstrap_file,
    evaluation_dir,
    model_dir,
    robustness_dir,
    rotation_dir,
)
from ..models import pick_device
from ..robustness.plan import parse_plan
from ..robustness.scoring import TestFold, score
from ..robustness.sources import open_noise_source


@dataclass(frozen=True)
class Paths:
    filtered: Path = FILTERED
    segmented: Path = SEGMENTED
    models: Path = MODELS
    evaluation: Path = EVALUATION
    bootstrap: Path = BOOTSTRAP
    out: Path | None = None  # default: robustness/WINDOWs/ARCH/fracF/rotR/seedS
    noise: Path = NOISE  # the noise stage's nstdb copy, read when robustness.noise_source is set


def load_test_fold(paths: Paths, rotation: int) -> TestFold:
    table, classes = load_labels(paths.filtered)
    split = pd.read_csv(rotation_dir(paths.segmented, rotation) / "split.csv")
    rows = split.loc[split["split"] == "test", "row"].to_numpy()
    cache = SignalCache.open(paths.filtered)
    y = table.loc[rows, classes].to_numpy(np.float32)
    return TestFold(
        cache.physical(rows), y, table.loc[rows, "ecg_id"].to_numpy(), cache.fs, tuple(cache.leads)
    )


def _thresholds(folder: Path, classes: list[str]) -> tuple[np.ndarray, str]:
    try:
        info = json.loads((folder / "thresholds.json").read_text())
    except FileNotFoundError:
        raise EcgCrnnError(
            f"{folder / 'thresholds.json'}: not found (run the evaluate stage first)"
        ) from None
    return np.array([info["thresholds"][c] for c in classes]), info.get("aggregate", "max")


def run(params: Params, key: RunKey, paths: Paths = Paths()) -> dict:
    plan = parse_plan(params.robustness.model_dump())  # every condition checked before any work
    noise = open_noise_source(paths.noise if plan.noise_source is not None else None)
    model_path = model_dir(key, paths.models) / MODEL_FILE
    checkpoint = load_model_file(model_path)
    thresholds, aggregate = _thresholds(evaluation_dir(key, paths.evaluation), checkpoint["classes"])
    fold = load_test_fold(paths, key.rotation)
    boot = np.load(bootstrap_file(paths.bootstrap, key.rotation))
    if not np.array_equal(boot["ecg_id"], fold.ecg_ids):
        raise EcgCrnnError(f"{bootstrap_file(paths.bootstrap, key.rotation)}: drawn for another test fold")
    device = pick_device(params.train.device)
    model = model_from_artifact(checkpoint).to(device)
    figures, resamples, t0 = {}, {}, time.perf_counter()
    for condition in plan.conditions:
        s = score(
            model, checkpoint, fold, condition, plan, noise, thresholds, boot["weights"], aggregate, device
        )
        figures[condition.key] = {
            "corruption": condition.name,
            "severity": condition.severity,
            "source": s.source,
            **s.figures,
            "class_auroc": [None if not np.isfinite(v) else float(v) for v in s.class_auroc],
        }
        resamples[condition.key] = s.resampled_class_auroc.astype(np.float32)
    out = Path(paths.out or robustness_dir(key))
    with atomic_dir(out) as tmp:
        (tmp / "figures.json").write_text(json.dumps({"conditions": figures}, indent=2) + "\n")
        with open(tmp / "resamples.npz", "wb") as f:
            np.savez_compressed(f, **resamples)
    print(
        f"robustness {key.arch} {key.window:g} s {key.run}: {len(figures)} conditions in "
        f"{time.perf_counter() - t0:.0f} s ({noise.name} noise) -> {out}",
        file=sys.stderr,
    )
    return figures

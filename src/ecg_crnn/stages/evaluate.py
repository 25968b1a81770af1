"""The evaluate stage: one trained run's thresholds (tuned on the validation fold), its test figures and their
patient resamples, into evaluation/WINDOWs/ARCH/fracF/rotR/seedS.

Outputs: metrics.json, thresholds.json, per_class.csv, resamples.npz (every tested figure under each shared
patient resample, and per-class AUROC), predictions.npz (the validation and test folds' scores).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..artifact import load_model_file
from ..atomic import atomic_path, write_json
from ..config import Params
from ..dataset import load_study_data
from ..errors import EcgCrnnError
from ..evaluation import evaluate_model
from ..layout import (
    BOOTSTRAP,
    FILTERED,
    MODEL_FILE,
    SEGMENTED,
    RunKey,
    bootstrap_file,
    evaluation_dir,
    model_dir,
    window_name,
)
from ..metrics import TESTED


@dataclass(frozen=True)
class Paths:
    filtered: Path = FILTERED
    segmented: Path = SEGMENTED
    model: Path | None = None  # default: models/WINDOWs/ARCH/fracF/rotR/seedS/model.pt
    bootstrap: Path = BOOTSTRAP  # the bootstrap stage's folder: one file per rotation
    out: Path | None = None  # default: evaluation/WINDOWs/ARCH/fracF/rotR/seedS


def _save_npz(path: Path, **arrays) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: np.savez would append ".npz"
        np.savez_compressed(f, **arrays)


def run(params: Params, key: RunKey, paths: Paths = Paths()) -> dict:
    model_path = Path(paths.model or model_dir(key) / MODEL_FILE)
    out_dir = Path(paths.out or evaluation_dir(key))
    checkpoint = load_model_file(model_path)
    expected = (key.arch, float(key.window), key.seed, key.rotation, float(key.fraction))
    found = tuple(checkpoint.get(k) for k in ("arch", "window_s", "seed", "rotation", "fraction"))
    if found != expected:
        raise EcgCrnnError(
            f"{model_path}: holds {found}, not (arch, window, seed, rotation, fraction) {expected}"
        )
    data = load_study_data(paths.filtered, paths.segmented, key.window, ("val", "test"), key.rotation)
    if checkpoint["classes"] != data.classes:
        raise EcgCrnnError(
            f"{model_path}: trained on other classes than {paths.filtered} holds; re-run the train stage"
        )
    boot_file = bootstrap_file(paths.bootstrap, key.rotation)
    try:
        boot = np.load(boot_file)
    except FileNotFoundError:
        raise EcgCrnnError(f"{boot_file}: not found (run the bootstrap stage first)") from None
    if not np.array_equal(boot["ecg_id"], data.splits["test"].ecg_ids):
        raise EcgCrnnError(
            f"{boot_file}: drawn for another test fold ({len(boot['ecg_id'])} records, this one has "
            f"{len(data.splits['test'].ecg_ids)}); re-run the bootstrap stage"
        )
    result = evaluate_model(checkpoint, data, boot["weights"], params.evaluate, params.train.device)
    result.metrics["bootstrap_acceptance"] = float(boot["acceptance"])
    write_json(out_dir / "metrics.json", result.metrics)
    write_json(
        out_dir / "thresholds.json",
        {
            "aggregate": params.evaluate.aggregate,
            "tuned_on": "validation fold",
            "thresholds": dict(zip(data.classes, result.thresholds.tolist(), strict=True)),
        },
    )
    with atomic_path(out_dir / "per_class.csv") as tmp:
        result.per_class.to_csv(tmp, index=False)
    _save_npz(
        out_dir / "resamples.npz",
        **{k: result.resampled[k] for k in TESTED},
        class_auroc=result.resampled_class["auroc"].astype(np.float32),
        class_auprc=result.resampled_class["auprc"].astype(np.float32),
    )
    _save_npz(
        out_dir / "predictions.npz",
        classes=np.array(data.classes),
        test_ecg_id=data.splits["test"].ecg_ids,
        test_y=data.splits["test"].y,
        test_p=result.test_p,
        val_y=data.splits["val"].y,
        val_p=result.val_p,
    )
    m = result.metrics
    print(
        f"evaluate {key.arch} {window_name(key.window)} {key.run}: test macro-AUROC {m['macro_auroc']:.4f}, "
        f"micro-F1 {m['micro_f1']:.4f} (validation macro-AUROC {m['val_macro_auroc']:.4f})",
        file=sys.stderr,
    )
    return m

"""The study's stages as files in, files out: train, bootstrap, evaluate, cost.

Each function reads its inputs, calls the pure library (train.py, metrics.py, evaluate.py) and writes its
outputs atomically. The CLI, dvc.yaml and the Prefect flows all call these; none re-implements a step.

One training run is one (architecture, window, seed): its own DVC stage, model file and evaluation, so
runs can be spread over machines and each seed is reported as the model it is. Outputs are deterministic
(the same inputs give the same bytes) except `timing.json` and `cost.json`, which hold wall-clock times.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .atomic import atomic_path, write_json, write_text
from .config import EvaluateSettings, ModelSettings, Params
from .data.filtering import load_labels
from .dataset import StudyData, load_study_data
from .errors import EcgCrnnError
from .evaluate import architecture_cost, evaluate_model
from .metrics import TESTED, BootstrapError, patient_weights
from .models import get_architecture
from .train import TrainResult, train

MODEL_FILE = "model.pt"
MODEL_FORMAT = 2  # model.pt: tensors and plain data only, one seed (format 1 held every seed, as a pickle)
RESUME_ROOT_ENV = "ECG_CRNN_RESUME_ROOT"


def save_torch(path: Path, obj) -> None:
    """torch.save, atomically and byte-for-byte reproducible: saved through a file object, the zip archive
    inside is named "archive" (saved to a path, torch names it after the file, here a random temporary name,
    and the same model would hash differently on every run, defeating DVC's comparisons and run-cache)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)


def window_name(window_s: float) -> str:
    return f"{window_s:g}s"


def default_resume_dir(out_dir: Path) -> Path:
    """Where an unfinished run keeps its checkpoint: .resume/<out_dir>, or under $ECG_CRNN_RESUME_ROOT (a
    directory several machines share, so a run retried on another worker resumes instead of restarting)."""
    root = Path(os.environ.get(RESUME_ROOT_ENV) or ".resume")
    out = Path(out_dir)
    return root / (out.relative_to(out.anchor) if out.is_absolute() else out)


def model_payload(
    arch: str, window_s: float, data: StudyData, model_cfg: ModelSettings, params: Params, r: TrainResult
) -> dict:
    """A self-contained trained model: the weights plus what inference needs to reproduce the preprocessing
    (classes, leads, standardization, window layout). Only tensors and plain data, so that
    `torch.load(..., weights_only=True)` reads it (never an arbitrary pickle)."""
    train_settings = {k: v for k, v in asdict(params.train).items() if k not in ("seeds", "device")}
    return {
        "format": MODEL_FORMAT,
        "arch": arch,
        "window_s": float(window_s),
        "seed": int(r.seed),
        "model_settings": asdict(model_cfg),
        "train_settings": train_settings,
        "classes": list(data.classes),
        "families": dict(data.families),
        "leads": list(data.leads),
        "fs": float(data.fs),
        "window": int(data.window),
        "stride": int(data.stride),
        "eval_starts": [int(s) for s in data.eval_starts],
        "mean": [float(v) for v in data.mean],
        "std": [float(v) for v in data.std],
        "state_dict": r.state_dict,
        "best_epoch": int(r.best_epoch),
        "best_val_macro_auroc": float(r.best_val_macro_auroc),
        "epochs_run": len(r.history),
        "cooldown_from_epoch": int(r.cooldown_from_epoch),
        "stopped_early": bool(r.stopped_early),
    }


def _history_csv(history: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["epoch", "train_loss", "val_macro_auroc", "lr"])
    for r in history:
        writer.writerow([r["epoch"], repr(r["train_loss"]), repr(r["val_macro_auroc"]), repr(r["lr"])])
    return buf.getvalue()


def run_train(
    arch: str,
    window_s: float,
    seed: int,
    filtered: Path,
    segmented: Path,
    out_dir: Path,
    params: Params,
    resume_dir: Path | None = None,
    progress: bool = True,
    on_epoch=None,
) -> dict:
    """Train one (architecture, window, seed). An interrupted run resumes from `resume_dir`.

    Writes model.pt, history.csv (the curves: one row per epoch) and timing.json (seconds per epoch)."""
    get_architecture(arch)  # an unknown name fails here, before anything is created
    if seed not in params.train.seeds:
        print(f"train {arch}: seed {seed} is not in train.seeds {params.train.seeds}", file=sys.stderr)
    out_dir = Path(out_dir)
    resume_dir = Path(resume_dir) if resume_dir is not None else default_resume_dir(out_dir)
    data = load_study_data(filtered, segmented, window_s, splits=("train", "val"))
    resume_dir.mkdir(parents=True, exist_ok=True)
    result = train(
        arch,
        data,
        params.models,
        params.train,
        seed,
        checkpoint=resume_dir / "checkpoint.pt",
        on_epoch=on_epoch,
        progress=progress,
    )
    save_torch(out_dir / MODEL_FILE, model_payload(arch, window_s, data, params.models, params, result))
    write_text(out_dir / "history.csv", _history_csv(result.history))
    write_json(
        out_dir / "timing.json",
        {
            "train_seconds": result.train_seconds,
            "epoch_seconds": [r["seconds"] for r in result.history],
            "device": "cuda" if torch.cuda.is_available() and params.train.device != "cpu" else "cpu",
        },
    )
    shutil.rmtree(resume_dir, ignore_errors=True)  # the run is complete: nothing left to resume
    summary = {
        "arch": arch,
        "window_s": window_s,
        "seed": seed,
        "best_val_macro_auroc": result.best_val_macro_auroc,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "train_seconds": result.train_seconds,
    }
    print(
        f"train {arch} {window_name(window_s)} seed {seed}: best validation macro-AUROC "
        f"{result.best_val_macro_auroc:.4f} at epoch {result.best_epoch} of {len(result.history)}, "
        f"{result.train_seconds:.0f} s -> {out_dir}",
        file=sys.stderr,
    )
    return summary


def _test_rows(segmented: Path, filtered: Path) -> tuple[pd.DataFrame, list[str]]:
    table, classes = load_labels(filtered)
    split = pd.read_csv(Path(segmented) / "split.csv")
    rows = split.loc[split["split"] == "test", "row"].to_numpy()
    return table.loc[rows].reset_index(drop=True), classes


def run_bootstrap(segmented: Path, filtered: Path, out: Path, cfg: EvaluateSettings) -> np.ndarray:
    """One set of patient resamples of the test fold that every evaluation uses (so comparisons are paired):
    integer weights per test record, in the order of split.csv's test rows."""
    test, classes = _test_rows(segmented, filtered)
    y = test[classes].to_numpy(bool)
    try:
        weights, kept = patient_weights(test["patient_id"].to_numpy(), y, cfg.bootstrap, cfg.bootstrap_seed)
    except BootstrapError as exc:
        raise EcgCrnnError(f"bootstrap: {exc}") from None
    with atomic_path(out) as tmp, open(tmp, "wb") as f:  # a file object: np.savez would append ".npz"
        np.savez_compressed(
            f, weights=weights, ecg_id=test["ecg_id"].to_numpy(), seed=cfg.bootstrap_seed, acceptance=kept
        )
    print(
        f"bootstrap: {len(weights)} resamples of {test['patient_id'].nunique()} test patients "
        f"({len(test)} records; {kept:.0%} of the draws kept every scored class) -> {out}",
        file=sys.stderr,
    )
    return weights


def load_model_file(path: Path) -> dict:
    """A trained model, read as tensors and plain data only: a model file from a DVC remote or a shared
    bucket is never unpickled as arbitrary code."""
    path = Path(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise EcgCrnnError(f"{path}: no trained model (run the train stage first)") from None
    except Exception as exc:  # an old pickle, a truncated or foreign file
        raise EcgCrnnError(
            f"{path}: not a model file this version reads ({type(exc).__name__}: {str(exc)[:200]}); "
            "re-run its train stage"
        ) from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != MODEL_FORMAT:
        raise EcgCrnnError(f"{path}: not a model file of format {MODEL_FORMAT}; re-run its train stage")
    return checkpoint


def run_evaluate(
    arch: str,
    window_s: float,
    seed: int,
    filtered: Path,
    segmented: Path,
    model_path: Path,
    bootstrap_path: Path,
    out_dir: Path,
    params: Params,
) -> dict:
    checkpoint = load_model_file(model_path)
    expected = (arch, float(window_s), seed)
    found = (checkpoint["arch"], checkpoint["window_s"], checkpoint["seed"])
    if found != expected:
        raise EcgCrnnError(f"{model_path}: holds {found}, not (arch, window, seed) {expected}")
    data = load_study_data(filtered, segmented, window_s, splits=("val", "test"))
    if checkpoint["classes"] != data.classes:
        raise EcgCrnnError(
            f"{model_path}: trained on other classes than {filtered} holds; re-run the train stage"
        )
    boot = np.load(bootstrap_path)
    if not np.array_equal(boot["ecg_id"], data.splits["test"].ecg_ids):
        raise EcgCrnnError(
            f"{bootstrap_path}: drawn for another test fold ({len(boot['ecg_id'])} records, this one has "
            f"{len(data.splits['test'].ecg_ids)}); re-run the bootstrap stage"
        )
    result = evaluate_model(checkpoint, data, boot["weights"], params.evaluate, params.train.device)
    result.metrics["bootstrap_acceptance"] = float(boot["acceptance"])
    out_dir = Path(out_dir)
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
    with atomic_path(out_dir / "resamples.npz") as tmp, open(tmp, "wb") as f:
        np.savez_compressed(
            f,
            **{k: result.resampled[k] for k in TESTED},
            class_auroc=result.resampled_class_auroc.astype(np.float32),
        )
    with atomic_path(out_dir / "predictions.npz") as tmp, open(tmp, "wb") as f:
        np.savez_compressed(
            f,
            classes=np.array(data.classes),
            test_ecg_id=data.splits["test"].ecg_ids,
            test_y=data.splits["test"].y,
            test_p=result.test_p,
            val_y=data.splits["val"].y,
            val_p=result.val_p,
        )
    m = result.metrics
    print(
        f"evaluate {arch} {window_name(window_s)} seed {seed}: test macro-AUROC {m['macro_auroc']:.4f}, "
        f"micro-F1 {m['micro_f1']:.4f} (validation macro-AUROC {m['val_macro_auroc']:.4f})",
        file=sys.stderr,
    )
    return m


def run_cost(arch: str, window_s: float, filtered: Path, segmented: Path, out: Path, params: Params) -> dict:
    """Parameters, multiply-accumulates and CPU latency per record of one architecture at one window."""
    import json

    from .data.segment import window_layout

    get_architecture(arch)
    layout = json.loads((Path(segmented) / "layout.json").read_text())
    classes = json.loads((Path(filtered) / "classes.json").read_text())["classes"]
    leads = json.loads((Path(filtered) / "signals.json").read_text())["leads"]
    window, starts = window_layout(layout, window_s)
    cost = architecture_cost(
        arch, len(leads), len(classes), params.models, window, starts, params.evaluate.latency_runs
    )
    cost.update({"arch": arch, "window_s": float(window_s)})
    write_json(out, cost)
    return cost

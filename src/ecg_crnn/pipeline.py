"""The study's stages as files in, files out: train, bootstrap, evaluate.

Each function reads its inputs, calls the pure library (train.py, metrics.py, evaluate.py) and writes its
outputs atomically. The CLI, dvc.yaml and the Prefect flows all call these; none re-implements a step.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .atomic import atomic_path, write_json
from .config import EvaluateSettings, ModelSettings, Params, TrainSettings
from .dataset import StudyData, load_study_data
from .errors import EcgCrnnError
from .evaluate import evaluate_model
from .metrics import bootstrap_indices
from .train import TrainResult, train

MODEL_FILE = "model.pt"


def _dvclive_logger(directory: Path, seeds: list[int]):
    """DVCLive, one step per epoch; with several seeds each seed's curves get their own prefix."""
    from dvclive import Live

    live = Live(str(directory), save_dvc_exp=False, dvcyaml=False)

    def for_seed(seed: int):
        prefix = f"seed{seed}/" if len(seeds) > 1 else ""

        def log(record: dict) -> None:
            live.step = record["epoch"]
            for key in ("train_loss", "val_macro_auroc", "lr"):
                live.log_metric(prefix + key, record[key])
            live.make_summary()

        return log

    return live, for_seed


def checkpoint_payload(
    arch: str, data: StudyData, model_cfg: ModelSettings, results: list[TrainResult]
) -> dict:
    """A self-contained trained model: weights of every seed plus what inference needs to reproduce the
    preprocessing (classes, leads, standardization, window layout)."""
    return {
        "arch": arch,
        "model_settings": asdict(model_cfg),
        "classes": data.classes,
        "families": data.families,
        "leads": data.leads,
        "fs": data.fs,
        "window": data.window,
        "stride": data.stride,
        "eval_starts": data.eval_starts,
        "mean": data.mean.tolist(),
        "std": data.std.tolist(),
        "seeds": [
            {
                "seed": r.seed,
                "state_dict": r.state_dict,
                "best_epoch": r.best_epoch,
                "best_val_macro_auroc": r.best_val_macro_auroc,
                "train_seconds": r.train_seconds,
                "epochs_run": len(r.history),
                "stopped_early": r.stopped_early,
            }
            for r in results
        ],
    }


def run_train(
    arch: str,
    filtered: Path,
    segmented: Path,
    out_dir: Path,
    resume_dir: Path,
    params: Params,
    progress: bool = True,
) -> dict:
    """Train `arch` for every seed of train.seeds. Interrupted runs resume from `resume_dir`."""
    out_dir, resume_dir = Path(out_dir), Path(resume_dir)
    data = load_study_data(filtered, segmented, splits=("train", "val"))
    cfg: TrainSettings = params.train
    resume_dir.mkdir(parents=True, exist_ok=True)
    live, logger_for = _dvclive_logger(out_dir / "dvclive", cfg.seeds)
    results = []
    for seed in cfg.seeds:
        done = resume_dir / f"seed{seed}.done.pt"
        log = logger_for(seed)
        if done.is_file():  # finished before an interruption of a later seed: replay its curves
            result = torch.load(done, weights_only=False)
            for record in result.history:
                log(record)
        else:
            result = train(
                arch,
                data,
                params.models,
                cfg,
                seed,
                checkpoint=resume_dir / f"seed{seed}.pt",
                on_epoch=log,
                progress=progress,
            )
            with atomic_path(done) as tmp:
                torch.save(result, tmp)
        results.append(result)
    summary = {
        "arch": arch,
        "best_val_macro_auroc": float(np.mean([r.best_val_macro_auroc for r in results])),
        "best_epoch": [r.best_epoch for r in results],
        "train_seconds": float(sum(r.train_seconds for r in results)),
    }
    live.summary.update({k: v for k, v in summary.items() if k != "arch"})
    live.make_summary()
    live.end()
    with atomic_path(out_dir / MODEL_FILE) as tmp:
        torch.save(checkpoint_payload(arch, data, params.models, results), tmp)
    write_json(out_dir / "history.json", {f"seed{r.seed}": r.history for r in results})
    shutil.rmtree(resume_dir, ignore_errors=True)  # the run is complete: nothing left to resume
    print(
        f"train {arch}: best validation macro-AUROC {summary['best_val_macro_auroc']:.4f} "
        f"in {summary['train_seconds']:.0f} s -> {out_dir}",
        file=sys.stderr,
    )
    return summary


def run_bootstrap(segmented: Path, out: Path, cfg: EvaluateSettings) -> np.ndarray:
    """One set of test-fold resampling indices that every architecture's evaluation uses (paired tests)."""
    split = pd.read_csv(Path(segmented) / "split.csv")
    n_test = int((split["split"] == "test").sum())
    indices = bootstrap_indices(n_test, cfg.bootstrap, cfg.bootstrap_seed)
    with (
        atomic_path(out) as tmp,
        open(tmp, "wb") as f,
    ):  # a file object: np.savez would append ".npz" to a path
        np.savez_compressed(f, indices=indices, seed=cfg.bootstrap_seed)
    return indices


def load_model_file(path: Path) -> dict:
    try:
        return torch.load(Path(path), map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise EcgCrnnError(f"{path}: no trained model (run the train stage first)") from None


def run_evaluate(
    arch: str,
    filtered: Path,
    segmented: Path,
    model_path: Path,
    bootstrap_path: Path,
    out_dir: Path,
    cfg: EvaluateSettings,
) -> dict:
    checkpoint = load_model_file(model_path)
    if checkpoint["arch"] != arch:
        raise EcgCrnnError(f"{model_path}: holds {checkpoint['arch']!r}, not {arch!r}")
    data = load_study_data(filtered, segmented, splits=("val", "test"))
    if checkpoint["classes"] != data.classes:
        raise EcgCrnnError(
            f"{model_path}: trained on other classes than {filtered} holds; re-run the train stage"
        )
    indices = np.load(bootstrap_path)["indices"]
    if indices.shape[1] != len(data.splits["test"].ecg_ids):
        raise EcgCrnnError(
            f"{bootstrap_path}: drawn for {indices.shape[1]} test records, the test fold has "
            f"{len(data.splits['test'].ecg_ids)}; re-run the bootstrap stage"
        )
    result = evaluate_model(checkpoint, data, indices, cfg)
    out_dir = Path(out_dir)
    write_json(out_dir / "metrics.json", result.metrics)
    write_json(
        out_dir / "thresholds.json",
        {
            "aggregate": cfg.aggregate,
            "thresholds": dict(zip(data.classes, result.thresholds.tolist(), strict=True)),
        },
    )
    with atomic_path(out_dir / "per_class.csv") as tmp:
        result.per_class.to_csv(tmp, index=False)
    with atomic_path(out_dir / "bootstrap.csv") as tmp:
        result.bootstrap.to_csv(tmp, index=False)
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
        f"evaluate {arch}: test macro-AUROC {m['macro_auroc']:.4f} "
        f"[{m['macro_auroc_lo']:.4f}, {m['macro_auroc_hi']:.4f}], micro-F1 {m['micro_f1']:.4f}",
        file=sys.stderr,
    )
    return m


def run_search_trials(
    filtered: Path, segmented: Path, search_dir: Path, params: Params, progress: bool = False
) -> int:
    """One worker's share of the search: trials until the shared study has search.trials of them."""
    from .search import load_study, run_trials

    study = load_study(params.search, Path(search_dir))  # created beforehand by the flow, never here
    data = load_study_data(filtered, segmented, splits=("train", "val"))
    return run_trials(study, data, params, progress)

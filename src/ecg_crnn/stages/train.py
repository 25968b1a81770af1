"""The train stage: one (architecture, window, seed) trained, resumable, into models/WINDOWs/ARCH/seedSEED.

Writes model.pt (the best validation epoch's weights with everything inference needs; see artifact.py),
history.csv (the curves: one row per epoch) and timing.json (seconds per epoch: the one output that is not
reproducible byte for byte). An interrupted run resumes from its checkpoint, which lives outside DVC's outputs
(.resume/OUT, or under $ECG_CRNN_RESUME_ROOT) so that the stage keeps DVC's run-cache. The run trains with its
(architecture, window)'s recipe (recipe.py): its entry of recipe.yaml, or params.yaml's shared default; the model
file records which, and the resume fingerprint covers it (a checkpoint of another recipe is never resumed).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from ..artifact import model_payload, save_torch
from ..atomic import write_json, write_text
from ..config import Params
from ..dataset import load_study_data
from ..layout import FILTERED, MODEL_FILE, SEGMENTED, RunKey, model_dir, window_name
from ..recipe import Recipe, load_recipes, recipe_for
from ..registry import get_architecture
from ..training import train

RESUME_ROOT_ENV = "ECG_CRNN_RESUME_ROOT"


def default_resume_dir(out_dir: Path) -> Path:
    """Where an unfinished run keeps its checkpoint: .resume/<out_dir>, or under $ECG_CRNN_RESUME_ROOT (a
    directory several machines share, so a run retried on another worker resumes instead of restarting)."""
    root = Path(os.environ.get(RESUME_ROOT_ENV) or ".resume")
    out = Path(out_dir)
    return root / (out.relative_to(out.anchor) if out.is_absolute() else out)


@dataclass(frozen=True)
class Paths:
    filtered: Path = FILTERED
    segmented: Path = SEGMENTED
    out: Path | None = None  # default: models/WINDOWs/ARCH/seedSEED
    resume: Path | None = None  # default: default_resume_dir(out)
    recipe: Path | None = None  # recipe.yaml; None: params.yaml's shared default for every architecture


def run_recipe(params: Params, key: RunKey, recipe_file: Path | None) -> Recipe:
    """This run's recipe: its (architecture, window) entry of recipe.yaml, else params.yaml's default."""
    recipes = load_recipes(recipe_file) if recipe_file is not None else None
    return recipe_for(recipes, params, key.arch, key.window)


def history_csv(history: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["epoch", "train_loss", "val_macro_auroc", "lr"])
    for r in history:
        writer.writerow([r["epoch"], repr(r["train_loss"]), repr(r["val_macro_auroc"]), repr(r["lr"])])
    return buf.getvalue()


def run(params: Params, key: RunKey, paths: Paths = Paths(), progress: bool = True, on_epoch=None) -> dict:
    get_architecture(key.arch)  # an unknown name fails here, before anything is created
    if key.seed not in params.train.seeds:
        print(
            f"train {key.arch}: seed {key.seed} is not in train.seeds {params.train.seeds}", file=sys.stderr
        )
    out_dir = Path(paths.out or model_dir(key))
    resume_dir = Path(paths.resume or default_resume_dir(out_dir))
    recipe = run_recipe(params, key, paths.recipe)
    model_cfg, train_cfg = recipe.settings(params)
    data = load_study_data(paths.filtered, paths.segmented, key.window, splits=("train", "val"))
    resume_dir.mkdir(parents=True, exist_ok=True)
    result = train(
        key.arch,
        data,
        model_cfg,
        train_cfg,
        key.seed,
        checkpoint=resume_dir / "checkpoint.pt",
        on_epoch=on_epoch,
        progress=progress,
    )
    save_torch(out_dir / MODEL_FILE, model_payload(key.arch, key.window, data, params, result, recipe))
    write_text(out_dir / "history.csv", history_csv(result.history))
    write_json(
        out_dir / "timing.json",
        {
            "train_seconds": result.train_seconds,
            "epoch_seconds": [r["seconds"] for r in result.history],
            "device": "cuda" if torch.cuda.is_available() and params.train.device != "cpu" else "cpu",
        },
    )
    shutil.rmtree(resume_dir, ignore_errors=True)  # the run is complete: nothing left to resume
    print(
        f"train {key.arch} {window_name(key.window)} seed {key.seed}: best validation macro-AUROC "
        f"{result.best_val_macro_auroc:.4f} at epoch {result.best_epoch} of {len(result.history)}, "
        f"{result.train_seconds:.0f} s ({'tuned' if recipe.tuned else 'default'} recipe: lr {recipe.lr:.3g}, "
        f"dropout {recipe.dropout:.3g}, weight decay {recipe.weight_decay:.3g}) -> {out_dir}",
        file=sys.stderr,
    )
    return {
        "arch": key.arch,
        "window_s": key.window,
        "seed": key.seed,
        "best_val_macro_auroc": result.best_val_macro_auroc,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "train_seconds": result.train_seconds,
        "recipe": recipe.as_dict(),
    }

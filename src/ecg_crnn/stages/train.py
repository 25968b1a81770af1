"""The train stage: one run (architecture, window, share of the training data, rotation of the folds, seed) trained,
resumable, into models/WINDOWs/ARCH/fracF/rotR/seedS.

Writes model.pt (the best validation epoch's weights with everything inference needs; see artifact.py),
history.csv (the curves: one row per epoch) and timing.json (seconds per epoch: the one output that is not
reproducible byte for byte). An interrupted run resumes from its checkpoint, which lives outside DVC's outputs so
that the stage keeps DVC's run-cache: in a private folder named by the run and its fingerprint (resume.py) under
the resume base (`--resume-dir`, else $ECG_CRNN_RESUME_ROOT, else .resume). Its files, and only they, are removed
once the outputs are written. The run trains with its (architecture, window)'s recipe (recipe.py): its entry of
recipe.yaml, or params.yaml's shared default; the model file records which, and the resume fingerprint covers it
(a checkpoint of another recipe is never resumed).
"""

from __future__ import annotations

import csv
import io
import os
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
from ..resume import ResumeSlot, claim, others
from ..training import fingerprint_of, run_provenance, train

RESUME_ROOT_ENV = "ECG_CRNN_RESUME_ROOT"


def resume_base(named: Path | None = None) -> Path:
    """Where unfinished runs keep their checkpoints: the folder named, else $ECG_CRNN_RESUME_ROOT (a directory
    several machines share, so a run retried on another worker resumes instead of restarting), else .resume."""
    return Path(named or os.environ.get(RESUME_ROOT_ENV) or ".resume")


def run_label(key: RunKey) -> str:
    return f"{key.arch}-{window_name(key.window)}-frac{float(key.fraction)}-rot{key.rotation}-seed{key.seed}"


@dataclass(frozen=True)
class Paths:
    filtered: Path = FILTERED
    segmented: Path = SEGMENTED
    out: Path | None = None  # default: models/WINDOWs/ARCH/fracF/rotR/seedS
    resume: Path | None = None  # the resume base; default: resume_base()
    recipe: Path | None = None  # recipe.yaml; None: params.yaml's shared default for every architecture


def run_recipe(params: Params, key: RunKey, recipe_file: Path | None) -> Recipe:
    """This run's recipe: its (architecture, window) entry of recipe.yaml, else params.yaml's default."""
    recipes = load_recipes(recipe_file) if recipe_file is not None else None
    return recipe_for(recipes, params, key.arch, key.window)


def history_csv(history: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    columns = ["epoch", "train_loss", "val_macro_auroc", "train_macro_auroc", "lr"]
    writer.writerow(columns)
    for r in history:
        writer.writerow([r["epoch"], *(repr(r.get(c, float("nan"))) for c in columns[1:])])
    return buf.getvalue()


def _claim_slot(key: RunKey, model_cfg, train_cfg, data, base: Path) -> ResumeSlot:
    """This attempt's hold on the run's checkpoint; when there is none to resume, the unfinished checkpoints of
    the same run from other settings (its recipe included), code or data are named (and left alone: another
    experiment may own them)."""
    provenance = run_provenance(key.arch, key.seed, model_cfg, train_cfg, data)
    fingerprint = fingerprint_of(provenance)
    slot = claim(base, run_label(key), fingerprint, provenance)
    if not slot.checkpoint.is_file():
        for other in others(base, run_label(key), fingerprint, provenance):
            print(f"train {run_label(key)}: not resuming {base}/{other}; starting afresh", file=sys.stderr)
    return slot


def run(params: Params, key: RunKey, paths: Paths = Paths(), progress: bool = True, on_epoch=None) -> dict:
    get_architecture(key.arch)  # an unknown name fails here, before anything is created
    if key.seed not in params.train.seeds:
        print(
            f"train {key.arch}: seed {key.seed} is not in train.seeds {params.train.seeds}", file=sys.stderr
        )
    out_dir = Path(paths.out or model_dir(key))
    data = load_study_data(
        paths.filtered, paths.segmented, key.window, ("train", "val"), key.rotation, key.fraction
    )
    recipe = run_recipe(params, key, paths.recipe)
    model_cfg, train_cfg = recipe.settings(params)
    slot = _claim_slot(key, model_cfg, train_cfg, data, resume_base(paths.resume))
    result = train(
        key.arch,
        data,
        model_cfg,
        train_cfg,
        key.seed,
        checkpoint=slot,
        on_epoch=on_epoch,
        progress=progress,
    )
    save_torch(out_dir / MODEL_FILE, model_payload(key, data, params, result, recipe))
    write_text(out_dir / "history.csv", history_csv(result.history))
    write_json(
        out_dir / "timing.json",
        {
            "train_seconds": result.train_seconds,
            "epoch_seconds": [r["seconds"] for r in result.history],
            "device": "cuda" if torch.cuda.is_available() and params.train.device != "cpu" else "cpu",
        },
    )
    slot.finish()  # the run is complete: its checkpoint goes, and nothing else
    print(
        f"train {key.arch} {window_name(key.window)} {key.run}: best validation macro-AUROC "
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

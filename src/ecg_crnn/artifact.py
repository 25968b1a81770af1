"""The model file: what a trained run is, on disk, for evaluation, prediction and export.

model.pt is a self-contained trained model: the weights plus what inference needs to reproduce the preprocessing
(classes, leads, standardization, window layout) and how it was trained. Only tensors and plain data, saved and
loaded so that `torch.load(..., weights_only=True)` reads it: a model file from a DVC remote or a shared bucket is
never unpickled as arbitrary code. Resume checkpoints go through the same two functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .atomic import atomic_path
from .config import ModelSettings, Params
from .dataset import StudyData
from .errors import EcgCrnnError
from .models import CRNN, build_model

# only the type: evaluation, which reads model files, does not depend on reading recipe.yaml
if TYPE_CHECKING:
    from .recipe import Recipe

MODEL_FORMAT = 2  # model.pt: tensors and plain data only, one seed (format 1 held every seed, as a pickle)


def save_torch(path: Path, obj) -> None:
    """torch.save, atomically and byte-for-byte reproducible: saved through a file object, the zip archive
    inside is named "archive" (saved to a path, torch names it after the file, here a random temporary name,
    and the same model would hash differently on every run, defeating DVC's comparisons and run-cache)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)


def load_torch(path: Path):
    """Tensors and plain data only (never an arbitrary pickle), on the CPU."""
    return torch.load(path, map_location="cpu", weights_only=True)


def model_payload(key, data: StudyData, params: Params, result, recipe: Recipe) -> dict:
    """The file's content for one trained run (`key`: layout.RunKey, `result`: training.TrainResult), trained
    with `recipe`."""
    model_cfg, train_cfg = recipe.settings(params)
    train_settings = {k: v for k, v in train_cfg.model_dump().items() if k not in ("seeds", "device")}
    return {
        "format": MODEL_FORMAT,
        "arch": key.arch,
        "window_s": float(key.window),
        "seed": int(result.seed),
        "rotation": int(key.rotation),
        "fraction": float(key.fraction),
        "train_records": len(data.splits["train"].ecg_ids),
        "model_settings": model_cfg.model_dump(),
        "train_settings": {**train_settings, "recipe": recipe.as_dict()},
        "classes": list(data.classes),
        "families": dict(data.families),
        "leads": list(data.leads),
        "fs": float(data.fs),
        "window": int(data.window),
        "stride": int(data.stride),
        "eval_starts": [int(s) for s in data.eval_starts],
        "mean": [float(v) for v in data.mean],
        "std": [float(v) for v in data.std],
        "state_dict": result.state_dict,
        "best_epoch": int(result.best_epoch),
        "best_val_macro_auroc": float(result.best_val_macro_auroc),
        "epochs_run": len(result.history),
        "cooldown_from_epoch": int(result.cooldown_from_epoch),
        "stopped_early": bool(result.stopped_early),
    }


def load_model_file(path: Path) -> dict:
    path = Path(path)
    try:
        checkpoint = load_torch(path)
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


def model_from_artifact(checkpoint: dict) -> CRNN:
    """The trained network of a model file, in evaluation mode, on the CPU."""
    settings = ModelSettings.model_validate(checkpoint["model_settings"])
    model = build_model(checkpoint["arch"], len(checkpoint["leads"]), len(checkpoint["classes"]), settings)
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()


def recipe_of(checkpoint: dict) -> dict:
    """The recipe a model file was trained with: {lr, dropout, weight_decay, tuned} (tuned: its own entry in
    recipe.yaml; otherwise params.yaml's default, shared by every architecture). What the report shows per model."""
    recorded = checkpoint["train_settings"].get("recipe")
    if recorded is not None:
        return dict(recorded)
    train, model = checkpoint["train_settings"], checkpoint["model_settings"]  # a file from before recipes
    return {
        "lr": train["lr"],
        "dropout": model["dropout"],
        "weight_decay": train["weight_decay"],
        "tuned": False,
    }

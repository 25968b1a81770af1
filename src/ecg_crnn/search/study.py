"""An Optuna study's life: created once before any worker starts, loaded by every worker."""

from __future__ import annotations

from pathlib import Path

import optuna

from ..config import SearchSettings
from ..errors import EcgCrnnError
from .storage import make_storage


def make_pruner(cfg: SearchSettings):
    if cfg.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2)
    if cfg.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=2, max_resource=cfg.epochs)
    return optuna.pruners.NopPruner()


def create_study(cfg: SearchSettings, search_dir: Path) -> optuna.Study:
    """Create the study once, before any worker starts (workers racing to create the schema fail)."""
    return optuna.create_study(
        study_name=cfg.study_name,
        storage=make_storage(cfg, search_dir),
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=cfg.seed),
        pruner=make_pruner(cfg),
        load_if_exists=True,
    )


def load_study(cfg: SearchSettings, search_dir: Path) -> optuna.Study:
    try:
        return optuna.load_study(
            study_name=cfg.study_name,
            storage=make_storage(cfg, search_dir),
            sampler=optuna.samplers.TPESampler(),
            pruner=make_pruner(cfg),
        )
    except KeyError:
        raise EcgCrnnError(f"search: no study {cfg.study_name!r} in the storage; create it first") from None

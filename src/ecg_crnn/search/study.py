"""An Optuna study's life: created once before any worker starts, loaded by every worker.

A study's objectives are the validation macro-AUROC (maximized), and for a multi-objective search its costs
(minimized), named in the study (`set_metric_names`) so that optuna-dashboard labels its axes and its Pareto
front. Optuna's pruners are single-objective: a multi-objective study is never pruned.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna

from ..config import SearchSettings
from ..errors import EcgCrnnError
from .storage import make_storage

METRIC_NAMES = {
    "macro_auroc": "val_macro_auroc",
    "params": "params",
    "macs": "macs_per_record",
    "latency": "cpu_latency_ms",
}


def make_pruner(cfg: SearchSettings, objectives: list[str], warmup_epochs: int = 0):
    """The same pruner for every study; never during the learning rate's warm-up, where a slow start says little
    about where a run ends."""
    if len(objectives) > 1:
        return optuna.pruners.NopPruner()
    if cfg.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=max(2, warmup_epochs))
    if cfg.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(2, warmup_epochs), max_resource=cfg.epochs)
    return optuna.pruners.NopPruner()


def make_sampler(cfg: SearchSettings, seed: int | None):
    """`seed` None in pool mode: workers sampling from one seed would propose the same points at once."""
    if cfg.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def create_study(
    cfg: SearchSettings,
    search_dir: Path,
    study_name: str | None = None,
    objectives: list[str] | None = None,
    warmup_epochs: int = 0,
) -> optuna.Study:
    """Create the study once, before any worker starts (workers racing to create the schema fail)."""
    objectives = objectives or cfg.objectives
    study = optuna.create_study(
        study_name=study_name or cfg.study_name,
        storage=make_storage(cfg, search_dir),
        directions=["maximize"] + ["minimize"] * (len(objectives) - 1),
        sampler=make_sampler(cfg, cfg.seed),
        pruner=make_pruner(cfg, objectives, warmup_epochs),
        load_if_exists=True,
    )
    names = [METRIC_NAMES[o] for o in objectives]
    with (
        warnings.catch_warnings()
    ):  # experimental in Optuna, relied on: optuna-dashboard names the axes with it
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if study.metric_names != names:
            study.set_metric_names(names)
    return study


def load_study(
    cfg: SearchSettings,
    search_dir: Path,
    study_name: str | None = None,
    objectives: list[str] | None = None,
    warmup_epochs: int = 0,
    sampler_seed: int | None = None,
) -> optuna.Study:
    name = study_name or cfg.study_name
    try:
        return optuna.load_study(
            study_name=name,
            storage=make_storage(cfg, search_dir),
            sampler=make_sampler(cfg, sampler_seed),
            pruner=make_pruner(cfg, objectives or cfg.objectives, warmup_epochs),
        )
    except KeyError:
        raise EcgCrnnError(f"search: no study {name!r} in the storage; create it first") from None


def metric_names(study: optuna.Study) -> list[str]:
    """The study's objective names (experimental in Optuna, which warns at every read)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return list(study.metric_names or [])

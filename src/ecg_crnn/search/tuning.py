"""Tuning the recipe: one Optuna study per (architecture, window) of the grid, all with the same budget.

Every study searches the same space (peak learning rate log-uniform in search.lr, dropout uniform in
search.dropout, weight decay in search.tune.weight_decay when set), trains the architecture at the grid's sizes
(models.*) with the grid's schedule and early stopping for search.tune.epochs (default train.epochs), from the
training seed search.seed (never a grid seed), and scores the validation fold. Each study holds
search.tune.trials trials, starts with params.yaml's default recipe (so the tuned recipe is never worse on
validation than the default one), then samples with TPE from one sampler seed (its random start-up points are
the same for every architecture), and prunes with one rule. The chosen trial is the best of the first
search.tune.trials finished trials in trial order, so that a pool's overshoot (workers finishing the last trials
together) gives no architecture a larger budget.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import optuna

from ..config import ModelSettings, Params, TrainSettings
from ..errors import EcgCrnnError
from ..recipe import window_key
from ..schedule import schedule_epochs
from .objective import COUNTED, counted_trials, run_trials
from .storage import make_storage
from .study import create_study, load_study

OBJECTIVES = ["macro_auroc"]  # tuning is single-objective whatever search.objectives says


def targets(params: Params) -> list[tuple[str, float]]:
    """The grid's (architecture, window) pairs, in study order."""
    return [(a, float(w)) for a in params.study.architectures for w in params.study.windows]


def study_name(params: Params, arch: str, window_s: float) -> str:
    return f"{params.search.study_name}-tune-{arch}-{window_key(window_s)}"


def tune_train_settings(params: Params) -> TrainSettings:
    cfg = params.search
    return params.train.replaced(epochs=cfg.tune.epochs or params.train.epochs, seeds=[cfg.seed])


class RecipeSpace:
    """One architecture at one window; a point is its learning rate, dropout (and weight decay)."""

    objectives = OBJECTIVES

    def __init__(self, params: Params, arch: str, window_s: float):
        self.params, self.arch, self.window_s = params, arch, float(window_s)

    def suggest(self, trial: optuna.Trial) -> dict:
        cfg = self.params.search
        point = {"arch": self.arch, "window_s": self.window_s, "hidden": None}
        point["lr"] = trial.suggest_float("lr", *cfg.lr, log=True)
        point["dropout"] = trial.suggest_float("dropout", *cfg.dropout)
        if cfg.tune.weight_decay is not None:
            point["weight_decay"] = trial.suggest_float("weight_decay", *cfg.tune.weight_decay, log=True)
        return point

    def settings(self, point: dict) -> tuple[ModelSettings, TrainSettings]:
        train = tune_train_settings(self.params).replaced(lr=point["lr"])
        if "weight_decay" in point:
            train = train.replaced(weight_decay=point["weight_decay"])
        return self.params.models.replaced(dropout=point["dropout"]), train

    def warmup_epochs(self) -> int:
        return schedule_epochs(tune_train_settings(self.params))[0]


def default_point(params: Params) -> dict:
    """params.yaml's default recipe as a point of the space (enqueued first), where the space holds it."""
    cfg = params.search
    point = {"lr": params.train.lr, "dropout": params.models.dropout}
    inside = cfg.lr[0] <= point["lr"] <= cfg.lr[1] and cfg.dropout[0] <= point["dropout"] <= cfg.dropout[1]
    if cfg.tune.weight_decay is not None:
        point["weight_decay"] = params.train.weight_decay
        inside = inside and cfg.tune.weight_decay[0] <= point["weight_decay"] <= cfg.tune.weight_decay[1]
    return point if inside else {}


def create_tuning_studies(params: Params, search_dir: Path) -> list[str]:
    """Every (architecture, window)'s study, created once, each starting with the default recipe."""
    names = []
    for arch, window_s in targets(params):
        warmup = RecipeSpace(params, arch, window_s).warmup_epochs()
        study = create_study(
            params.search, search_dir, study_name(params, arch, window_s), OBJECTIVES, warmup
        )
        if not study.trials and (point := default_point(params)):
            study.enqueue_trial(point, user_attrs={"default_recipe": True})
        names.append(study.study_name)
    return names


def load_tuning_study(params: Params, search_dir: Path, arch: str, window_s: float, sampler_seed: int | None):
    warmup = RecipeSpace(params, arch, window_s).warmup_epochs()
    name = study_name(params, arch, window_s)
    return load_study(params.search, search_dir, name, OBJECTIVES, warmup, sampler_seed)


def run_tuning(
    params: Params, filtered: Path, segmented: Path, search_dir: Path, sampler_seed, **hooks
) -> int:
    """Trials until every tuning study holds search.tune.trials; returns how many this process ran. `hooks`:
    run_trials' report and on_trial. The data of a window is loaded once for all its architectures."""
    cache: dict = {}
    ran = 0
    for arch, window_s in targets(params):
        study = load_tuning_study(params, search_dir, arch, window_s, sampler_seed)
        space = RecipeSpace(params, arch, window_s)
        ran += run_trials(
            study,
            filtered,
            segmented,
            params,
            space=space,
            target=params.search.tune.trials,
            data_cache=cache,
            **hooks,
        )
    return ran


def tuning_progress(params: Params, search_dir: Path, storage=None) -> tuple[int, int]:
    """(trials counted over all tuning studies, capped at each study's budget; the total budget). `storage`: one
    opened once and reused, so that a progress bar does not re-read a journal from its start at every epoch."""
    storage = storage or make_storage(params.search, search_dir)
    budget, done = params.search.tune.trials, 0
    for arch, window_s in targets(params):
        study = optuna.load_study(study_name=study_name(params, arch, window_s), storage=storage)
        done += min(budget, counted_trials(study))
    return done, budget * len(targets(params))


def chosen_trial(study: optuna.Study, budget: int) -> optuna.trial.FrozenTrial:
    """The best completed trial among the first `budget` counted ones, in trial order."""
    counted = sorted(study.get_trials(deepcopy=False, states=COUNTED), key=lambda t: t.number)[:budget]
    done = [t for t in counted if t.state == optuna.trial.TrialState.COMPLETE]
    if len(counted) < budget or not done:
        raise EcgCrnnError(
            f"search: tuning study {study.study_name!r} holds {len(counted)} of its {budget} trials "
            f"({len(done)} completed); run the tuning to the end first"
        )
    return max(done, key=lambda t: (t.value, -t.number))


def tuned_entries(params: Params, search_dir: Path, today: dt.date | None = None) -> dict:
    """{(arch, window key): (entry, provenance)} for every (architecture, window) of the grid."""
    cfg, budget = params.search, params.search.tune.trials
    date = (today or dt.datetime.now(dt.UTC).date()).isoformat()
    out = {}
    for arch, window_s in targets(params):
        study = load_tuning_study(params, search_dir, arch, window_s, None)
        best = chosen_trial(study, budget)
        default = next((t for t in study.trials if t.user_attrs.get("default_recipe")), None)
        entry = {
            "lr": best.params["lr"],
            "dropout": best.params["dropout"],
            "weight_decay": best.params.get("weight_decay", params.train.weight_decay),
        }
        provenance = {
            "study": study.study_name,
            "trials": budget,
            "epochs": tune_train_settings(params).epochs,
            "seed": cfg.seed,
            "val_folds": list(params.segment.val_folds),
            "val_macro_auroc": round(best.value, 4),
            "trial": best.number,
            "default_val_macro_auroc": None
            if default is None or default.value is None
            else round(default.value, 4),
            "date": date,
        }
        out[(arch, window_key(window_s))] = (entry, provenance)
    return out

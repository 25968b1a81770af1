"""The search space and what a point of it means: an architecture of the registry, a window, sizes and a
learning rate; the settings a trial trains with, and the DVC overrides that train the best point.

A space is what the objective asks for a trial's point and its settings: `ArchitectureSpace` here (the search
over type, depth and sizes), `RecipeSpace` in tuning.py (one architecture's learning rate and dropout)."""

from __future__ import annotations

import optuna

from ..config import ModelSettings, Params, SearchSettings, TrainSettings
from ..errors import EcgCrnnError
from ..recipe import window_key
from ..registry import architecture_name
from ..schedule import schedule_epochs


def suggest(trial: optuna.Trial, cfg: SearchSettings) -> dict:
    """A point of the space, defined by run: depth, direction, recurrent units and the dropout between
    recurrent layers exist only when there is a recurrent layer (a CNN trial has no `hidden` to sample)."""
    point = {"window_s": float(trial.suggest_categorical("window_s", sorted(set(cfg.windows))))}
    rnn = trial.suggest_categorical("rnn", cfg.rnn)
    point.update({"rnn": rnn, "bidirectional": False, "depth": 0, "hidden": None})
    if rnn != "none":
        point["depth"] = trial.suggest_categorical("depth", sorted(set(cfg.depth)))
        point["bidirectional"] = trial.suggest_categorical("bidirectional", cfg.bidirectional)
        point["hidden"] = trial.suggest_categorical("hidden", cfg.hidden)
    point["dropout"] = trial.suggest_float("dropout", *cfg.dropout)
    point["lr"] = trial.suggest_float("lr", *cfg.lr, log=True)
    point["arch"] = architecture_name(None if rnn == "none" else rnn, point["bidirectional"], point["depth"])
    return point


def describe(point: dict) -> str:
    hidden = f", hidden {point['hidden']}" if point.get("hidden") else ""
    return (
        f"{point['arch']} @ {point['window_s']:g} s{hidden}, dropout {point['dropout']:.2f}, "
        f"lr {point['lr']:.2e}"
    )


def settings_for(point: dict, params: Params) -> tuple[ModelSettings, TrainSettings]:
    hidden = (
        int(point["hidden"]) if point.get("hidden") else params.models.hidden
    )  # unused without recurrence
    model = params.models.replaced(hidden=hidden, dropout=float(point["dropout"]))
    training = params.train.replaced(
        lr=float(point["lr"]), epochs=params.search.epochs, seeds=[params.search.seed]
    )
    return model, training


class ArchitectureSpace:
    """The search over window, recurrent type, direction, depth, hidden size, dropout and learning rate, against
    search.objectives."""

    def __init__(self, params: Params):
        self.params = params
        self.objectives = list(params.search.objectives)

    def suggest(self, trial: optuna.Trial) -> dict:
        return suggest(trial, self.params.search)

    def settings(self, point: dict) -> tuple[ModelSettings, TrainSettings]:
        return settings_for(point, self.params)

    def warmup_epochs(self) -> int:
        return schedule_epochs(self.params.train.replaced(epochs=self.params.search.epochs))[0]


def best_point(study: optuna.Study) -> dict:
    """The best trial by validation macro-AUROC (the search never sees the test fold)."""
    try:
        best = study.best_trial
    except ValueError:
        raise EcgCrnnError(f"search: study {study.study_name!r} has no completed trial") from None
    return trial_point(best)


def trial_point(best: optuna.trial.FrozenTrial) -> dict:
    """A finished trial of the architecture search as a point: what it trained, and its values."""
    p = best.params
    rnn = p["rnn"]
    depth = p.get("depth", 0)
    bidirectional = p.get("bidirectional", False)
    return {
        "arch": architecture_name(None if rnn == "none" else rnn, bidirectional, depth),
        "window_s": float(p.get("window_s", 2.5)),
        "hidden": p.get("hidden"),
        "dropout": p["dropout"],
        "lr": p["lr"],
        "weight_decay": best.user_attrs.get("weight_decay"),
        "value": best.values[0],
        "values": list(best.values),
        "trial": best.number,
    }


def promotion_overrides(point: dict, weight_decay: float) -> list[str]:
    """`dvc exp run -S` overrides that train and version the point through the DVC pipeline. Its learning rate
    and dropout go into its recipe.yaml entry (`++` merges it in, whether or not the architecture has one), which
    the train stage reads before params.yaml's shared default; its weight decay is the trial's (`weight_decay`,
    train.weight_decay, for a trial that did not record one)."""
    arch = point["arch"]
    wd = point["weight_decay"] if point.get("weight_decay") is not None else weight_decay
    entry = f"lr: {point['lr']:.4g}, dropout: {point['dropout']:.4g}, weight_decay: {wd:.4g}"
    overrides = [
        f"study.architectures=[{arch}]",
        f"study.reference={arch}",
        f"study.windows=[{point['window_s']:g}]",
        f"recipe.yaml:++recipes.{arch}={{{window_key(point['window_s'])}: {{{entry}}}}}",
    ]
    if point.get("hidden"):
        overrides.insert(3, f"models.hidden={point['hidden']}")
    return overrides

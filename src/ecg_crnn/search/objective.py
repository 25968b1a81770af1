"""One trial (trained with the train stage's `train()`), and trials until the study holds its count.

What a trial trains comes from a space (space.ArchitectureSpace by default, tuning.RecipeSpace for the recipe);
what it returns are the space's objectives: the best validation macro-AUROC, then for a multi-objective search
the model's costs (costs.py). A single-objective trial reports every epoch and may be pruned; a multi-objective
one is never pruned (Optuna's pruners are single-objective) but still reports its epochs to the flows.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import optuna

from ..config import Params
from ..dataset import StudyData, load_study_data
from ..errors import EcgCrnnError
from ..training import train
from .costs import trial_costs
from .space import ArchitectureSpace

COUNTED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)

EpochReporter = Callable[[optuna.Trial, dict, dict], None]


class Objective:
    """Trains one trial with the train stage's `train()`. Data is loaded once per window length (`data_cache`
    may be shared between objectives, as tuning's studies do). `report` (if given) sees every epoch, so a flow can
    show progress as the trial runs."""

    def __init__(
        self,
        filtered: Path,
        segmented: Path,
        params: Params,
        progress: bool = False,
        report: EpochReporter | None = None,
        space=None,
        data_cache: dict[float, StudyData] | None = None,
    ):
        self.filtered, self.segmented, self.params, self.progress = filtered, segmented, params, progress
        self.report = report
        self.space = space or ArchitectureSpace(params)
        self._data = data_cache if data_cache is not None else {}
        self.last_error = ""

    def data(self, window_s: float) -> StudyData:
        if window_s not in self._data:
            self._data[window_s] = load_study_data(self.filtered, self.segmented, window_s, ("train", "val"))
        return self._data[window_s]

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        try:
            return self._run(trial)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"  # Optuna records the failure, not its reason
            raise

    def _run(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        point = self.space.suggest(trial)
        model_cfg, train_cfg = self.space.settings(point)
        data = self.data(point["window_s"])
        costs = trial_costs(
            point["arch"],
            data,
            model_cfg,
            self.params.evaluate.latency_runs if "latency" in self.space.objectives else 0,
        )
        attrs = {"arch": point["arch"], "window_s": point["window_s"], "weight_decay": train_cfg.weight_decay}
        for key, value in {**attrs, **costs, "worker": f"{socket.gethostname()}:{os.getpid()}"}.items():
            trial.set_user_attr(key, value)  # the worker: which process ran it
        single = len(self.space.objectives) == 1

        def on_epoch(record: dict) -> None:
            if single:
                trial.report(record["val_macro_auroc"], record["epoch"])
            if self.report:
                self.report(trial, point, record)
            # Never at the budget's last epoch: the run is over, and pruning it would only discard its value.
            if single and record["epoch"] < train_cfg.epochs and trial.should_prune():
                raise optuna.TrialPruned(f"epoch {record['epoch']}: {record['val_macro_auroc']:.4f}")

        result = train(
            point["arch"],
            data,
            model_cfg,
            train_cfg,
            train_cfg.seeds[0],
            on_epoch=on_epoch,
            progress=self.progress,
        )
        trial.set_user_attr("best_epoch", result.best_epoch)
        trial.set_user_attr("epochs_run", len(result.history))
        if single:
            return result.best_val_macro_auroc
        return (result.best_val_macro_auroc, *(costs[o] for o in self.space.objectives[1:]))


def counted_trials(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=COUNTED))


class _StopOnRepeatedFailures:
    """A trial that raises is recorded as failed and the search goes on, but a space whose trials keep
    failing would otherwise loop for ever: stop after `limit` failures in this process."""

    def __init__(self, limit: int):
        self.limit, self.failures = limit, 0

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state == optuna.trial.TrialState.FAIL:
            self.failures += 1
            if self.failures >= self.limit:
                study.stop()


def run_trials(
    study: optuna.Study,
    filtered: Path,
    segmented: Path,
    params: Params,
    progress: bool = False,
    report: EpochReporter | None = None,
    on_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
    space=None,
    target: int | None = None,
    data_cache: dict[float, StudyData] | None = None,
) -> int:
    """Run trials until the study holds `target` (search.trials) completed or pruned ones, shared by every
    worker. `report` sees every epoch of every trial, `on_trial` every finished trial (the flows log both)."""
    target = target or params.search.trials
    done_before = counted_trials(study)
    guard = _StopOnRepeatedFailures(limit=max(3, params.search.retries + 1))
    objective = Objective(Path(filtered), Path(segmented), params, progress, report, space, data_cache)
    callbacks = [optuna.study.MaxTrialsCallback(target, states=COUNTED), guard]
    if done_before < target:
        study.optimize(
            objective,
            catch=(Exception,),
            gc_after_trial=True,
            callbacks=callbacks + ([on_trial] if on_trial else []),
        )
    if guard.failures >= guard.limit:
        raise EcgCrnnError(
            f"search: {guard.failures} trials failed in a row on this worker; the study and its "
            f"trials are kept. Last error: {objective.last_error[-500:]}"
        )
    return counted_trials(study) - done_before

"""The Optuna search over recurrent type, direction and depth, and the sizes and learning rate.

Pure library: the objective trains with the same `train()` as the DVC train stage, reports the validation
macro-AUROC every epoch and is pruned when it falls behind. The Prefect flows in flows/ only schedule it.

Storage: an Optuna journal file by default (embedded, nothing to run); any RDB URL (PostgreSQL) for many
workers, with heartbeats: a trial whose worker died is failed after two missed heartbeats and retried, so
the study still reaches its trial count.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
from pathlib import Path

import optuna

from .config import ModelSettings, Params, SearchSettings, TrainSettings
from .dataset import StudyData
from .errors import EcgCrnnError
from .models import architecture_name
from .train import train

COUNTED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def redact(url: str) -> str:
    """A storage URL fit for messages: the password, if any, replaced."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def make_storage(cfg: SearchSettings, search_dir: Path):
    if cfg.storage is None:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        search_dir.mkdir(parents=True, exist_ok=True)
        path = str(search_dir / "journal.log")
        return JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    try:
        return RDBStorage(
            cfg.storage,
            heartbeat_interval=cfg.heartbeat_s,
            grace_period=2 * cfg.heartbeat_s,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=cfg.retries),
            engine_kwargs={"pool_pre_ping": True},
        )
    except Exception as exc:  # sqlalchemy raises many types; the message must not carry the password
        detail = str(exc).splitlines()[0]
        if cfg.storage and "@" in cfg.storage:
            detail = detail.replace(cfg.storage, redact(cfg.storage))
        raise EcgCrnnError(
            f"search.storage: cannot open {redact(cfg.storage)}: {type(exc).__name__}: {detail[:300]}"
        ) from None


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


def suggest(trial: optuna.Trial, cfg: SearchSettings) -> dict:
    """A point of the space. Depth and direction exist only when there is a recurrent layer (define-by-run)."""
    rnn = trial.suggest_categorical("rnn", cfg.rnn)
    point = {"rnn": rnn, "bidirectional": False, "depth": 0}
    if rnn != "none":
        point["depth"] = trial.suggest_categorical("depth", sorted(set(cfg.depth)))
        point["bidirectional"] = trial.suggest_categorical("bidirectional", cfg.bidirectional)
    point["hidden"] = trial.suggest_categorical("hidden", cfg.hidden)
    point["dropout"] = trial.suggest_float("dropout", *cfg.dropout)
    point["lr"] = trial.suggest_float("lr", *cfg.lr, log=True)
    point["arch"] = architecture_name(None if rnn == "none" else rnn, point["bidirectional"], point["depth"])
    return point


def settings_for(point: dict, params: Params) -> tuple[ModelSettings, TrainSettings]:
    model = replace(params.models, hidden=int(point["hidden"]), dropout=float(point["dropout"]))
    training = replace(
        params.train, lr=float(point["lr"]), epochs=params.search.epochs, seeds=[params.search.seed]
    )
    return model, training


class Objective:
    def __init__(self, data: StudyData, params: Params, progress: bool = False):
        self.data, self.params, self.progress = data, params, progress
        self.last_error = ""

    def __call__(self, trial: optuna.Trial) -> float:
        try:
            return self._run(trial)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"  # Optuna records the failure, not its reason
            raise

    def _run(self, trial: optuna.Trial) -> float:
        point = suggest(trial, self.params.search)
        trial.set_user_attr("arch", point["arch"])
        model_cfg, train_cfg = settings_for(point, self.params)

        def report(record: dict) -> None:
            trial.report(record["val_macro_auroc"], record["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned(f"epoch {record['epoch']}: {record['val_macro_auroc']:.4f}")

        result = train(
            point["arch"],
            self.data,
            model_cfg,
            train_cfg,
            self.params.search.seed,
            on_epoch=report,
            progress=self.progress,
        )
        trial.set_user_attr("best_epoch", result.best_epoch)
        print(
            f"search: trial {trial.number} {point['arch']} hidden {point['hidden']} lr {point['lr']:.2g}: "
            f"val macro-AUROC {result.best_val_macro_auroc:.4f}",
            file=sys.stderr,
        )
        return result.best_val_macro_auroc


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


def run_trials(study: optuna.Study, data: StudyData, params: Params, progress: bool = False) -> int:
    """Run trials until the study holds search.trials completed or pruned ones (shared by every worker)."""
    target = params.search.trials
    done_before = counted_trials(study)
    guard = _StopOnRepeatedFailures(limit=max(3, params.search.retries + 1))
    objective = Objective(data, params, progress)
    if done_before < target:
        study.optimize(
            objective,
            catch=(Exception,),
            gc_after_trial=True,
            callbacks=[optuna.study.MaxTrialsCallback(target, states=COUNTED), guard],
        )
    if guard.failures >= guard.limit:
        raise EcgCrnnError(
            f"search: {guard.failures} trials failed in a row on this worker; the study and its "
            f"trials are kept. Last error: {objective.last_error[-500:]}"
        )
    return counted_trials(study) - done_before


def best_point(study: optuna.Study) -> dict:
    try:
        best = study.best_trial
    except ValueError:
        raise EcgCrnnError(f"search: study {study.study_name!r} has no completed trial") from None
    p = best.params
    rnn = p["rnn"]
    depth = p.get("depth", 0)
    bidirectional = p.get("bidirectional", False)
    return {
        "arch": architecture_name(None if rnn == "none" else rnn, bidirectional, depth),
        "hidden": p["hidden"],
        "dropout": p["dropout"],
        "lr": p["lr"],
        "value": best.value,
        "trial": best.number,
    }


def promotion_overrides(point: dict) -> list[str]:
    """`dvc exp run -S` overrides that train and version the best configuration through the DVC pipeline."""
    arch = point["arch"]
    return [
        f"study.architectures=[{arch}]",
        f"study.reference={arch}",
        f"models.hidden={point['hidden']}",
        f"models.dropout={point['dropout']:.4g}",
        f"train.lr={point['lr']:.4g}",
    ]


def trials_table(study: optuna.Study) -> list[dict]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name,
                "arch": t.user_attrs.get("arch", ""),
                "hidden": t.params.get("hidden"),
                "lr": round(t.params.get("lr", float("nan")), 6),
                "dropout": round(t.params.get("dropout", float("nan")), 3),
                "val_macro_auroc": None if t.value is None else round(t.value, 4),
                "epochs": len(t.intermediate_values),
            }
        )
    return rows


def save_results(study: optuna.Study, out_dir: Path) -> dict:
    """best.json, trials.csv, and plots: macro-AUROC against depth per type, and Optuna's own.

    Trials left RUNNING by a worker that died are failed first (RDB storage with heartbeats), so the
    table accounts for every trial."""
    optuna.storages.fail_stale_trials(study)  # a no-op for storages without heartbeats (the journal)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from .atomic import write_json

    out_dir.mkdir(parents=True, exist_ok=True)
    point = best_point(study)
    table = pd.DataFrame(trials_table(study))
    table.to_csv(out_dir / "trials.csv", index=False)
    write_json(
        out_dir / "best.json",
        {
            **point,
            "dvc_exp_run": ["dvc", "exp", "run", "-n", f"search-{study.study_name}"]
            + [a for o in promotion_overrides(point) for a in ("-S", o)],
        },
    )
    done = table[table["state"] == "COMPLETE"].copy()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    if len(done):
        done["type"] = (
            done["arch"].str.replace(r"^cnn_?", "", regex=True).str.rstrip("0123456789").replace("", "none")
        )
        done["depth"] = done["arch"].str.extract(r"(\d)$")[0].fillna(0).astype(int)
        for kind, rows in done.groupby("type"):
            ax.scatter(rows["depth"], rows["val_macro_auroc"], label=kind, alpha=0.8)
    ax.set_xticks([0, 1, 2, 3])
    ax.set_xlabel("recurrent layers")
    ax.set_ylabel("validation macro-AUROC")
    ax.set_title(f"Search {study.study_name}: {len(done)} completed trials")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "depth.png", dpi=110)
    plt.close(fig)
    from optuna.visualization import matplotlib as ovm

    for name, fn in (
        ("history", ovm.plot_optimization_history),
        ("intermediate", ovm.plot_intermediate_values),
    ):
        try:
            ax = fn(study)
            ax.figure.savefig(out_dir / f"optuna_{name}.png", dpi=100, bbox_inches="tight")
            plt.close(ax.figure)
        except Exception as exc:  # a plot Optuna cannot draw (too few trials) is skipped, not fatal
            print(f"search: optuna {name} plot skipped: {exc}", file=sys.stderr)
    (out_dir / "summary.json").write_text(
        json.dumps(
            {"best": point, "trials": len(table), "states": table["state"].value_counts().to_dict()}, indent=2
        )
    )
    return point

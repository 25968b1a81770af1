"""The Optuna search over recurrent type, direction and depth, and the sizes and learning rate.

Pure library: the objective trains with the same `train()` as the DVC train stage, reports the validation
macro-AUROC every epoch and is pruned when it falls behind. The Prefect flows in flows/ only schedule it.

Storage: an Optuna journal file by default (embedded, nothing to run); any RDB URL (PostgreSQL) for many
workers, with heartbeats: a trial whose worker died is failed after two missed heartbeats and retried, so
the study still reaches its trial count.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import optuna

from .config import ModelSettings, Params, SearchSettings, TrainSettings
from .dataset import StudyData, load_study_data
from .errors import EcgCrnnError
from .models import architecture_name
from .train import train

COUNTED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def redact(url: str) -> str:
    """A storage URL fit for messages: the password, if any, replaced by ***, both in the user info
    (where it may itself hold '@', '/' or '?': everything up to the last '@' of the authority goes) and in
    password-like query parameters (`?password=`, `sslpassword=`, tokens, secrets, keys)."""
    scheme, sep, rest = url.partition("://")
    if sep:
        query = rest.find("?")
        at = rest.rfind("@", 0, query if query >= 0 else len(rest))
        if at < 0:
            at = rest.rfind("@")  # a password holding '?'; at worst this hides more than the password
        if at >= 0:
            user, colon, _ = rest[:at].partition(":")
            if colon:
                rest = f"{user}:***{rest[at:]}"
        url = f"{scheme}{sep}{rest}"
    return re.sub(r"([?&;][^=&;#]*(?:pass|pwd|secret|token|key)[^=&;#]*=)[^&;#]*", r"\1***", url, flags=re.I)


def make_storage(cfg: SearchSettings, search_dir: Path):
    # Optuna marks the journal backend and the heartbeat retry callback experimental and warns at every use;
    # both are what this project relies on, so the warning says nothing to its users: silenced here alone.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _make_storage(cfg, search_dir)


def _make_storage(cfg: SearchSettings, search_dir: Path):
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
        detail = redact(str(exc).splitlines()[0].replace(cfg.storage, redact(cfg.storage)))
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
    model = replace(params.models, hidden=hidden, dropout=float(point["dropout"]))
    training = replace(
        params.train, lr=float(point["lr"]), epochs=params.search.epochs, seeds=[params.search.seed]
    )
    return model, training


EpochReporter = Callable[[optuna.Trial, dict, dict], None]


class Objective:
    """Trains one trial with the train stage's `train()`. Data is loaded once per window length. `report`
    (if given) sees every epoch, so a flow can show progress as the trial runs."""

    def __init__(
        self,
        filtered: Path,
        segmented: Path,
        params: Params,
        progress: bool = False,
        report: EpochReporter | None = None,
    ):
        self.filtered, self.segmented, self.params, self.progress = filtered, segmented, params, progress
        self.report = report
        self._data: dict[float, StudyData] = {}
        self.last_error = ""

    def data(self, window_s: float) -> StudyData:
        if window_s not in self._data:
            self._data[window_s] = load_study_data(self.filtered, self.segmented, window_s, ("train", "val"))
        return self._data[window_s]

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
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")  # which process ran it
        model_cfg, train_cfg = settings_for(point, self.params)

        def on_epoch(record: dict) -> None:
            trial.report(record["val_macro_auroc"], record["epoch"])
            if self.report:
                self.report(trial, point, record)
            if trial.should_prune():
                raise optuna.TrialPruned(f"epoch {record['epoch']}: {record['val_macro_auroc']:.4f}")

        result = train(
            point["arch"],
            self.data(point["window_s"]),
            model_cfg,
            train_cfg,
            self.params.search.seed,
            on_epoch=on_epoch,
            progress=self.progress,
        )
        trial.set_user_attr("best_epoch", result.best_epoch)
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


def run_trials(
    study: optuna.Study,
    filtered: Path,
    segmented: Path,
    params: Params,
    progress: bool = False,
    report: EpochReporter | None = None,
    on_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
) -> int:
    """Run trials until the study holds search.trials completed or pruned ones (shared by every worker).
    `report` sees every epoch of every trial, `on_trial` every finished trial (the flows log both)."""
    target = params.search.trials
    done_before = counted_trials(study)
    guard = _StopOnRepeatedFailures(limit=max(3, params.search.retries + 1))
    objective = Objective(Path(filtered), Path(segmented), params, progress, report)
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


def best_point(study: optuna.Study) -> dict:
    """The best trial by validation macro-AUROC (the search never sees the test fold)."""
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
        "window_s": float(p.get("window_s", 2.5)),
        "hidden": p.get("hidden"),
        "dropout": p["dropout"],
        "lr": p["lr"],
        "value": best.value,
        "trial": best.number,
    }


def promotion_overrides(point: dict) -> list[str]:
    """`dvc exp run -S` overrides that train and version the best configuration through the DVC pipeline."""
    arch = point["arch"]
    overrides = [
        f"study.architectures=[{arch}]",
        f"study.reference={arch}",
        f"study.windows=[{point['window_s']:g}]",
        f"models.dropout={point['dropout']:.4g}",
        f"train.lr={point['lr']:.4g}",
    ]
    if point.get("hidden"):
        overrides.insert(3, f"models.hidden={point['hidden']}")
    return overrides


def trials_table(study: optuna.Study) -> list[dict]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name,
                "arch": t.user_attrs.get("arch", ""),
                "worker": t.user_attrs.get("worker", ""),
                "window_s": t.params.get("window_s"),
                "hidden": t.params.get("hidden"),
                "lr": round(t.params.get("lr", float("nan")), 6),
                "dropout": round(t.params.get("dropout", float("nan")), 3),
                "val_macro_auroc": None if t.value is None else round(t.value, 4),
                "epochs": len(t.intermediate_values),
            }
        )
    return rows


def depth_table(done):
    """Best validation macro-AUROC per recurrent type (rows) and depth (columns), per window: the search's
    answer to the study's question, as a table the Prefect UI shows."""
    import pandas as pd

    if not len(done):
        return pd.DataFrame()
    done = done.assign(
        type=done["arch"].str.replace(r"^cnn_?", "", regex=True).str.rstrip("0123456789").replace("", "none"),
        depth=done["arch"].str.extract(r"(\d)$")[0].fillna(0).astype(int),
    )
    return done.pivot_table(
        index=["window_s", "type"], columns="depth", values="val_macro_auroc", aggfunc="max"
    ).round(4)


def plot_search_depth(done, study_name: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import COLORS, LABELS

    fig, ax = plt.subplots(figsize=(6.5, 4))
    if len(done):
        done = done.assign(
            type=done["arch"]
            .str.replace(r"^cnn_?", "", regex=True)
            .str.rstrip("0123456789")
            .replace("", "none"),
            depth=done["arch"].str.extract(r"(\d)$")[0].fillna(0).astype(int),
        )
        markers = {w: "os^D"[i % 4] for i, w in enumerate(sorted(done["window_s"].dropna().unique()))}
        for (kind, w), rows in done.groupby(["type", "window_s"]):
            ax.scatter(
                rows["depth"],
                rows["val_macro_auroc"],
                color=COLORS.get(kind, "k"),
                marker=markers[w],
                label=f"{LABELS.get(kind, kind)}, {w:g} s",
                alpha=0.8,
            )
        ax.legend(fontsize=8)
    ax.set_xticks([0, 1, 2, 3])
    ax.set_xlabel("recurrent layers")
    ax.set_ylabel("validation macro-AUROC")
    ax.set_title(f"Search {study_name}: {len(done)} completed trials")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save_results(study: optuna.Study, out_dir: Path) -> dict:
    """best.json, trials.csv, and plots: macro-AUROC against depth per type, and Optuna's own.

    Trials left RUNNING by a worker that died are failed first (RDB storage with heartbeats), so the
    table accounts for every trial."""
    with warnings.catch_warnings():  # experimental in Optuna, relied on here (see make_storage)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
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
    plot_search_depth(done, study.study_name, out_dir / "depth.png")
    depth_table(done).to_csv(out_dir / "depth.csv")
    from optuna.visualization import matplotlib as ovm

    for name, fn in (
        ("history", ovm.plot_optimization_history),
        ("intermediate", ovm.plot_intermediate_values),
    ):
        try:
            with warnings.catch_warnings():  # Optuna's matplotlib plots are marked experimental too
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
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

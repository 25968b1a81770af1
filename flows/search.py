"""Prefect flows for the Optuna search over recurrent type, direction and depth, and for tuning the recipe.

  ecg-crnn-search   creates the study, runs its trials (in-process, or as `ecg-crnn-trials` flow runs that
                    workers of a work pool pick up), then publishes the results as artifacts and files and,
                    with promote=True, trains the chosen configuration through DVC (`dvc exp run --temp`).
                    With tune=True: one study per (architecture, window) of the grid, all with the same budget
                    (search.tune), and the chosen recipes written into recipe.yaml.
  ecg-crnn-trials   one worker's share: trials until the shared study (or every tuning study) is complete.

Run embedded (no server, journal storage):   python flows/search.py [--tune]
Deploy the trial runner to a pool:            python flows/search.py --deploy
Then, with workers started (`prefect worker start --pool ecg-crnn --limit 1` on each GPU machine):
                                              python flows/search.py --mode pool [--tune]
The flows only schedule; the search itself is ecg_crnn.search.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import optuna
from orchestration import REPO, crash_if_silent, deploy_to_pool, no_worker_message, state_of
from orchestration import run as _run
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from search_publish import publish_best, publish_pareto, publish_recipe

from ecg_crnn.config import Params, load_params
from ecg_crnn.errors import EcgCrnnError
from ecg_crnn.recipe import recipe_beside
from ecg_crnn.redaction import redact
from ecg_crnn.search import tuning
from ecg_crnn.search.objective import counted_trials, run_trials
from ecg_crnn.search.recipe_writer import write_recipe
from ecg_crnn.search.results import save_results, trials_table
from ecg_crnn.search.space import ArchitectureSpace, describe, promotion_overrides
from ecg_crnn.search.storage import make_storage
from ecg_crnn.search.study import create_study, load_study

TRIALS_DEPLOYMENT = "ecg-crnn-trials/ecg-crnn-trials"


def _where(cfg, search_dir: str) -> str:
    return redact(cfg.storage) if cfg.storage else search_dir + "/journal.log"


@task(retries=2, retry_delay_seconds=5)
def prepare_study(params_path: str, search_dir: str, tune: bool = False) -> str:
    """Create the study (or every tuning study) once, before any trial runs (workers racing to create the schema
    would fail)."""
    params = load_params(params_path)
    cfg = params.search
    if tune:
        names = tuning.create_tuning_studies(params, Path(search_dir))
        done, target = tuning.tuning_progress(params, Path(search_dir))
        print(f"{len(names)} tuning studies in {_where(cfg, search_dir)}: {done} of {target} trials done")
        return f"{cfg.study_name}-tune"
    warmup = ArchitectureSpace(params).warmup_epochs()
    study = create_study(cfg, Path(search_dir), warmup_epochs=warmup)
    print(
        f"study {study.study_name!r} in {_where(cfg, search_dir)}: {counted_trials(study)} of {cfg.trials} trials done"
    )
    return study.study_name


def _progress_of(params: Params, search_dir: str, tune: bool):
    """A function giving (trials done, trials wanted) of the study, or over every tuning study; it opens the
    storage once (a journal is read from its start when opened)."""
    storage = make_storage(params.search, Path(search_dir))
    if tune:
        return lambda: tuning.tuning_progress(params, Path(search_dir), storage)
    name = params.search.study_name
    return lambda: (counted_trials(optuna.load_study(study_name=name, storage=storage)), params.search.trials)


class TrialProgress:
    """Shows a worker's trials as they run: one Prefect log line per epoch, one per finished trial, and a
    progress artifact (share of the trials done) that the UI draws as a bar."""

    def __init__(self, done_and_target, epochs: int, title: str):
        self.done_and_target, self.epochs, self.title = done_and_target, epochs, title
        self.artifact = None

    def _update(self, fraction_of_current: float) -> None:
        from prefect.artifacts import create_progress_artifact, update_progress_artifact

        done, target = self.done_and_target()
        percent = 100.0 * min(target, done + fraction_of_current) / target
        if self.artifact is None:
            self.artifact = create_progress_artifact(
                progress=percent, description=f"{self.title}: share of its {target} trials done"
            )
        else:
            update_progress_artifact(self.artifact, progress=percent)

    def epoch(self, trial: optuna.Trial, point: dict, record: dict) -> None:
        get_run_logger().info(
            f"trial {trial.number} {describe(point)}: epoch {record['epoch']}/{self.epochs} "
            f"val macro-AUROC {record['val_macro_auroc']:.4f} ({record['seconds']:.1f} s)"
        )
        self._update(record["epoch"] / self.epochs)

    def trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        values = (
            ""
            if not trial.values
            else ": "
            + ", ".join(
                f"{n} {v:.4g}"
                for n, v in zip(study.metric_names or ["val_macro_auroc"], trial.values, strict=False)
            )
        )
        done, target = self.done_and_target()
        get_run_logger().info(
            f"{study.study_name} trial {trial.number} {trial.user_attrs.get('arch', '')} {trial.state.name.lower()}"
            f"{values} ({done}/{target} trials done)"
        )
        self._update(0.0)


@flow(name="ecg-crnn-trials", log_prints=True)
def trials_flow(
    params_path: str = "params.yaml",
    filtered: str = "data/filtered",
    segmented: str = "data/segmented",
    search_dir: str = "search",
    tune: bool = False,
    seeded: bool = False,
) -> int:
    """`seeded`: sample from search.seed (the in-process run); a pool's workers sample unseeded, or two of them
    would propose the same points at the same time."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # each trial is logged once, below, not twice
    params = load_params(params_path)
    seed = params.search.seed if seeded else None
    epochs = tuning.tune_train_settings(params).epochs if tune else params.search.epochs
    title = f"{'Tuning' if tune else 'Search'} {params.search.study_name}"
    progress = TrialProgress(_progress_of(params, search_dir, tune), epochs, title)
    hooks = {"report": progress.epoch, "on_trial": progress.trial}
    if tune:
        ran = tuning.run_tuning(params, Path(filtered), Path(segmented), Path(search_dir), seed, **hooks)
    else:  # the study was created beforehand by the flow, never here
        warmup = ArchitectureSpace(params).warmup_epochs()
        study = load_study(params.search, Path(search_dir), warmup_epochs=warmup, sampler_seed=seed)
        ran = run_trials(study, Path(filtered), Path(segmented), params, **hooks)
    print(f"this worker ran {ran} trials")
    return ran


def _wait_for_pool(run_ids, params, done_and_target, logger) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        wait_for_trials(client, run_ids, params, done_and_target, logger)


def wait_for_trials(client, run_ids, params, done_and_target, logger) -> None:
    """Wait until the study (or every tuning study: `done_and_target` gives the trials done and wanted)
    reaches its trial count. A run that no worker picks up within
    search.worker_timeout_s is a clear error, not a hang; a run whose heartbeats stopped for search.stale_after_s
    (its worker died) is crashed, so that it neither blocks completion nor keeps the wait going for ever."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    cfg = params.search
    started = time.monotonic()
    while True:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=run_ids)))
        states = [
            "CRASHED"
            if state_of(r) == "RUNNING" and crash_if_silent(client, r, cfg.stale_after_s)
            else state_of(r)
            for r in runs
        ]
        done, target = done_and_target()
        if done >= target:
            return
        if all(s in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") for s in states):
            raise EcgCrnnError(
                f"search: every trial run ended ({', '.join(states)}) with {done} of "
                f"{target} trials done; see the runs' logs"
            )
        waiting = all(s in ("SCHEDULED", "PENDING") for s in states)
        if waiting and time.monotonic() - started > cfg.worker_timeout_s:
            for rid in run_ids:
                client.set_flow_run_state(rid, _cancelled(), force=True)
            waited = no_worker_message(
                "the trial runs", cfg.work_pool, cfg.worker_timeout_s, "search.worker_timeout_s"
            )
            raise EcgCrnnError(
                f"search: {waited}. The runs were cancelled; the study and its {done} trials are kept."
            )
        logger.info(f"{done}/{target} trials; runs: {', '.join(states)}")
        time.sleep(2)


def _cancelled():
    from prefect.states import Cancelled

    return Cancelled(message="no worker picked up the run")


def _command(study_name: str, overrides: list[str]) -> str:
    return " ".join(["dvc exp run --temp -n", f"search-{study_name}"] + [f"-S '{o}'" for o in overrides])


@task
def publish_results(params_path: str, search_dir: str) -> dict:
    """Files in search/STUDY/, and artifacts the Prefect UI renders: the trials table, and the best configuration
    (single objective) or the Pareto front with the point to promote (multi-objective), each with its plot."""
    params = load_params(params_path)
    cfg = params.search
    study = load_study(cfg, Path(search_dir))
    out = Path(search_dir) / cfg.study_name
    point = save_results(study, out, params)
    rows = trials_table(study)
    create_table_artifact(key="search-trials", table=rows, description=f"Trials of study {cfg.study_name}")
    command = _command(cfg.study_name, promotion_overrides(point, params.train.weight_decay))
    publish = publish_pareto if cfg.multi_objective else publish_best
    publish(cfg.study_name, point, len(rows), out, command)
    return point


@task
def publish_tuning(params_path: str, search_dir: str, recipe_path: str) -> list[dict]:
    """The chosen recipe of every (architecture, window) written into recipe.yaml (atomically, its comments and
    order kept), recipe.csv in search/STUDY-tune/, and artifacts: the recipe table and a summary."""
    params = load_params(params_path)
    entries = tuning.tuned_entries(params, Path(search_dir))
    write_recipe(Path(recipe_path), entries)
    name = f"{params.search.study_name}-tune"
    rows = publish_recipe(name, entries, Path(recipe_path), Path(search_dir) / name)
    print(
        f"tuned recipe of {len(rows)} (architecture, window) written into {recipe_path}; `dvc repro` trains with it"
    )
    return rows


@task
def promote(point: dict, study_name: str, repo: str, weight_decay: float, timeout_s: int) -> str:
    """Train and version the chosen configuration through the DVC pipeline, as an experiment beside the grid.
    `--temp` runs it in a temporary copy: the workspace (and what the next scheduled retraining reproduces)
    stays on the study; `dvc exp show` lists the experiment, `dvc exp apply` brings it in if wanted."""
    name = f"search-{study_name}"
    cmd = ["dvc", "exp", "run", "--temp", "-n", name] + [
        a for o in promotion_overrides(point, weight_decay) for a in ("-S", o)
    ]
    _run(cmd, repo, timeout_s=timeout_s)
    print(f"promoted as experiment {name!r} (workspace unchanged): dvc exp show; dvc exp apply {name}")
    return name


def _run_on_pool(params: Params, paths: dict, tune: bool, logger) -> None:
    """search.workers trial-runner flow runs on the work pool, then wait for the trials."""
    from prefect.deployments import run_deployment

    parameters = {k: str(Path(v).resolve()) for k, v in paths.items()}
    run_ids = [
        run_deployment(
            TRIALS_DEPLOYMENT, timeout=0, as_subflow=False, parameters={**parameters, "tune": tune}
        ).id
        for _ in range(params.search.workers)
    ]
    _wait_for_pool(run_ids, params, _progress_of(params, paths["search_dir"], tune), logger)


@flow(name="ecg-crnn-search", log_prints=True)
def search_flow(
    params_path: str = "params.yaml",
    mode: str | None = None,
    filtered: str = "data/filtered",
    segmented: str = "data/segmented",
    search_dir: str = "search",
    promote_best: bool = False,
    repo: str = ".",
    tune: bool = False,
    recipe_path: str | None = None,
) -> dict:
    logger = get_run_logger()
    params = load_params(params_path)
    mode = mode or params.search.mode
    if tune and promote_best:
        raise EcgCrnnError("search: --tune writes recipe.yaml for the grid; --promote is for the search")
    study_name = prepare_study(params_path, search_dir, tune)
    paths = {
        "params_path": params_path,
        "filtered": filtered,
        "segmented": segmented,
        "search_dir": search_dir,
    }
    if mode == "local":
        trials_flow(params_path, filtered, segmented, search_dir, tune, seeded=True)
    elif mode == "pool":
        _run_on_pool(params, paths, tune, logger)
    else:
        raise EcgCrnnError(f"search: mode {mode!r} is not local or pool")
    if tune:
        rows = publish_tuning(params_path, search_dir, str(recipe_path or recipe_beside(params_path)))
        return {"tuned": rows}
    point = publish_results(params_path, search_dir)
    if promote_best:
        point["experiment"] = promote(
            point, study_name, repo, params.train.weight_decay, params.search.promote_timeout_s
        )
    return point


def deploy(params_path: str) -> None:
    """Create the work pool (process type) if needed and register the trial runner on it, its runs sending
    heartbeats (which the coordinator watches) every search.flow_heartbeat_s."""
    cfg = load_params(params_path).search
    deploy_to_pool(
        trials_flow,
        "flows/search.py:trials_flow",
        "ecg-crnn-trials",
        cfg.work_pool,
        str(REPO),
        {"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(cfg.flow_heartbeat_s)}},
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Optuna search over recurrent type and depth, on Prefect")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--mode", choices=["local", "pool"])
    parser.add_argument(
        "--deploy", action="store_true", help="register the trial runner on the work pool and exit"
    )
    parser.add_argument(
        "--promote",
        action="store_true",
        help="train the chosen configuration as a DVC experiment (`dvc exp run --temp`; the workspace is untouched)",
    )
    parser.add_argument(
        "--tune",
        action="store_true",
        help="tune the recipe (lr, dropout) of every architecture x window of the grid, one study each with the "
        "same budget (search.tune), and write it into recipe.yaml",
    )
    parser.add_argument(
        "--recipe", help="the recipe file --tune writes (default: recipe.yaml beside --params)"
    )
    parser.add_argument("--search-dir", default="search")
    parser.add_argument("--filtered", default="data/filtered")
    parser.add_argument("--segmented", default="data/segmented")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.deploy:
            deploy(args.params)
            return 0
        result = search_flow(
            args.params,
            args.mode,
            args.filtered,
            args.segmented,
            args.search_dir,
            args.promote,
            tune=args.tune,
            recipe_path=args.recipe,
        )
    except EcgCrnnError as exc:
        print(f"search: error: {exc}", file=sys.stderr)
        return 1
    if args.tune:
        for row in result["tuned"]:
            print(
                f"tuned {row['arch']} @ {row['window']}: lr {row['lr']:.3g}, dropout {row['dropout']:.3g}, "
                f"weight decay {row['weight_decay']:.3g}: validation macro-AUROC {row['val_macro_auroc']:.4f} "
                f"(default recipe {row['default_val_macro_auroc']})"
            )
        return 0
    which = "best" if "rule" not in result else f"to promote ({result['rule']})"
    print(f"{which}: {describe(result)}: validation macro-AUROC {result['value']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

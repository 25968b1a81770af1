"""Prefect flows for the Optuna search over recurrent type, direction and depth.

  ecg-crnn-search   creates the study, runs its trials (in-process, or as `ecg-crnn-trials` flow runs that
                    workers of a work pool pick up), then publishes the results as artifacts and files and,
                    with promote=True, trains the best configuration through DVC (`dvc exp run --temp`).
  ecg-crnn-trials   one worker's share: trials until the shared study has search.trials of them.

Run embedded (no server, journal storage):   python flows/search.py
Deploy the trial runner to a pool:            python flows/search.py --deploy
Then, with workers started (`prefect worker start --pool ecg-crnn --limit 1` on each GPU machine):
                                              python flows/search.py --mode pool
The flows only schedule; the search itself is ecg_crnn.search.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
from orchestration import REPO, crash_if_silent, deploy_to_pool, no_worker_message, state_of
from orchestration import run as _run
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from ecg_crnn.config import load_params
from ecg_crnn.errors import EcgCrnnError
from ecg_crnn.redaction import redact
from ecg_crnn.search.objective import counted_trials, run_trials
from ecg_crnn.search.results import save_results, trials_table
from ecg_crnn.search.space import describe, promotion_overrides
from ecg_crnn.search.study import create_study, load_study

TRIALS_DEPLOYMENT = "ecg-crnn-trials/ecg-crnn-trials"


@task(retries=2, retry_delay_seconds=5)
def prepare_study(params_path: str, search_dir: str) -> str:
    """Create the study once, before any trial runs (workers racing to create the schema would fail)."""
    cfg = load_params(params_path).search
    study = create_study(cfg, Path(search_dir))
    print(
        f"study {study.study_name!r} in {redact(cfg.storage) if cfg.storage else search_dir + '/journal.log'}: "
        f"{counted_trials(study)} of {cfg.trials} trials done"
    )
    return study.study_name


class TrialProgress:
    """Shows a worker's trials as they run: one Prefect log line per epoch, one per finished trial, and a
    progress artifact (share of the study's trials done) that the UI draws as a bar."""

    def __init__(self, target: int, epochs: int, study_name: str):
        self.target, self.epochs, self.study_name = target, epochs, study_name
        self.artifact = None

    def _update(self, study: optuna.Study, fraction_of_current: float) -> None:
        from prefect.artifacts import create_progress_artifact, update_progress_artifact

        done = min(self.target, counted_trials(study) + fraction_of_current)
        percent = 100.0 * done / self.target
        if self.artifact is None:
            self.artifact = create_progress_artifact(
                progress=percent,
                description=f"Search {self.study_name}: share of its {self.target} trials done",
            )
        else:
            update_progress_artifact(self.artifact, progress=percent)

    def epoch(self, trial: optuna.Trial, point: dict, record: dict) -> None:
        get_run_logger().info(
            f"trial {trial.number} {describe(point)}: epoch {record['epoch']}/{self.epochs} "
            f"val macro-AUROC {record['val_macro_auroc']:.4f} ({record['seconds']:.1f} s)"
        )
        self._update(trial.study, record["epoch"] / self.epochs)

    def trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        value = "" if trial.value is None else f": val macro-AUROC {trial.value:.4f}"
        get_run_logger().info(
            f"trial {trial.number} {trial.user_attrs.get('arch', '')} {trial.state.name.lower()}{value} "
            f"({counted_trials(study)}/{self.target} trials done)"
        )
        self._update(study, 0.0)


@flow(name="ecg-crnn-trials", log_prints=True)
def trials_flow(
    params_path: str = "params.yaml",
    filtered: str = "data/filtered",
    segmented: str = "data/segmented",
    search_dir: str = "search",
) -> int:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # each trial is logged once, below, not twice
    params = load_params(params_path)
    study = load_study(params.search, Path(search_dir))  # created beforehand by the flow, never here
    progress = TrialProgress(params.search.trials, params.search.epochs, params.search.study_name)
    ran = run_trials(
        study, Path(filtered), Path(segmented), params, report=progress.epoch, on_trial=progress.trial
    )
    print(f"this worker ran {ran} trials")
    return ran


def _wait_for_pool(run_ids, params, search_dir: str, logger) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        wait_for_trials(client, run_ids, params, search_dir, logger)


def wait_for_trials(client, run_ids, params, search_dir: str, logger) -> None:
    """Wait until the study reaches its trial count. A run that no worker picks up within
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
        done = counted_trials(load_study(cfg, Path(search_dir)))
        if done >= cfg.trials:
            return
        if all(s in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") for s in states):
            raise EcgCrnnError(
                f"search: every trial run ended ({', '.join(states)}) with {done} of "
                f"{cfg.trials} trials done; see the runs' logs"
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
        logger.info(f"{done}/{cfg.trials} trials; runs: {', '.join(states)}")
        time.sleep(2)


def _cancelled():
    from prefect.states import Cancelled

    return Cancelled(message="no worker picked up the run")


def _png_markdown(path: Path, alt: str) -> str:
    """An image the Prefect UI shows inline (a file:// link would not open in a browser elsewhere)."""
    import base64

    return f"![{alt}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"


@task
def publish_results(params_path: str, search_dir: str) -> dict:
    """Files in search/STUDY/, and artifacts the Prefect UI renders: the trials table, the best configuration,
    and the depth-by-type table with its plot inline."""
    cfg = load_params(params_path).search
    study = load_study(cfg, Path(search_dir))
    out = Path(search_dir) / cfg.study_name
    point = save_results(study, out)
    rows = trials_table(study)
    create_table_artifact(key="search-trials", table=rows, description=f"Trials of study {cfg.study_name}")
    command = " ".join(
        ["dvc exp run --temp -n", f"search-{cfg.study_name}"]
        + [f"-S '{o}'" for o in promotion_overrides(point)]
    )
    depth = pd.read_csv(out / "depth.csv")
    create_markdown_artifact(
        key="search-best",
        description="Best configuration (by validation macro-AUROC)",
        markdown=(
            f"# Search {cfg.study_name}: best configuration\n\n"
            f"| | |\n|---|---|\n| architecture | **{point['arch']}** |\n| window | {point['window_s']:g} s |\n"
            f"| hidden | {point['hidden'] or '(no recurrent layer)'} |\n| dropout | {point['dropout']:.3f} |\n"
            f"| learning rate | {point['lr']:.2e} |\n"
            f"| validation macro-AUROC | {point['value']:.4f} (trial {point['trial']}) |\n\n"
            f"{len(rows)} trials. Train and version it through DVC (the workspace is left as it is):\n\n"
            f"```\n{command}\n```\n\n"
            "## Best validation macro-AUROC by recurrent type and depth\n\n"
            f"{depth.to_markdown(index=False) if len(depth) else '(no completed trial)'}\n\n"
            f"{_png_markdown(out / 'depth.png', 'validation macro-AUROC against depth per type')}\n"
        ),
    )
    return point


@task
def promote(point: dict, study_name: str, repo: str, timeout_s: int) -> str:
    """Train and version the best configuration through the DVC pipeline, as an experiment beside the grid.
    `--temp` runs it in a temporary copy: the workspace (and what the next scheduled retraining reproduces)
    stays on the study; `dvc exp show` lists the experiment, `dvc exp apply` brings it in if wanted."""
    name = f"search-{study_name}"
    cmd = ["dvc", "exp", "run", "--temp", "-n", name] + [
        a for o in promotion_overrides(point) for a in ("-S", o)
    ]
    _run(cmd, repo, timeout_s=timeout_s)
    print(f"promoted as experiment {name!r} (workspace unchanged): dvc exp show; dvc exp apply {name}")
    return name


@flow(name="ecg-crnn-search", log_prints=True)
def search_flow(
    params_path: str = "params.yaml",
    mode: str | None = None,
    filtered: str = "data/filtered",
    segmented: str = "data/segmented",
    search_dir: str = "search",
    promote_best: bool = False,
    repo: str = ".",
) -> dict:
    logger = get_run_logger()
    params = load_params(params_path)
    mode = mode or params.search.mode
    study_name = prepare_study(params_path, search_dir)
    if mode == "local":
        trials_flow(params_path, filtered, segmented, search_dir)
    elif mode == "pool":
        from prefect.deployments import run_deployment

        run_ids = []
        for _ in range(params.search.workers):
            run = run_deployment(
                TRIALS_DEPLOYMENT,
                timeout=0,
                as_subflow=False,
                parameters={
                    "params_path": str(Path(params_path).resolve()),
                    "filtered": str(Path(filtered).resolve()),
                    "segmented": str(Path(segmented).resolve()),
                    "search_dir": str(Path(search_dir).resolve()),
                },
            )
            run_ids.append(run.id)
        _wait_for_pool(run_ids, params, search_dir, logger)
    else:
        raise EcgCrnnError(f"search: mode {mode!r} is not local or pool")
    point = publish_results(params_path, search_dir)
    if promote_best:
        point["experiment"] = promote(point, study_name, repo, params.search.promote_timeout_s)
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Optuna search over recurrent type and depth, on Prefect")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--mode", choices=["local", "pool"])
    parser.add_argument(
        "--deploy", action="store_true", help="register the trial runner on the work pool and exit"
    )
    parser.add_argument(
        "--promote",
        action="store_true",
        help="train the best configuration as a DVC experiment (`dvc exp run --temp`; the workspace is untouched)",
    )
    parser.add_argument("--search-dir", default="search")
    parser.add_argument("--filtered", default="data/filtered")
    parser.add_argument("--segmented", default="data/segmented")
    args = parser.parse_args(argv)
    try:
        if args.deploy:
            deploy(args.params)
            return 0
        point = search_flow(
            args.params, args.mode, args.filtered, args.segmented, args.search_dir, args.promote
        )
    except EcgCrnnError as exc:
        print(f"search: error: {exc}", file=sys.stderr)
        return 1
    print(f"best: {describe(point)}: validation macro-AUROC {point['value']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

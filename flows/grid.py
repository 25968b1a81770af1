"""Prefect: the study's grid (architecture x window x seed) trained and evaluated on a work pool's workers.

  ecg-crnn-grid       the coordinator, in your checkout: reproduces the data stages and pushes them to the DVC
                      remote, snapshots the workspace as a git ref, submits one `ecg-crnn-grid-run` per model
                      that is not up to date, watches them (a run whose heartbeats stop is crashed and its stage
                      resubmitted), then `dvc repro --pull`: every stage a worker ran is restored from DVC's
                      run-cache instead of re-run, and the rest (cost, drift, compare) runs here. `dvc status` is
                      then clean and `dvc exp show` shows the grid, exactly as after a local `dvc repro`.
  ecg-crnn-grid-run   one model on one worker: a fresh checkout of the snapshot (the DVC cache shared by the
                      worker's runs), `dvc repro --pull evaluate@ARCH-WINDOW-SEED` (its train stage included),
                      then `dvc push` of the outputs and `dvc push --run-cache`. Epochs show in its logs and as a
                      progress bar in the UI. With grid.resume_root on a shared disk, a stage retried on another
                      worker resumes its checkpoint. A worker started with `--limit N` runs N at once: each run
                      claims a slot of its machine as the local runner's jobs do (ecg_crnn/grid/slots.py: one GPU
                      and 1/grid.jobs_per_gpu of its memory, or train.threads cores on CPU).

The snapshot and the list of stages to run are the local runner's (`ecg-crnn grid`, ecg_crnn/grid/).

The store between machines is the DVC remote (S3 or any other); the workers need its credentials in their
environment. Local `dvc repro` stays the embedded default and gives the same outputs.

  python flows/grid.py --deploy              create the pool's deployment (once)
  prefect worker start --pool ecg-crnn --limit 1      on each GPU machine
  python flows/grid.py                       run the grid; watch it in the Prefect UI
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from orchestration import REPO, deploy_to_pool, no_worker_message, state_of
from orchestration import run as _run
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact

from ecg_crnn.config import load_params
from ecg_crnn.errors import EcgCrnnError
from ecg_crnn.grid import progress, slots
from ecg_crnn.grid.snapshot import pending_stages, snapshot, train_stage

RUN_DEPLOYMENT = "ecg-crnn-grid-run/ecg-crnn-grid-run"


# ---- the worker's side ----------------------------------------------------------------------------------


def _checkout(git_url: str, ref: str, commit: str, where: Path) -> None:
    """A checkout of exactly the coordinator's snapshot."""
    where.mkdir(parents=True)
    _run(["git", "init", "-q"], where)
    _run(["git", "fetch", "-q", git_url, ref], where)
    _run(["git", "checkout", "-q", "--detach", "FETCH_HEAD"], where)
    got = _run(["git", "rev-parse", "HEAD"], where).strip()
    if got != commit:
        raise EcgCrnnError(f"{git_url} {ref} is {got}, not the snapshot {commit}")


def _repro(cmd: list[str], checkout: Path, env: dict, stage: str, logger) -> bool:
    """Run `dvc repro` in the checkout, its lines in the run's logs and its epochs as a progress bar; returns
    whether training resumed a checkpoint."""
    bar = create_progress_artifact(progress=0.0, description=f"{stage}: epochs done")
    proc = subprocess.Popen(
        cmd, cwd=checkout, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    resumed, tail = False, []
    for line in proc.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-40:]
        if not line:
            continue
        logger.info(line)
        resumed = resumed or progress.RESUMED in line
        if at := progress.epoch(line):
            update_progress_artifact(bar, progress=100.0 * at[0] / at[1])
    if proc.wait() != 0:
        raise EcgCrnnError(f"{' '.join(cmd)} failed ({proc.returncode}):\n" + "\n".join(tail))
    update_progress_artifact(bar, progress=100.0)
    return resumed


@flow(name="ecg-crnn-grid-run", log_prints=True)
def grid_run_flow(
    git_url: str,
    ref: str,
    commit: str,
    stage: str,
    workdir: str,
    resume_root: str | None = None,
    jobs_per_gpu: int = 1,
) -> dict:
    """Reproduce one model's stages in a fresh checkout and push its outputs and run-cache entry."""
    from prefect.runtime import flow_run

    logger = get_run_logger()
    root = Path(workdir).expanduser()
    checkout = root / "runs" / f"{stage.replace('@', '-')}-{str(flow_run.id)[:8]}"
    _checkout(git_url, ref, commit, checkout)
    t0 = time.monotonic()
    # One DVC cache for all of this worker's runs: the data stages' outputs are pulled once, then linked.
    _run(["dvc", "config", "--local", "cache.dir", str(root / "cache")], checkout)
    _run(["dvc", "config", "--local", "cache.type", "reflink,hardlink,copy"], checkout)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(checkout / "src"), env.get("PYTHONPATH")) if p)
    if resume_root:
        env["ECG_CRNN_RESUME_ROOT"] = resume_root  # checkpoints where a retry on another worker finds them
    # The worker's --limit N runs share this machine as the local runner's jobs do: one slot each (one GPU and a
    # share of its memory, or train.threads cores), claimed through lock files in the worker's workdir.
    train = load_params(checkout / "params.yaml").train
    gpus = slots.visible_gpus(train.device)
    machine = slots.plan(jobs_per_gpu if gpus else None, train.threads, slots.cpu_cores(), gpus)
    with slots.claim(machine, root / "slots") as slot:
        logger.info(f"{stage}: slot {slot.name} ({', '.join(f'{k}={v}' for k, v in slot.env().items())})")
        resumed = _repro(["dvc", "repro", "--pull", stage], checkout, {**env, **slot.env()}, stage, logger)
    # Outputs first, then the run-cache entry that names them: the coordinator never finds an entry whose
    # outputs are not in the remote.
    _run(["dvc", "push", train_stage(stage), stage], checkout)
    _run(["dvc", "push", "--run-cache", train_stage(stage), stage], checkout)
    shutil.rmtree(checkout, ignore_errors=True)
    seconds = time.monotonic() - t0
    print(f"{stage}: reproduced and pushed in {seconds:.0f} s{' (resumed a checkpoint)' if resumed else ''}")
    return {"stage": stage, "seconds": seconds, "resumed": resumed}


# ---- the coordinator ------------------------------------------------------------------------------------


def _last_heartbeat(client, run) -> datetime | None:
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter

    since = run.start_time or (datetime.now(UTC) - timedelta(days=1))
    page = client.read_events(
        filter=EventFilter(
            occurred=EventOccurredFilter(since=since),
            event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{run.id}"]),
        ),
        limit=1,
    )
    return page.events[0].occurred if page.events else None


def watch(submit, stages: list[str], cfg, logger) -> dict[str, int]:
    """Wait for every stage's run; crashed, failed or silent runs are resubmitted up to grid.retries times."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    runs = {s: submit(s) for s in stages}
    attempts = dict.fromkeys(stages, 1)
    submitted = {s: time.monotonic() for s in stages}
    bar = create_progress_artifact(progress=0.0, description=f"grid: {len(stages)} models on the pool")
    with get_client(sync_client=True) as client:
        while True:
            states, done = {}, 0
            for stage, run_id in runs.items():
                run = client.read_flow_run(run_id)
                state = state_of(run)
                if state == "RUNNING":
                    beat = _last_heartbeat(client, run) or run.start_time
                    silent = (datetime.now(UTC) - beat).total_seconds() if beat else 0
                    if silent > cfg.stale_after_s:
                        client.set_flow_run_state(
                            run_id,
                            Crashed(message=f"no heartbeat for {silent:.0f} s: its worker is gone"),
                            force=True,
                        )
                        state = "CRASHED"
                if state in ("FAILED", "CRASHED", "CANCELLED"):
                    if attempts[stage] > cfg.retries:
                        raise EcgCrnnError(
                            f"grid: {stage} ended {state} {attempts[stage]} times; last: "
                            f"{run.state.message if run.state else ''} (see its run in the Prefect UI)"
                        )
                    logger.warning(
                        f"{stage}: run {state.lower()} ({run.state.message if run.state else ''}); resubmitted"
                    )
                    runs[stage], submitted[stage] = submit(stage), time.monotonic()
                    attempts[stage] += 1
                    state = "SCHEDULED"
                elif (
                    state in ("SCHEDULED", "PENDING")
                    and time.monotonic() - submitted[stage] > cfg.worker_timeout_s
                ):
                    raise EcgCrnnError(
                        "grid: "
                        + no_worker_message(
                            stage, cfg.work_pool, cfg.worker_timeout_s, "grid.worker_timeout_s"
                        )
                    )
                done += state == "COMPLETED"
                states[stage] = state
            update_progress_artifact(bar, progress=100.0 * done / max(1, len(stages)))
            if done == len(stages):
                return attempts
            running = [s for s, v in states.items() if v == "RUNNING"]
            logger.info(f"{done}/{len(stages)} models done; running: {', '.join(running) or 'none'}")
            time.sleep(3)


def _summary(models: int, pool: str, retried: dict[str, int], rerun: list[str], status: str) -> str:
    return "\n".join(
        [
            "# ecg-crnn grid",
            "",
            f"{models} models trained and evaluated on work pool `{pool}`, restored here from "
            "DVC's run-cache; cost, drift and the comparison report ran here.",
            "",
            f"Resubmitted after a crash or failure: {', '.join(f'{s} ({n}x)' for s, n in retried.items()) or 'none'}.",
            f"Trained here (missing from the run-cache): {', '.join(rerun) or 'none'}.",
            f"`dvc status`: {status}",
        ]
    )


@flow(name="ecg-crnn-grid", log_prints=True)
def grid_flow(repo: str = ".", params_path: str = "params.yaml", workdir: str | None = None) -> dict:
    from prefect.deployments import run_deployment

    logger = get_run_logger()
    repo_path = Path(repo).resolve()
    cfg = load_params(repo_path / params_path).grid
    if not _run(["dvc", "remote", "list"], repo_path).strip():
        raise EcgCrnnError(
            "grid: the workers share their results through a DVC remote, and none is configured "
            "(`dvc remote add -d store s3://bucket/prefix`; see the README)"
        )
    # 1. The data the models need, reproduced here and pushed for the workers.
    _run(["dvc", "repro", "bootstrap"], repo_path)
    _run(["dvc", "push", "download", "filter", "segment", "bootstrap"], repo_path)
    stages = pending_stages(repo_path)
    logger.info(f"{len(stages)} models to train and evaluate on work pool {cfg.work_pool!r}")
    attempts: dict[str, int] = {}
    if stages:
        snap = snapshot(repo_path, cfg.git_remote)
        logger.info(f"snapshot {snap.commit[:12]} at {snap.ref}")
        work = workdir or str(Path.home() / ".cache" / "ecg-crnn" / "grid")

        def submit(stage: str):
            params = {
                "git_url": snap.url,
                "ref": snap.ref,
                "commit": snap.commit,
                "stage": stage,
                "workdir": work,
                "resume_root": cfg.resume_root,
                "jobs_per_gpu": cfg.jobs_per_gpu,
            }
            return run_deployment(
                RUN_DEPLOYMENT, parameters=params, timeout=0, as_subflow=False, flow_run_name=stage
            ).id

        attempts = watch(submit, stages, cfg, logger)
    # 2. Everything the workers ran comes back through the run-cache; cost, drift and compare run here.
    out = _run(["dvc", "repro", "--pull"], repo_path)
    rerun = [line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage 'train@")]
    if rerun:
        logger.warning(f"not found in the run-cache, so trained here: {', '.join(rerun)}")
    _run(["dvc", "push"], repo_path)
    status = _run(["dvc", "status"], repo_path).strip()
    retried = {s: n - 1 for s, n in attempts.items() if n > 1}
    create_markdown_artifact(
        key="grid-summary",
        description="The study's grid on the work pool",
        markdown=_summary(len(stages), cfg.work_pool, retried, rerun, status),
    )
    return {"stages": stages, "retried": retried, "trained_here": rerun, "status": status}


def deploy(params_path: str) -> None:
    """Create the work pool (process type) if needed and register the per-model flow on it."""
    cfg = load_params(params_path).grid
    deploy_to_pool(
        grid_run_flow,
        "flows/grid.py:grid_run_flow",
        "ecg-crnn-grid-run",
        cfg.work_pool,
        cfg.git_remote or str(REPO),
        {"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(cfg.heartbeat_s)}},
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="The study's grid on a Prefect work pool")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--repo", default=".")
    parser.add_argument(
        "--workdir", help="where workers keep checkouts and their DVC cache (default ~/.cache/ecg-crnn/grid)"
    )
    parser.add_argument(
        "--deploy", action="store_true", help="register the per-model flow on the work pool and exit"
    )
    args = parser.parse_args(argv)
    try:
        if args.deploy:
            deploy(args.params)
            return 0
        result = grid_flow(args.repo, args.params, args.workdir)
    except EcgCrnnError as exc:
        print(f"grid: error: {exc}", file=sys.stderr)
        return 1
    print(
        f"grid: {len(result['stages'])} models on the pool, {len(result['retried'])} resubmitted, "
        f"{len(result['trained_here'])} trained here; dvc status: {result['status']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

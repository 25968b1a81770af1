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

A worker's parameters come from whoever reaches the Prefect server, so each is checked against its exact shape
before it becomes a git argument or a path (shapes.py); git runs with `--` before the URL, only the https, ssh
and file transports, and no prompt. The snapshot holds the tracked files and what the grid needs (dvc.yaml,
dvc.lock, the parameters), never other untracked files (they are named in a warning), and its ref is deleted here
and on grid.git_remote when the grid ends. The URL handed to the workers never holds a credential. Every command
is bounded in time (grid.command_timeout_s for those that move data or train), and a worker's run stops its
`dvc repro` as soon as its flow run is no longer Running (the coordinator crashed it: a retry owns the stage).

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
import threading
import time
from collections.abc import Callable
from pathlib import Path

from orchestration import REPO, crash_if_silent, deploy_to_pool, no_worker_message, state_of, stop_group
from orchestration import run as _run
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact

from ecg_crnn.config import load_params
from ecg_crnn.errors import EcgCrnnError
from ecg_crnn.grid import progress, slots
from ecg_crnn.grid.job import UPSTREAM
from ecg_crnn.grid.snapshot import (
    drop,
    git_env,
    model_stages,
    pending_stages,
    remote_url,
    snapshot,
    stage_names,
)
from ecg_crnn.markup import md_escape
from ecg_crnn.redaction import redact
from ecg_crnn.registry import REGISTRY
from ecg_crnn.shapes import commit_problem, git_url_problem, ref_problem, stage_problem

RUN_DEPLOYMENT = "ecg-crnn-grid-run/ecg-crnn-grid-run"


# ---- the worker's side ----------------------------------------------------------------------------------


def check_run_parameters(git_url: str, ref: str, commit: str, stage: str, timeout_s, jobs_per_gpu=1) -> None:
    """A run's parameters come from whoever reaches the Prefect server: each in its exact shape before it
    becomes a git argument or a path (a git URL starting with '-' would be an option such as --upload-pack)."""
    problems = [
        (name, value, problem)
        for name, value, problem in (
            ("git_url", git_url, git_url_problem(git_url)),
            ("ref", ref, ref_problem(ref)),
            ("commit", commit, commit_problem(commit)),
            ("stage", stage, stage_problem(stage, REGISTRY)),
            (
                "timeout_s",
                timeout_s,
                None if isinstance(timeout_s, int) and timeout_s > 0 else "not a positive int",
            ),
            (
                "jobs_per_gpu",
                jobs_per_gpu,
                None if isinstance(jobs_per_gpu, int) and 0 < jobs_per_gpu <= 64 else "not an int in 1..64",
            ),
        )
        if problem
    ]
    if problems:
        raise EcgCrnnError(
            "grid run: refused parameters: "
            + "; ".join(f"{n} {redact(str(v))!r}: {p}" for n, v, p in problems)
        )


def _checkout(git_url: str, ref: str, commit: str, where: Path) -> None:
    """A checkout of exactly the coordinator's snapshot."""
    _run(["git", "check-ref-format", ref], REPO)
    where.mkdir(parents=True)
    _run(["git", "init", "-q"], where)
    _run(["git", "-c", "protocol.ext.allow=never", "fetch", "-q", "--", git_url, ref], where, git_env())
    _run(["git", "checkout", "-q", "--detach", "FETCH_HEAD"], where)
    got = _run(["git", "rev-parse", "HEAD"], where).strip()
    if got != commit:
        raise EcgCrnnError(f"{redact(git_url)} {ref} is {got}, not the snapshot {commit}")


class Watchdog(threading.Thread):
    """Stops a command's process group when its deadline passes, or when its flow run is no longer Running: the
    coordinator crashed it after missed heartbeats (a retry on another worker then owns the stage) or someone
    cancelled it. A run that cannot reach the server for a moment goes on (its state is unknown, not changed)."""

    def __init__(self, proc, deadline_s: float, every_s: float, state: Callable[[], str]):
        super().__init__(daemon=True)
        self.proc, self.deadline_s, self.every_s, self.state = (
            proc,
            deadline_s,
            min(every_s, deadline_s),
            state,
        )
        self.done, self.reason = threading.Event(), None

    def run(self) -> None:
        t0 = time.monotonic()
        while not self.done.wait(self.every_s):
            if time.monotonic() - t0 > self.deadline_s:
                self.reason = f"it did not finish within {self.deadline_s:g} s"
            else:
                try:
                    state = self.state()
                except Exception:  # noqa: BLE001 - the server unreachable for a moment is no reason to stop
                    continue
                if state != "RUNNING":
                    self.reason = f"its flow run is {state} (a newer attempt owns the stage)"
            if self.reason:
                stop_group(self.proc)
                return


def _flow_run_state(flow_run_id) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return state_of(client.read_flow_run(flow_run_id))


def _reproduce(stage: str, checkout: Path, env: dict, timeout_s: int, check_s: int, state, logger) -> bool:
    """`dvc repro --pull STAGE`, its lines logged (redacted) and its epochs drawn as progress; True if it resumed
    a checkpoint. Bounded by `timeout_s` and by the run's own state (Watchdog)."""
    bar = create_progress_artifact(progress=0.0, description=f"{stage}: epochs done")
    proc = subprocess.Popen(
        ["dvc", "repro", "--pull", stage],
        cwd=checkout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    dog = Watchdog(proc, timeout_s, check_s, state)
    dog.start()
    resumed, tail = False, []
    try:
        for raw in proc.stdout:
            line = redact(raw.rstrip())
            tail = (tail + [line])[-40:]
            if not line:
                continue
            logger.info(line)
            resumed = resumed or progress.RESUMED in line
            if at := progress.epoch(line):
                update_progress_artifact(bar, progress=100.0 * at[0] / at[1])
    finally:
        dog.done.set()
        if proc.poll() is None and dog.reason is None:
            stop_group(proc)  # we are being interrupted ourselves
    code = proc.wait()
    if dog.reason:
        raise EcgCrnnError(f"dvc repro --pull {stage} was stopped: {dog.reason}")
    if code != 0:
        raise EcgCrnnError(f"dvc repro --pull {stage} failed ({code}):\n" + "\n".join(tail))
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
    timeout_s: int = 86400,
    heartbeat_s: int = 30,
    jobs_per_gpu: int = 1,
) -> dict:
    """Reproduce one model's stages in a fresh checkout and push its outputs and run-cache entry."""
    from prefect.runtime import flow_run

    check_run_parameters(git_url, ref, commit, stage, timeout_s, jobs_per_gpu)
    logger = get_run_logger()
    root = Path(workdir).expanduser()
    checkout = root / "runs" / f"{stage.replace('@', '-')}-{str(flow_run.id)[:8]}"
    _checkout(git_url, ref, commit, checkout)
    # One DVC cache for all of this worker's runs: the data stages' outputs are pulled once, then linked.
    _run(["dvc", "config", "--local", "cache.dir", str(root / "cache")], checkout)
    _run(["dvc", "config", "--local", "cache.type", "reflink,hardlink,copy"], checkout)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "ECG_CRNN_ATTEMPT": f"flow run {flow_run.id}"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(checkout / "src"), env.get("PYTHONPATH")) if p)
    if resume_root:
        env["ECG_CRNN_RESUME_ROOT"] = resume_root  # checkpoints where a retry on another worker finds them
    stages = model_stages(
        stage, stage_names(checkout)
    )  # train, evaluate and (if any) robustness of one model
    t0 = time.monotonic()
    run_id = flow_run.id
    # The worker's --limit N runs share this machine as the local runner's jobs do: one slot each (one GPU and a
    # share of its memory, or train.threads cores), claimed through lock files in the worker's workdir.
    train = load_params(checkout / "params.yaml").train
    gpus = slots.visible_gpus(train.device)
    machine = slots.plan(jobs_per_gpu if gpus else None, train.threads, slots.cpu_cores(), gpus)
    with slots.claim(machine, root / "slots") as slot:
        logger.info(f"{stage}: slot {slot.name} ({', '.join(f'{k}={v}' for k, v in slot.env().items())})")
        resumed = _reproduce(
            stages[-1],
            checkout,
            {**env, **slot.env()},
            timeout_s,
            heartbeat_s,
            lambda: _flow_run_state(run_id),
            logger,
        )
    # Outputs first, then the run-cache entries that name them: the coordinator never finds an entry whose
    # outputs are not in the remote.
    _run(["dvc", "push", *stages], checkout, timeout_s=timeout_s)
    _run(["dvc", "push", "--run-cache", *stages], checkout, timeout_s=timeout_s)
    shutil.rmtree(checkout, ignore_errors=True)
    seconds = time.monotonic() - t0
    print(f"{stage}: reproduced and pushed in {seconds:.0f} s{' (resumed a checkpoint)' if resumed else ''}")
    return {"stage": stage, "seconds": seconds, "resumed": resumed}


# ---- the coordinator ------------------------------------------------------------------------------------


def watch(submit, stages: list[str], cfg, logger) -> dict[str, int]:
    """Wait for every stage's run; crashed, failed or silent runs are resubmitted up to grid.retries times."""
    from prefect.client.orchestration import get_client

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
                if state == "RUNNING" and crash_if_silent(client, run, cfg.stale_after_s):
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
            f"`dvc status`: {md_escape(status)}",
        ]
    )


def _on_the_pool(repo: Path, params_path: str, cfg, stages: list[str], workdir: str | None, logger) -> dict:
    """Snapshot the workspace, run every stage on the pool and wait for them; the snapshot's ref is deleted
    afterwards, however the grid ends. Returns each stage's number of attempts."""
    from prefect.deployments import run_deployment

    snap = snapshot(repo, cfg.git_remote, extra=(params_path,))
    if warning := snap.left_out_warning():
        logger.warning(warning)
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
            "timeout_s": cfg.command_timeout_s,
            "heartbeat_s": cfg.heartbeat_s,
            "jobs_per_gpu": cfg.jobs_per_gpu,
        }
        return run_deployment(
            RUN_DEPLOYMENT, parameters=params, timeout=0, as_subflow=False, flow_run_name=stage
        ).id

    try:
        return watch(submit, stages, cfg, logger)
    finally:
        for problem in drop(repo, snap.ref, cfg.git_remote):
            logger.warning(problem)


@flow(name="ecg-crnn-grid", log_prints=True)
def grid_flow(repo: str = ".", params_path: str = "params.yaml", workdir: str | None = None) -> dict:
    logger = get_run_logger()
    repo_path = Path(repo).resolve()
    cfg = load_params(repo_path / params_path).grid
    long = cfg.command_timeout_s
    if not _run(["dvc", "remote", "list"], repo_path).strip():
        raise EcgCrnnError(
            "grid: the workers share their results through a DVC remote, and none is configured "
            "(`dvc remote add -d store s3://bucket/prefix`; see the README)"
        )
    # 1. The data the models need, reproduced here and pushed for the workers.
    _run(["dvc", "repro", *UPSTREAM], repo_path, timeout_s=long)
    _run(["dvc", "push", "download", "noise", "filter", "segment", "bootstrap"], repo_path, timeout_s=long)
    stages = list(pending_stages(repo_path))
    logger.info(f"{len(stages)} models to train and evaluate on work pool {cfg.work_pool!r}")
    attempts = _on_the_pool(repo_path, params_path, cfg, stages, workdir, logger) if stages else {}
    # 2. Everything the workers ran comes back through the run-cache; cost, drift and compare run here.
    out = _run(["dvc", "repro", "--pull"], repo_path, timeout_s=long)
    rerun = [line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage 'train@")]
    if rerun:
        logger.warning(f"not found in the run-cache, so trained here: {', '.join(rerun)}")
    _run(["dvc", "push"], repo_path, timeout_s=long)
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
        remote_url(REPO, cfg.git_remote) if cfg.git_remote else str(REPO),
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

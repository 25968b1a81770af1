"""The local runner, `ecg-crnn grid --jobs N`: the study's stale models trained N at a time on this machine, inside
DVC's model of the world exactly as the work-pool grid (flows/grid.py) is.

1. The data stages and the bootstrap are reproduced here, in the user's workspace (`dvc repro bootstrap noise`).
2. The workspace is snapshotted (snapshot.py: tracked files, dvc.lock, params; never an untracked file).
3. Every evaluate stage that is not up to date runs, with its train stage, in a light workspace of its own: a git
   worktree of the snapshot whose DVC uses the user's cache (workspaces.py), `dvc checkout` of the data it reads,
   then `dvc repro --single-item train@KEY evaluate@KEY` (job.py). DVC commits each stage's outputs and then its run-cache
   entry into the shared cache, so nothing needs pushing and nothing half-written is ever named there. At most N
   such jobs run at once, each in a slot of the machine (slots.py: train.threads cores on CPU; one GPU and a share
   of its memory otherwise); each job imports the snapshot's code (its worktree's src/ first on PYTHONPATH).
4. One `dvc repro` here restores every one of those stages from the run-cache instead of re-running it, and runs
   the rest (cost, drift, the report) on a quiet machine, where the latency figures are measured. `dvc status` is
   then clean and `dvc exp show` shows the grid, as after a serial `dvc repro`, with the same bytes (see README).

A failed stage is named with its log (.dvc/tmp/ecg-crnn-grid/logs/STAGE.log) and the others go on. Training
checkpoints live where a serial run keeps them (.resume/ in the workspace, or $ECG_CRNN_RESUME_ROOT), so a runner
that was killed, started again, restores what finished, resumes what was part-way, and runs only the rest.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import load_params
from ..errors import EcgCrnnError
from ..stages.train import RESUME_ROOT_ENV
from . import progress, workspaces
from .job import UPSTREAM
from .shell import run
from .slots import Slot, cpu_cores, describe, plan, visible_gpus
from .snapshot import Snapshot, drop, pending_stages, snapshot

WORK = Path(".dvc/tmp/ecg-crnn-grid")  # in the user's workspace: git- and DVC-ignored, on the cache's disk
SNAPSHOT_REF = "refs/ecg-crnn/grid/local"


@dataclass
class Job:
    stage: str  # evaluate@KEY (its train stage runs first)
    slot: Slot
    workspace: Path
    log: Path
    proc: subprocess.Popen
    started: float = field(default_factory=time.monotonic)


def job_env(repo: Path, workspace: Path, slot: Slot) -> dict:
    """A job's environment: its slot's binding, the snapshot's code, and the workspace's resume checkpoints."""
    env = {**os.environ, **slot.env(), "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(workspace / "src"), os.environ.get("PYTHONPATH")) if p
    )
    env[RESUME_ROOT_ENV] = os.environ.get(RESUME_ROOT_ENV) or str(repo / ".resume")
    return env


def kill_jobs_under(root: Path, sig: int = signal.SIGKILL) -> int:
    """Signal every process whose working directory is under `root` (the jobs of a runner that is gone: the DVC
    processes and the stage commands they started). Linux's /proc; elsewhere nothing is found."""
    prefix, count = str(root.resolve()) + os.sep, 0
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if (cwd + os.sep).startswith(prefix) and int(entry.name) != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), sig)
                count += 1
    return count


class Runner:
    """Runs the jobs of one snapshot, at most one per slot, and reports their progress through `say`."""

    def __init__(self, repo: Path, slots: list[Slot], snap: Snapshot, cache: Path, say=print):
        self.repo, self.slots, self.snap, self.cache, self.say = repo, slots, snap, cache, say
        self.work = repo / WORK
        self.running: dict[str, Job] = {}
        self.done: list[str] = []
        self.failed: dict[str, Path] = {}
        self.stages: dict[str, list[str]] = {}  # each model's evaluate stage -> its stages
        self._shown, self._shown_at = "", 0.0

    def start(self, stage: str, slot: Slot) -> None:
        name = stage.replace("@", "-")
        workspace = workspaces.add(self.repo, self.snap.commit, self.work / "work" / name, self.cache)
        log = self.work / "logs" / f"{stage}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as out:  # this run's log only
            proc = subprocess.Popen(
                [sys.executable, "-m", "ecg_crnn.grid.job", *self.stages[stage]],
                cwd=workspace,
                env=job_env(self.repo, workspace, slot),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.running[stage] = Job(stage, slot, workspace, log, proc)

    def poll(self, job: Job) -> bool:
        """True once a job's process has ended (done or failed)."""
        rc = job.proc.poll()
        if rc is None:
            return False
        del self.running[job.stage]
        seconds = time.monotonic() - job.started
        if rc == 0:
            self.done.append(job.stage)
            self.say(
                f"grid: {job.stage}: {progress.outcome(job.log.read_text(errors='replace'))} in {seconds:.0f} s"
            )
        else:
            self.failed[job.stage] = job.log
            self.say(f"grid: {job.stage} FAILED (exit {rc}); its log: {job.log}")
        workspaces.remove(self.repo, job.workspace)
        return True

    def report(self, total: int, waiting: int, every_s: float = 60.0) -> None:
        """The status line, when it changed (at most every 2 s) or once a minute."""
        states = {s: progress.state(progress.tail(j.log)) for s, j in self.running.items()}
        shown = progress.line(len(self.done), total, states, waiting, len(self.failed))
        now = time.monotonic()
        if (shown != self._shown and now - self._shown_at >= 2) or now - self._shown_at >= every_s:
            self.say(shown)
            self._shown, self._shown_at = shown, now

    def run(self, stages: dict[str, list[str]], poll_s: float = 0.5) -> dict[str, Path]:
        """Run every model's job (its evaluate stage -> its stages, snapshot.pending_stages); returns the failed
        ones with their logs."""
        self.stages = stages
        waiting, free = list(stages), list(self.slots)
        try:
            while waiting or self.running:
                while waiting and free:
                    self.start(waiting.pop(0), free.pop(0))
                for job in list(self.running.values()):
                    if self.poll(job):
                        free.append(job.slot)
                self.report(len(stages), len(waiting))
                time.sleep(poll_s)
        finally:
            if self.running:  # interrupted or broken: no job outlives its runner
                kill_jobs_under(self.work / "work", signal.SIGTERM)
                time.sleep(2)
                kill_jobs_under(self.work / "work")
                workspaces.clear(self.repo, self.work / "work")
        self.report(len(stages), 0, every_s=0)
        return self.failed


@contextlib.contextmanager
def runner_lock(work: Path):
    """One runner per workspace at a time (the lock goes with its holder, however it ends)."""
    work.mkdir(parents=True, exist_ok=True)
    with open(work / "lock", "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EcgCrnnError(
                f"another `ecg-crnn grid` is running in this workspace ({work / 'lock'})"
            ) from None
        yield


def _stream(cmd: list[str], repo: Path, say) -> list[str]:
    """Run a command in the user's workspace, its output shown as it comes; returns its lines."""
    proc = subprocess.Popen(cmd, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for raw in proc.stdout:
        lines.append(raw.rstrip("\n"))
        say(lines[-1])
    if proc.wait() != 0:
        raise EcgCrnnError(f"`{' '.join(cmd)}` failed ({proc.returncode}) in {repo}: see its output above")
    return lines


def _failure(failed: dict[str, Path], total: int) -> EcgCrnnError:
    named = "; ".join(f"{stage} (log: {log})" for stage, log in failed.items())
    return EcgCrnnError(
        f"{len(failed)} of {total} models failed: {named}. The others are in DVC's run-cache: fix the cause and "
        "run `ecg-crnn grid` again, which restores them and runs only what is missing"
    )


def run_grid(repo: Path = Path("."), jobs: int | None = None, say=print) -> dict:
    """The whole grid through the runner; returns what ran where and `dvc status`."""
    repo = Path(repo).resolve()
    if jobs is not None and jobs < 1:
        raise EcgCrnnError(f"--jobs: must be at least 1, got {jobs}")
    train = load_params(repo / "params.yaml").train
    cores, gpus = cpu_cores(), visible_gpus(train.device)
    if train.device == "cuda" and gpus == 0:
        raise EcgCrnnError("train.device is cuda, but CUDA shows no GPU to this process")
    slots = plan(jobs, train.threads, cores, gpus)
    work = repo / WORK
    with runner_lock(work):
        kill_jobs_under(work / "work")  # orphans of a runner that was killed
        workspaces.clear(repo, work / "work")
        say("grid: the data stages and the bootstrap, here")
        _stream(["dvc", "repro", *UPSTREAM], repo, say)
        stages = pending_stages(repo)
        say(f"grid: {len(stages)} models to train and evaluate; {describe(slots, train.threads, cores)}")
        if stages:
            snap = snapshot(repo, ref=SNAPSHOT_REF)
            if warning := snap.left_out_warning():
                say(f"grid: {warning}")
            try:
                failed = Runner(repo, slots, snap, workspaces.dvc_cache_dir(repo), say).run(stages)
            finally:
                for problem in drop(repo, snap.ref):
                    say(f"grid: {problem}")
            if failed:
                raise _failure(failed, len(stages))
        say("grid: restoring the models here from DVC's run-cache; cost, drift and the report run here")
        out = _stream(["dvc", "repro"], repo, say)
    trained_here = [line.split("'")[1] for line in out if line.startswith("Running stage 'train@")]
    return {
        "stages": list(stages),
        "trained_here": trained_here,
        "status": run(["dvc", "status"], repo).strip(),
    }

"""Commands and processes: running one, killing a training run part-way, stopping process trees, workers."""

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from .paths import REPO, VENV_BIN

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}


def run(cmd, cwd, check=True, env: dict | None = None):
    proc = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **GIT_ENV, **(env or {})}
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def train_cmd(params, prepared, out, resume, arch="cnn_bilstm1", cli=("ecg-crnn",)) -> list[str]:
    """`ecg-crnn train ARCH` at 2.5 s, seed 0, on the `prepared` data (`cli` swaps the command, e.g. `python -m`)."""
    return [
        *cli,
        "--params",
        str(params),
        "train",
        arch,
        "--window",
        "2.5",
        "--seed",
        "0",
        "--filtered",
        str(prepared / "filtered"),
        "--segmented",
        str(prepared / "segmented"),
        "--out",
        str(out),
        "--resume-dir",
        str(resume),
    ]


def checkpoint_in(resume: Path) -> Path | None:
    """The checkpoint of the one unfinished run under the resume base `resume` (its folder is named by the run's
    fingerprint), or None."""
    found = sorted(Path(resume).glob("*/checkpoint.pt"))
    assert len(found) <= 1, found
    return found[0] if found else None


def kill_after_first_checkpoint(
    cmd: list[str], resume: Path, seconds: float, grace: float, env: dict | None = None
) -> None:
    """Start a training command and SIGKILL it `grace` s after its first checkpoint appears under `resume`:
    part-way through the run, with no chance to clean up."""
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and checkpoint_in(resume) is None:
        time.sleep(0.02)
    time.sleep(grace)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def start_workers(pool: str, env: dict, n: int = 2) -> list[subprocess.Popen]:
    """`n` Prefect process workers on `pool`, one flow run at a time each, in their own process groups (to kill)."""
    return [
        subprocess.Popen(
            [os.path.join(VENV_BIN, "prefect"), "worker", "start", "--pool", pool, "--limit", "1"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(n)
    ]


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant: a process worker starts each flow run in a session of its
    own, so killing the worker's process group alone would leave the run going."""
    import psutil

    parent = psutil.Process(pid)
    for proc in [*parent.children(recursive=True), parent]:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGKILL)


def stop_group(proc: subprocess.Popen, grace: float = 20) -> None:
    """Stop a process started with start_new_session=True and its children: SIGINT (Prefect's servers and
    workers stop on it, not on SIGTERM), then SIGKILL after `grace` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

"""What the flows share: running a command, deploying a flow onto a process work pool, and reading runs' states.

Imported by the flow scripts as a sibling module (Prefect puts a flow's folder on sys.path when it loads it, and
`python flows/NAME.py` does too).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ecg_crnn.errors import EcgCrnnError

REPO = Path(__file__).resolve().parents[1]


def run(cmd: list[str], cwd: Path | str, env: dict | None = None, echo: bool = False) -> str:
    """A command's stdout; a failure names the command, its exit status and the end of its stderr."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if echo:
        print(f"$ {' '.join(cmd)}\n{proc.stdout[-3000:]}")
    if proc.returncode != 0:
        raise EcgCrnnError(f"{' '.join(cmd)} failed ({proc.returncode}) in {cwd}:\n{proc.stderr[-3000:]}")
    return proc.stdout


def deploy_to_pool(flow, entrypoint: str, name: str, pool: str, source: str, job_variables=None) -> None:
    """Create the process work pool (or keep it) and register `flow` on it, from `source` (a path or git URL)."""
    subprocess.run(
        ["prefect", "work-pool", "create", pool, "--type", "process", "--overwrite"],
        check=True,
        capture_output=True,
    )
    flow.from_source(source=source, entrypoint=entrypoint).deploy(
        name=name, work_pool_name=pool, job_variables=job_variables or {}, print_next_steps=False
    )
    print(
        f"deployed {flow.name}/{name} on work pool {pool!r}; start workers with "
        f"`prefect worker start --pool {pool} --limit 1` (one per GPU)"
    )


def state_of(run) -> str:
    """A flow run's state type ("SCHEDULED", "RUNNING", "COMPLETED", ...), PENDING before it has one."""
    return run.state.type.value if run.state else "PENDING"


def no_worker_message(what: str, pool: str, seconds: int, key: str) -> str:
    return (
        f"no worker of work pool {pool!r} picked up {what} within {seconds} s ({key}); start one with "
        f"`prefect worker start --pool {pool} --limit 1`"
    )

"""Running a command whose failure must be named (the command, its exit status, where, the end of its output)
and that must never hang or outlive its caller: bounded in time, its whole process group stopped on a timeout
or an interruption, URLs in its messages redacted. The grid runner and the Prefect flows both run commands here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from ..errors import EcgCrnnError
from ..redaction import redact

# The bound of a bookkeeping command (git, `dvc status`, `dvc config`, `prefect work-pool create`): they touch
# metadata of a few MB at most, so minutes means something is stuck (a prompt, a dead server). Commands that move
# data or train (dvc repro, push, pull) get their own bound from params.yaml (grid.command_timeout_s).
QUICK_S = 600


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the command's whole process group (dvc's own children too), then SIGKILL what is left."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run(
    cmd: list[str], cwd: Path | str, env: dict | None = None, echo: bool = False, timeout_s: float = QUICK_S
) -> str:
    """A command's stdout; a failure names the command, its exit status and the end of its stderr, and a command
    still running after `timeout_s` is stopped (with its children) and named. URLs in messages are redacted."""
    shown = redact(" ".join(cmd))
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        stop_group(proc)
        raise EcgCrnnError(
            f"{shown} did not finish within {timeout_s:g} s in {cwd}; it was stopped"
        ) from None
    except BaseException:  # interrupted here: the command must not outlive us
        stop_group(proc)
        raise
    if echo:
        print(redact(f"$ {shown}\n{out[-3000:]}"))
    if proc.returncode != 0:
        tail = err or out
        raise EcgCrnnError(f"{shown} failed ({proc.returncode}) in {cwd}:\n{redact(tail[-3000:])}")
    return out

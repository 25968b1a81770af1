"""Running a command whose failure must be named: the command, its exit status, where, and the end of its output."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..errors import EcgCrnnError


def run(cmd: list[str], cwd: Path | str, env: dict | None = None) -> str:
    """A command's stdout; a failure raises with the command, its exit status and the end of its stderr."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout)[-3000:]
        raise EcgCrnnError(f"{' '.join(cmd)} failed ({proc.returncode}) in {cwd}:\n{tail}")
    return proc.stdout

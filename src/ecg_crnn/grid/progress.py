"""What a job's output says about it: the epoch its training is at, whether a stage ran or came from the cache.

The train stage prints one line per epoch (`train ARCH seed S: epoch E/N ...`, training.py); DVC prints
`Running stage 'NAME'` before a stage's command and `Stage 'NAME' is cached - skipping run` when it restores the
stage from its run-cache. The runner reads the end of each job's log; the work-pool flow reads its run's output.
"""

from __future__ import annotations

import re
from pathlib import Path

EPOCH = re.compile(r"train \S+ seed \d+: epoch (\d+)/(\d+)")
RUNNING = re.compile(r"Running stage '([^']+)'")
CACHED = re.compile(r"Stage '([^']+)' is cached - skipping run")
RESUMED = "resuming after epoch"


def tail(path: Path, size: int = 16384) -> str:
    """The last `size` bytes of a log file ('' while it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - size))
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def epoch(text: str) -> tuple[int, int] | None:
    """(epoch done, epochs of the budget) of the last epoch line in `text`."""
    found = EPOCH.findall(text)
    return (int(found[-1][0]), int(found[-1][1])) if found else None


def state(text: str) -> str:
    """A job's state from its log so far: 'starting', 'training E/N', 'evaluating', 'restoring'."""
    marks = [(m.start(), "run", m.group(1)) for m in RUNNING.finditer(text)]
    marks += [(m.start(), "cached", m.group(1)) for m in CACHED.finditer(text)]
    if not marks:
        return "starting"
    _, kind, stage = max(marks)
    if kind == "cached":
        return "restoring"
    if stage.startswith("train@"):
        at = epoch(text[max(m[0] for m in marks) :])
        return f"training, epoch {at[0]}/{at[1]}" if at else "training"
    return "evaluating"


def outcome(text: str) -> str:
    """How a finished job got its stages: trained (and whether it resumed a checkpoint), or restored."""
    ran = {m.group(1).split("@")[0] for m in RUNNING.finditer(text)}
    if "train" in ran:
        return "trained, resumed a checkpoint" if RESUMED in text else "trained"
    if "evaluate" in ran:
        return "evaluated (model from the cache)"
    return "restored from the run-cache"


def line(done: int, total: int, running: dict[str, str], waiting: int, failed: int) -> str:
    """One status line: models done of all, what each running job is doing, how many wait or failed."""
    jobs = ", ".join(f"{stage.split('@', 1)[1]} [{what}]" for stage, what in running.items()) or "none"
    extra = f"; {failed} failed" if failed else ""
    return f"grid: {done}/{total} done; running: {jobs}; {waiting} waiting{extra}"

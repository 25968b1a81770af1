"""A machine split into job slots, so that jobs side by side share it instead of fighting over it.

On CPU a job takes `train.threads` cores (a parameter: see resources.py), so at most cores // threads jobs run at
once. With GPUs, every job is bound to one of them (CUDA_VISIBLE_DEVICES) with `per_gpu` jobs on each, and each
may allocate at most its share of that GPU's memory, less a margin for the CUDA contexts, which live outside
PyTorch's allocator (~0.5 GB each). The local runner hands its slots to its jobs itself; runs of a Prefect worker
started with `--limit N` claim theirs through lock files on the host (`claim`), so N runs on one machine spread over
its GPUs the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..resources import GPU_MEMORY_ENV

CONTEXT_MARGIN = 0.9  # of a GPU's memory, the share its jobs' allocators split between them


@dataclass(frozen=True)
class Slot:
    index: int
    gpu: int | None = None  # None: a CPU job
    memory_fraction: float | None = None

    @property
    def name(self) -> str:
        return f"cpu{self.index}" if self.gpu is None else f"gpu{self.gpu}-{self.index}"

    def env(self) -> dict[str, str]:
        """What a job in this slot gets in its environment (neither changes a result, only where it runs)."""
        if self.gpu is None:
            return {"CUDA_VISIBLE_DEVICES": ""}  # a CPU slot never touches a GPU another slot holds
        return {"CUDA_VISIBLE_DEVICES": str(self.gpu), GPU_MEMORY_ENV: f"{self.memory_fraction:.4f}"}


def cpu_cores() -> int:
    """The cores this process may run on (its affinity mask, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def visible_gpus(device: str) -> int:
    """GPUs the jobs will train on: none when train.device is cpu, else those CUDA shows this process."""
    if device == "cpu":
        return 0
    import torch

    return torch.cuda.device_count()


def plan(jobs: int | None, threads: int, cores: int, gpus: int) -> list[Slot]:
    """The slots of a machine. CPU: `jobs` (default and cap: cores // threads, at least 1). GPUs: `jobs` per GPU
    (default 1), numbered so that the first jobs go to different GPUs."""
    if gpus == 0:
        most = max(1, cores // threads)
        return [Slot(i) for i in range(min(jobs or most, most))]
    per_gpu = jobs or 1
    share = CONTEXT_MARGIN / per_gpu
    return [Slot(k * gpus + g, g, share) for k in range(per_gpu) for g in range(gpus)]


def describe(slots: list[Slot], threads: int, cores: int) -> str:
    """One line on how the machine is split, and a warning when the jobs' threads outnumber its cores."""
    gpus = sorted({s.gpu for s in slots if s.gpu is not None})
    where = (
        f"{len(slots) // len(gpus)} per GPU on {len(gpus)} GPU{'s' if len(gpus) > 1 else ''}, each with at most "
        f"{slots[0].memory_fraction:.0%} of its memory"
        if gpus
        else "on CPU"
    )
    line = f"{len(slots)} job{'s' if len(slots) > 1 else ''} at once, {where}, {threads} thread(s) each"
    if len(slots) * threads > cores:
        line += f" (more threads than the {cores} cores: lower train.threads or --jobs)"
    return line


@contextlib.contextmanager
def claim(slots: list[Slot], lock_dir: Path, poll_s: float = 1.0):
    """Hold the first free slot of this machine (an exclusive lock on its file in `lock_dir`) for the block;
    waits while all are held. A holder that dies releases its lock with it."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    while True:
        for slot in slots:
            f = open(lock_dir / f"{slot.name}.lock", "a")  # noqa: SIM115 (held open for the block)
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            try:
                yield slot
                return
            finally:
                f.close()
        time.sleep(poll_s)

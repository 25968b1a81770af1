"""What one job may use of the machine: its CPU threads, and on a GPU which device and how much of its memory.

The two kinds are set apart on purpose. On CPU a model's bytes depend on the thread count (the reductions inside
convolutions and recurrent layers are split by thread), so threads are a parameter, `train.threads`, recorded in
the model file and in the resume fingerprint, never read from the machine or from OMP_NUM_THREADS. Which GPU a
job runs on (CUDA_VISIBLE_DEVICES) and how much of its memory it may take change no result, only whether several
jobs fit side by side, so a runner hands them over in the environment (see grid/slots.py).
"""

from __future__ import annotations

import os

from .errors import EcgCrnnError

GPU_MEMORY_ENV = "ECG_CRNN_GPU_MEMORY_FRACTION"


def gpu_memory_fraction(environ=os.environ) -> float | None:
    """The share of its GPU's memory this job may allocate, from $ECG_CRNN_GPU_MEMORY_FRACTION (unset: all)."""
    raw = environ.get(GPU_MEMORY_ENV)
    if not raw:
        return None
    try:
        fraction = float(raw)
    except ValueError:
        fraction = -1.0
    if not 0 < fraction <= 1:
        raise EcgCrnnError(f"${GPU_MEMORY_ENV}: expected a fraction in (0, 1], got {raw!r}")
    return fraction


def bind(threads: int | None, device) -> None:
    """Run this process's torch work on `threads` CPU threads (None: leave torch's count) and, on CUDA, within
    its share of the GPU's memory.

    The memory bound caps PyTorch's caching allocator (torch.cuda.set_per_process_memory_fraction): a job that
    outgrows it fails with an out-of-memory error naming the cap, instead of starving the jobs beside it."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    fraction = gpu_memory_fraction()
    if fraction is not None and getattr(device, "type", str(device)) == "cuda":
        torch.cuda.set_per_process_memory_fraction(fraction, getattr(device, "index", None))

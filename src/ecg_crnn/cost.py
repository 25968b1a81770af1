"""What an architecture costs at one window length, independent of its training: parameters,
multiply-accumulates and CPU latency per record (all its evaluation windows)."""

from __future__ import annotations

import time

import numpy as np
import torch

from .config import ModelSettings
from .models import build_model, count_macs, count_parameters


def cpu_latency_ms(model: torch.nn.Module, n_leads: int, starts: list[int], window: int, runs: int) -> float:
    """Median wall time of scoring one 10 s record (all its windows, batch of one record) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = model.to("cpu").eval()
        x = torch.randn(len(starts), n_leads, window)
        times = []
        with torch.no_grad():
            for i in range(runs + 3):
                t = time.perf_counter()
                torch.sigmoid(model(x)).amax(dim=0)
                if i >= 3:  # the first calls warm up allocators and kernels
                    times.append(time.perf_counter() - t)
    finally:
        torch.set_num_threads(threads)
    return float(np.median(times) * 1000)


def architecture_cost(
    arch: str,
    n_leads: int,
    n_classes: int,
    model_cfg: ModelSettings,
    window: int,
    starts: list[int],
    runs: int,
) -> dict:
    """What an architecture costs at one window length, independent of its training: parameters,
    multiply-accumulates and CPU latency per record (all its evaluation windows)."""
    torch.manual_seed(0)
    model = build_model(arch, n_leads, n_classes, model_cfg)
    return {
        "params": count_parameters(model),
        "macs_per_record": count_macs(model, n_leads, window) * len(starts),
        "cpu_latency_ms": cpu_latency_ms(model, n_leads, starts, window, runs),
        "windows_per_record": len(starts),
    }

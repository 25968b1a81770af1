"""What a trial's model costs, for a multi-objective search: parameters, multiply-accumulates per record (every
evaluation window of a 10 s record, as the cost stage counts them) and CPU latency per record.

Parameters and multiply-accumulates are counted from the network's shapes: exact and the same on every machine.
Latency is measured, on one thread, in the worker that runs the trial: on a busy or shared machine it carries that
machine's noise into the front, which is why params.yaml prefers the counts.
"""

from __future__ import annotations

import torch

from ..config import ModelSettings
from ..cost import cpu_latency_ms
from ..dataset import StudyData
from ..models import build_model, count_macs, count_parameters


def trial_costs(arch: str, data: StudyData, model_cfg: ModelSettings, latency_runs: int) -> dict[str, float]:
    """{params, macs, latency} of `arch` at the data's window; latency only measured when `latency_runs` > 0."""
    # Forked so that building this copy of the network draws none of the trial's random numbers.
    with torch.random.fork_rng(devices=[]):
        model = build_model(arch, data.n_leads, len(data.classes), model_cfg)
    costs = {
        "params": float(count_parameters(model)),
        "macs": float(count_macs(model, data.n_leads, data.window) * len(data.eval_starts)),
    }
    if latency_runs > 0:
        costs["latency"] = cpu_latency_ms(
            model, data.n_leads, list(data.eval_starts), data.window, latency_runs
        )
    return costs

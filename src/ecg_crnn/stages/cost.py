"""The cost stage: parameters, multiply-accumulates and CPU latency per record of one architecture at one window,
into evaluation/WINDOWs/ARCH/cost.json (latency is wall-clock: not reproducible byte for byte)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_json
from ..config import Params
from ..cost import architecture_cost
from ..data.windows import window_layout
from ..layout import FILTERED, SEGMENTED, cost_file
from ..registry import get_architecture


@dataclass(frozen=True)
class Paths:
    filtered: Path = FILTERED
    segmented: Path = SEGMENTED
    out: Path | None = None  # default: evaluation/WINDOWs/ARCH/cost.json


def run(params: Params, arch: str, window_s: float, paths: Paths = Paths()) -> dict:
    get_architecture(arch)
    layout = json.loads((Path(paths.segmented) / "layout.json").read_text())
    classes = json.loads((Path(paths.filtered) / "classes.json").read_text())["classes"]
    leads = json.loads((Path(paths.filtered) / "signals.json").read_text())["leads"]
    window, starts = window_layout(layout, window_s)
    cost = architecture_cost(
        arch, len(leads), len(classes), params.models, window, starts, params.evaluate.latency_runs
    )
    cost.update({"arch": arch, "window_s": float(window_s)})
    write_json(paths.out or cost_file(arch, window_s), cost)
    print(
        f"cost {arch} {window_s:g} s: {cost['params']:,} parameters, "
        f"{cost['macs_per_record'] / 1e6:.1f} MMAC and {cost['cpu_latency_ms']:.1f} ms (1 CPU thread) per record"
    )
    return cost

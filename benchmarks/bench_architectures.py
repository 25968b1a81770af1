"""Cost of each architecture at each window length: epoch time on full-size data (CPU or CUDA), and CPU
latency per 10 s record (one thread) against scoring its windows one by one.

Epoch time = training steps over the 17k-record training folds (timed over --steps steps after warm-up steps,
then scaled to the epoch's step count) + scoring the validation fold (timed on --val-records records, then
scaled), with the study's default sizes and the train stage's own loop (bf16 autocast on CUDA). From it, the
cost of the whole grid (13 architectures x windows x seeds x epochs) is stated.
Usage: python benchmarks/bench_architectures.py [--device cuda] [--windows 2.5 10] [--write] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import dataset, machine, prepared, write_section
from torch import nn

from ecg_crnn.config import ModelSettings, Params, TrainSettings
from ecg_crnn.cost import cpu_latency_ms
from ecg_crnn.models import build_model, count_parameters, predict_proba
from ecg_crnn.registry import REGISTRY
from ecg_crnn.training import make_deterministic, run_epoch


def per_window_latency_ms(model, n_leads, starts, window, runs) -> float:
    """The naive way: each window of the record as its own batch-of-one forward pass."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x = torch.randn(len(starts), n_leads, window)
        times = []
        with torch.no_grad():
            for i in range(runs + 3):
                t = time.perf_counter()
                torch.stack([torch.sigmoid(model(x[j : j + 1]))[0] for j in range(len(starts))]).amax(dim=0)
                if i >= 3:
                    times.append(time.perf_counter() - t)
    finally:
        torch.set_num_threads(threads)
    return float(np.median(times) * 1000)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def epoch_seconds(name, data, device, tcfg, cfg, steps, val_records) -> float:
    train, val = data.splits["train"], data.splits["val"]
    torch.manual_seed(0)
    model = build_model(name, data.n_leads, len(data.classes), cfg)
    model = model.to(device)
    xt, yt = torch.from_numpy(train.x).to(device), torch.from_numpy(train.y).to(device)
    opt, loss_fn = torch.optim.AdamW(model.parameters()), nn.BCEWithLogitsLoss()
    gen = torch.Generator(device=device).manual_seed(0)
    autocast = device.type == "cuda" and tcfg.bf16
    run_epoch(
        model, opt, None, loss_fn, xt, yt, data.window, tcfg.batch_size, gen, 1.0, autocast, max_steps=3
    )
    _sync(device)
    t = time.perf_counter()
    run_epoch(
        model, opt, None, loss_fn, xt, yt, data.window, tcfg.batch_size, gen, 1.0, autocast, max_steps=steps
    )
    _sync(device)
    train_s = (time.perf_counter() - t) / steps * -(-len(train.x) // tcfg.batch_size)
    n = min(val_records, len(val.x))
    predict_proba(
        model, val.x[:n], data.eval_starts, data.window, device=device, autocast=autocast
    )  # warm-up
    _sync(device)
    t = time.perf_counter()
    predict_proba(model, val.x[:n], data.eval_starts, data.window, device=device, autocast=autocast)
    _sync(device)
    return train_s + (time.perf_counter() - t) / n * len(val.x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "ecg-crnn-bench-ptbxl")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--windows", type=float, nargs="+", default=[2.5, 10.0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--val-records", type=int, default=256)
    parser.add_argument("--runs", type=int, default=30, help="latency runs (CPU)")
    parser.add_argument("--no-latency", action="store_true", help="skip the CPU latency columns")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    args = parser.parse_args()
    device = torch.device(args.device)
    make_deterministic()
    cfg, tcfg, params = ModelSettings(), TrainSettings(), Params()
    raw = dataset(args.data)
    rows, totals = [], {}
    for w in args.windows:
        data = prepared(raw, Path(tempfile.gettempdir()) / "ecg-crnn-bench-work", w)
        for name in REGISTRY:
            epoch_s = epoch_seconds(name, data, device, tcfg, cfg, args.steps, args.val_records)
            row = {"window_s": w, "arch": name, "epoch_s": epoch_s}
            if not args.no_latency:
                model = build_model(name, data.n_leads, len(data.classes), cfg).eval()
                row["params"] = count_parameters(model)
                row["batched_ms"] = cpu_latency_ms(
                    model, data.n_leads, data.eval_starts, data.window, args.runs
                )
                row["naive_ms"] = per_window_latency_ms(
                    model, data.n_leads, data.eval_starts, data.window, args.runs
                )
            rows.append(row)
            totals[w] = totals.get(w, 0.0) + epoch_s
            print(row, flush=True)
        n_train, n_val = len(data.splits["train"].x), len(data.splits["val"].x)
    label = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    seeds, epochs = len(params.train.seeds), params.train.epochs
    grid_h = sum(totals.values()) * seeds * epochs / 3600
    lines = [
        f"Device: **{label}** (torch {torch.__version__}; {machine()}). Default sizes ({cfg.channels} channels, "
        f"{cfg.hidden} hidden), batch {tcfg.batch_size}{', bf16 autocast' if device.type == 'cuda' else ''}; "
        f"{n_train:,} training and {n_val:,} validation records (full-size synthetic PTB-XL, 100 Hz); "
        f"{args.steps} timed steps after 3 warm-up steps, scaled to the epoch.",
        "",
        "| architecture | " + " | ".join(f"epoch at {w:g} s" for w in args.windows) + " |",
        "| --- | " + " | ".join("---:" for _ in args.windows) + " |",
    ]
    for name in REGISTRY:
        cells = [
            next(r for r in rows if r["arch"] == name and r["window_s"] == w)["epoch_s"] for w in args.windows
        ]
        lines.append(
            f"| {name} | "
            + " | ".join(f"{c:.1f} s" if c < 120 else f"{c / 60:.1f} min" for c in cells)
            + " |"
        )
    lines += [
        "| **all 13** | " + " | ".join(f"**{totals[w] / 60:.1f} min**" for w in args.windows) + " |",
        "",
        f"The default grid (13 architectures x {len(args.windows)} windows x {seeds} seeds x {epochs} epochs, "
        f"no early stopping) costs about **{grid_h:.1f} h** of training on this device; early stopping's "
        "cool-down usually ends runs sooner.",
    ]
    if not args.no_latency:
        lines += [
            "",
            f"CPU latency per 10 s record (one thread, median of {args.runs} runs): its evaluation windows "
            "scored as one batch against window by window.",
            "",
            "| architecture | window | parameters | ms/record (batched) | ms/record (window by window) | speed-up |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in rows:
            lines.append(
                f"| {r['arch']} | {r['window_s']:g} s | {r['params'] / 1e3:,.0f}k | {r['batched_ms']:.1f} | "
                f"{r['naive_ms']:.1f} | {r['naive_ms'] / r['batched_ms']:.1f}x |"
            )
    lines += ["", f"Run: `python benchmarks/bench_architectures.py --device {device.type} --write`"]
    report = "\n".join(lines)
    print(report)
    if args.json:
        args.json.write_text(json.dumps({"device": label, "rows": rows, "report": report}, indent=2))
    if args.write:
        title = "GPU" if device.type == "cuda" else "CPU"
        write_section(f"Architectures: epoch time per window ({title})", report)


if __name__ == "__main__":
    main()

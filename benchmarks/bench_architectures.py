"""Cost of each architecture: CPU latency per 10 s record (one thread) against scoring its windows one
by one, and the epoch time on full-size data, from which the cost of the whole study is stated.

Epoch time = training steps over the 17k-record training folds (timed over --steps steps after a warm-up,
then scaled to the epoch's step count) + scoring the validation fold (timed on --val-records records, then
scaled). Usage: python benchmarks/bench_architectures.py [--steps 20] [--write]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import dataset, machine, prepared, write_section
from torch import nn

from ecg_crnn.config import ModelSettings, Params, TrainSettings
from ecg_crnn.evaluate import cpu_latency_ms
from ecg_crnn.models import REGISTRY, build_model, count_macs, count_parameters
from ecg_crnn.train import predict_proba, run_epoch


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "ecg-crnn-bench-ptbxl")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--val-records", type=int, default=256)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    data = prepared(dataset(args.data), Path(tempfile.gettempdir()) / "ecg-crnn-bench-work")
    train, val = data.splits["train"], data.splits["val"]
    cfg, tcfg = ModelSettings(), TrainSettings()
    epochs = Params().train.epochs
    steps_per_epoch = -(-len(train.x) // tcfg.batch_size)
    xt, yt = torch.from_numpy(train.x), torch.from_numpy(train.y)
    rows, total_epoch_s = [], 0.0
    for name in REGISTRY:
        torch.manual_seed(0)
        model = build_model(
            name, data.n_leads, len(data.classes), cfg.channels, cfg.kernel_size, cfg.hidden, cfg.dropout
        )
        opt, loss_fn, gen = torch.optim.AdamW(model.parameters()), nn.BCEWithLogitsLoss(), torch.Generator()
        run_epoch(model, opt, None, loss_fn, xt, yt, data.window, tcfg.batch_size, gen, max_steps=2)
        t = time.perf_counter()
        run_epoch(model, opt, None, loss_fn, xt, yt, data.window, tcfg.batch_size, gen, max_steps=args.steps)
        train_s = (time.perf_counter() - t) / args.steps * steps_per_epoch
        t = time.perf_counter()
        predict_proba(model, val.x[: args.val_records], data.eval_starts, data.window)
        val_s = (time.perf_counter() - t) / args.val_records * len(val.x)
        model.eval()
        batched = cpu_latency_ms(model, data.n_leads, data.eval_starts, data.window, args.runs)
        naive = per_window_latency_ms(model, data.n_leads, data.eval_starts, data.window, args.runs)
        epoch_s = train_s + val_s
        total_epoch_s += epoch_s
        rows.append(
            (
                name,
                count_parameters(model),
                count_macs(model, data.n_leads, data.window) * len(data.eval_starts),
                batched,
                naive,
                epoch_s,
            )
        )
        print(rows[-1], flush=True)
    lines = [
        f"Default sizes ({cfg.channels} channels, {cfg.hidden} hidden), {len(data.classes)} synthetic classes, "
        f"{len(data.eval_starts)} windows of {data.window} samples per 10 s record. Latency: median of "
        f"{args.runs} runs, one CPU thread, one record. Epoch: {len(train.x):,} training and {len(val.x):,} "
        f"validation records, CPU ({torch.get_num_threads()} threads), {args.steps} timed steps scaled to "
        f"{steps_per_epoch} steps. {machine()}.",
        "",
        "| architecture | parameters | MMAC/record | ms/record (windows batched) | ms/record (window by window) | "
        "speed-up | epoch on CPU |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, params, macs, batched, naive, epoch_s in rows:
        lines.append(
            f"| {name} | {params / 1e3:,.0f}k | {macs / 1e6:,.0f} | {batched:.1f} | {naive:.1f} | "
            f"{naive / batched:.1f}x | {epoch_s / 60:.1f} min |"
        )
    study_h = total_epoch_s * epochs / 3600
    lines += [
        "",
        f"One epoch of every architecture: {total_epoch_s / 60:.0f} min on this CPU; the whole study at "
        f"`train.epochs: {epochs}` without early stopping: about {study_h:.0f} h on CPU (early stopping usually "
        "ends runs sooner). A GPU run was not possible in this environment, so no GPU figure is given.",
        "",
        "Run: `python benchmarks/bench_architectures.py --write`",
    ]
    report = "\n".join(lines)
    print(report)
    if args.write:
        write_section("Architectures: latency and epoch time", report)


if __name__ == "__main__":
    main()

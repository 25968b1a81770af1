"""Training throughput of cnn_bilstm1: the pipeline's loop against the per-record Dataset + DataLoader
loops most users write, same model, same batch size, same optimizer, measured in one run on CPU.

Naive loops (default collation, num_workers=0, shuffle=True, one random 2.5 s crop per record):
  naive-disk:   __getitem__ reads the record with wfdb.rdsamp and standardizes it (common in PTB-XL repos)
  naive-memory: __getitem__ indexes an in-memory standardized array (PTB-XL's example script loads
                everything with rdsamp first, then wraps it in a Dataset)
Pipeline: `train.run_epoch`, batches cut from tensors already in memory (on the GPU when there is one).

Usage: python benchmarks/bench_train_throughput.py [--steps 30] [--write]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import wfdb
from common import dataset, machine, prepared, write_section
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ecg_crnn.config import ModelSettings
from ecg_crnn.dataset import standardize
from ecg_crnn.models import build_model
from ecg_crnn.train import run_epoch

BATCH = 64


class DiskDataset(Dataset):
    def __init__(self, paths, y, mean, std, window):
        self.paths, self.y, self.mean, self.std, self.window = paths, y, mean, std, window

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        signal, _ = wfdb.rdsamp(str(self.paths[i]))
        x = standardize(signal.T.astype(np.float32), self.mean, self.std)
        s = np.random.randint(0, x.shape[1] - self.window + 1)
        return torch.from_numpy(x[:, s : s + self.window].copy()), torch.from_numpy(self.y[i])


class MemoryDataset(Dataset):
    def __init__(self, x, y, window):
        self.x, self.y, self.window = x, y, window

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        s = np.random.randint(0, self.x.shape[2] - self.window + 1)
        return torch.from_numpy(self.x[i, :, s : s + self.window].copy()), torch.from_numpy(self.y[i])


def fresh(n_classes: int):
    torch.manual_seed(0)
    cfg = ModelSettings()
    model = build_model("cnn_bilstm1", 12, n_classes, cfg.channels, cfg.kernel_size, cfg.hidden, cfg.dropout)
    return model, torch.optim.AdamW(model.parameters(), lr=1e-3), nn.BCEWithLogitsLoss()


def naive_loop(dataset_, n_classes: int, steps: int) -> float:
    model, opt, loss_fn = fresh(n_classes)
    loader = DataLoader(dataset_, batch_size=BATCH, shuffle=True)
    it = iter(loader)

    def step(xb, yb):
        loss = loss_fn(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for _ in range(3):  # warm-up
        step(*next(it))
    t = time.perf_counter()
    for _ in range(steps):
        step(*next(it))
    return steps * BATCH / (time.perf_counter() - t)


def pipeline_loop(x, y, window, steps: int) -> float:
    model, opt, loss_fn = fresh(y.shape[1])
    gen = torch.Generator().manual_seed(0)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    run_epoch(model, opt, None, loss_fn, xt, yt, window, BATCH, gen, 1.0, max_steps=3)  # warm-up
    t = time.perf_counter()
    run_epoch(model, opt, None, loss_fn, xt, yt, window, BATCH, gen, 1.0, max_steps=steps)
    return steps * BATCH / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "ecg-crnn-bench-ptbxl")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    raw = dataset(args.data)
    data = prepared(raw, Path(tempfile.gettempdir()) / "ecg-crnn-bench-work")
    train = data.splits["train"]
    table = pd.read_csv(Path(tempfile.gettempdir()) / "ecg-crnn-bench-work" / "filtered" / "labels.csv")
    ids = pd.Series(range(len(table)), index=table["ecg_id"])
    paths = [raw / table["filename"][ids[i]] for i in train.ecg_ids]
    torch.set_num_threads(torch.get_num_threads())
    results = {
        "naive-disk: per-record Dataset reading WFDB": naive_loop(
            DiskDataset(paths, train.y, data.mean, data.std, data.window), train.y.shape[1], args.steps
        ),
        "naive-memory: per-record Dataset over an in-memory array": naive_loop(
            MemoryDataset(train.x, train.y, data.window), train.y.shape[1], args.steps
        ),
        "ecg-crnn `run_epoch`": pipeline_loop(train.x, train.y, data.window, args.steps),
    }
    ours = results["ecg-crnn `run_epoch`"]
    lines = [
        f"cnn_bilstm1 (default sizes), batch {BATCH}, 2.5 s crops at 100 Hz, AdamW, {args.steps} timed steps after 3 "
        f"warm-up steps; {len(train.x):,} full-size synthetic training records; CPU, "
        f"{torch.get_num_threads()} threads; {machine()}.",
        "",
        "| training loop | samples/s | ecg-crnn is |",
        "| --- | ---: | ---: |",
    ]
    for name, sps in results.items():
        lines.append(f"| {name} | {sps:,.0f} | {ours / sps:.2f}x |")
    lines += [
        "",
        "On CPU the model's own forward and backward passes take ~98% of a step (convolution backward, the",
        "oneDNN LSTM layers, max-pooling), so a loop can only win where the naive one spends time outside",
        "the model: reading records per item (naive-disk) does; indexing an in-memory array (naive-memory)",
        "costs under 1 ms of a ~90 ms step, and there the pipeline's loop is no faster. Tried and rejected",
        "on this CPU: torch.compile (+8% after 23 s of compilation per run) and bf16 autocast (13x slower",
        "without AVX-512 BF16). On a GPU the per-batch collation and host-to-device copy that the pipeline",
        "avoids matter far more; that was not measured here.",
        "",
        "Run: `python benchmarks/bench_train_throughput.py --write`",
    ]
    report = "\n".join(lines)
    print(report)
    if args.write:
        write_section("Training throughput", report)


if __name__ == "__main__":
    main()

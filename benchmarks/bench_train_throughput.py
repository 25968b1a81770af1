"""Training throughput of cnn_bilstm1: the pipeline's loop against the per-record Dataset + DataLoader
loops most users write, same model, same batch size, same optimizer, measured in one run (CPU or CUDA).

Naive loops (default collation, num_workers=0, shuffle=True, one random 2.5 s crop per record):
  naive-disk:   __getitem__ reads the record with wfdb.rdsamp and standardizes it (common in PTB-XL repos)
  naive-memory: __getitem__ indexes an in-memory standardized array (PTB-XL's example script loads
                everything with rdsamp first, then wraps it in a Dataset)
Pipeline: `train.run_epoch`, batches cut from tensors already in memory (on the GPU when there is one).

On CUDA the naive loops move each collated batch to the GPU (`.to(device)`), as such code does, and all loops
use the same bf16 autocast; the pipeline's tensors are already on the GPU.
Usage: python benchmarks/bench_train_throughput.py [--device cuda] [--steps 30] [--write]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from common import dataset, machine, prepared, write_section
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ecg_crnn.config import ModelSettings
from ecg_crnn.dataset import standardize
from ecg_crnn.models import build_model
from ecg_crnn.training import run_epoch

BATCH = 64


class DiskDataset(Dataset):
    def __init__(self, paths, y, mean, std, window):
        self.paths, self.y, self.mean, self.std, self.window = paths, y, mean, std, window

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        import wfdb

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


def fresh(n_classes: int, device: torch.device):
    torch.manual_seed(0)
    cfg = ModelSettings()
    model = build_model("cnn_bilstm1", 12, n_classes, cfg)
    model = model.to(device)
    return model, torch.optim.AdamW(model.parameters(), lr=1e-3), nn.BCEWithLogitsLoss()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def naive_loop(dataset_, n_classes: int, steps: int, device: torch.device) -> float:
    model, opt, loss_fn = fresh(n_classes, device)
    loader = DataLoader(dataset_, batch_size=BATCH, shuffle=True)
    it = iter(loader)
    autocast = device.type == "cuda"

    def step(xb, yb):
        xb, yb = xb.to(device), yb.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(xb)
        loss = loss_fn(logits.float(), yb)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for _ in range(3):  # warm-up
        step(*next(it))
    _sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step(*next(it))
    _sync(device)
    return steps * BATCH / (time.perf_counter() - t)


def pipeline_loop(x, y, window, steps: int, device: torch.device) -> float:
    model, opt, loss_fn = fresh(y.shape[1], device)
    gen = torch.Generator(device=device).manual_seed(0)
    xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    autocast = device.type == "cuda"
    run_epoch(model, opt, None, loss_fn, xt, yt, window, BATCH, gen, 1.0, autocast, max_steps=3)  # warm-up
    _sync(device)
    t = time.perf_counter()
    run_epoch(model, opt, None, loss_fn, xt, yt, window, BATCH, gen, 1.0, autocast, max_steps=steps)
    _sync(device)
    return steps * BATCH / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "ecg-crnn-bench-ptbxl")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    raw = dataset(args.data)
    data = prepared(raw, Path(tempfile.gettempdir()) / "ecg-crnn-bench-work")
    train = data.splits["train"]
    table = pd.read_csv(Path(tempfile.gettempdir()) / "ecg-crnn-bench-work" / "filtered" / "labels.csv")
    ids = pd.Series(range(len(table)), index=table["ecg_id"])
    paths = [raw / table["filename"][ids[i]] for i in train.ecg_ids]
    n_classes = train.y.shape[1]
    results = {}
    try:
        import wfdb  # noqa: F401  (the disk loop reads records with it)

        results["naive-disk: per-record Dataset reading WFDB"] = naive_loop(
            DiskDataset(paths, train.y, data.mean, data.std, data.window), n_classes, args.steps, device
        )
    except ImportError:
        print("wfdb not installed: the naive-disk loop is skipped")
    results["naive-memory: per-record Dataset over an in-memory array"] = naive_loop(
        MemoryDataset(train.x, train.y, data.window), n_classes, args.steps, device
    )
    results["ecg-crnn `run_epoch`"] = pipeline_loop(train.x, train.y, data.window, args.steps, device)
    ours = results["ecg-crnn `run_epoch`"]
    where = (
        f"{torch.cuda.get_device_name(device)}, bf16 autocast"
        if device.type == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    lines = [
        f"cnn_bilstm1 (default sizes), batch {BATCH}, 2.5 s crops at 100 Hz, AdamW, {args.steps} timed steps after 3 "
        f"warm-up steps; {len(train.x):,} full-size synthetic training records; {where}; torch {torch.__version__}; "
        f"{machine()}.",
        "",
        "| training loop | samples/s | ecg-crnn is |",
        "| --- | ---: | ---: |",
    ]
    for name, sps in results.items():
        lines.append(f"| {name} | {sps:,.0f} | {ours / sps:.2f}x |")
    lines += ["", f"Run: `python benchmarks/bench_train_throughput.py --device {device.type} --write`"]
    report = "\n".join(lines)
    print(report)
    if args.write:
        write_section(f"Training throughput ({'GPU' if device.type == 'cuda' else 'CPU'})", report)


if __name__ == "__main__":
    main()

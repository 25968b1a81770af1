"""train(architecture, data, settings) -> the best weights and the history. No file paths inside except
the optional resume checkpoint, which the caller names.

The recipe: random crops of one window per record per epoch from the whole training set held in memory
(on the GPU when there is one), BCE with logits (optionally class-weighted), AdamW with a one-cycle
schedule, gradient clipping, early stopping on the validation fold's macro-AUROC (records scored as at
test time: fixed windows aggregated by max), best weights kept. Every random source is seeded.

Resume: after each epoch the full state (weights, optimizer, schedule, every RNG, history, best so far)
is written atomically to the checkpoint. A run killed at any point and started again with the same
settings continues from the last completed epoch and ends exactly where an uninterrupted run ends.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .atomic import atomic_path
from .config import ModelSettings, TrainSettings
from .dataset import StudyData
from .metrics import auroc_per_class
from .models import build_model

EpochCallback = Callable[[dict], None]


@dataclass
class TrainResult:
    arch: str
    seed: int
    state_dict: dict
    history: list[dict]
    best_epoch: int
    best_val_macro_auroc: float
    train_seconds: float
    stopped_early: bool
    meta: dict = field(default_factory=dict)


def pick_device(setting: str) -> torch.device:
    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def random_crops(x: torch.Tensor, idx: torch.Tensor, window: int, gen: torch.Generator) -> torch.Tensor:
    """One random window per selected record: (B, leads, window), gathered in one indexing operation."""
    starts = torch.randint(0, x.shape[2] - window + 1, (len(idx),), generator=gen, device=gen.device)
    time_idx = starts.to(x.device)[:, None] + torch.arange(window, device=x.device)
    return x[
        idx.to(x.device)[:, None, None],
        torch.arange(x.shape[1], device=x.device)[None, :, None],
        time_idx[:, None, :],
    ]


def run_epoch(
    model: nn.Module,
    optimizer,
    scheduler,
    loss_fn,
    x: torch.Tensor,
    y: torch.Tensor,
    window: int,
    batch_size: int,
    gen: torch.Generator,
    grad_clip: float = 0.0,
    autocast: bool = False,
    max_steps: int | None = None,
) -> float:
    """One pass over the training records in random order, one random crop each; returns the mean loss.

    Batches are sliced from tensors already in memory (on the training device): no per-record Dataset,
    no collation, no host-to-device copy per batch.
    """
    model.train()
    device = x.device
    perm = torch.randperm(len(x), generator=gen, device=gen.device)
    steps = -(-len(x) // batch_size) if max_steps is None else max_steps
    total, seen = 0.0, 0
    for b in range(steps):
        idx = perm[b * batch_size : (b + 1) * batch_size]
        xb = random_crops(x, idx, window, gen)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(xb)
        loss = loss_fn(logits.float(), y[idx.to(device)])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.item() * len(idx)
        seen += len(idx)
    return total / seen


@torch.no_grad()
def predict_proba(
    model: nn.Module,
    x: np.ndarray | torch.Tensor,
    starts: list[int],
    window: int,
    aggregate: str = "max",
    batch_records: int = 128,
    device: torch.device | None = None,
    autocast: bool = False,
) -> np.ndarray:
    """Per-record probabilities (N, classes): every evaluation window scored, then max (or mean) over windows."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    x = torch.as_tensor(x)
    offsets = torch.tensor(starts)[:, None] + torch.arange(window)  # (S, window)
    out = []
    for b in range(0, x.shape[0], batch_records):
        xb = x[b : b + batch_records].to(device)
        windows = (
            xb[:, :, offsets.to(device)].permute(0, 2, 1, 3).reshape(-1, xb.shape[1], window)
        )  # (B*S, L, W)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(windows)
        p = torch.sigmoid(logits.float()).reshape(xb.shape[0], len(starts), -1)
        out.append((p.amax(dim=1) if aggregate == "max" else p.mean(dim=1)).cpu())
    model.train(was_training)
    return torch.cat(out).numpy()


def macro_auroc(y: np.ndarray, p: np.ndarray) -> float:
    values = auroc_per_class(y, p)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def run_fingerprint(
    arch: str, seed: int, model_cfg: ModelSettings, cfg: TrainSettings, data: StudyData
) -> str:
    """Identifies a run: a checkpoint from other settings or data is never resumed."""
    payload = {
        "arch": arch,
        "seed": seed,
        "model": asdict(model_cfg),
        "train": {k: v for k, v in asdict(cfg).items() if k not in ("seeds", "device")},
        "data": data.fingerprint(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def train(
    arch: str,
    data: StudyData,
    model_cfg: ModelSettings,
    cfg: TrainSettings,
    seed: int,
    checkpoint: Path | None = None,
    on_epoch: EpochCallback | None = None,
    progress: bool = True,
    max_epochs: int | None = None,
) -> TrainResult:
    """Train one architecture with one seed. `on_epoch` sees every epoch's record (replayed ones too, after
    a resume) and may raise to stop the run (the Optuna search prunes that way)."""
    device = pick_device(cfg.device)
    autocast = device.type == "cuda" and cfg.bf16
    seed_everything(seed)
    train_split, val = data.splits["train"], data.splits["val"]
    n_classes = len(data.classes)
    model = build_model(
        arch,
        data.n_leads,
        n_classes,
        model_cfg.channels,
        model_cfg.kernel_size,
        model_cfg.hidden,
        model_cfg.dropout,
    ).to(device)
    x_train = torch.from_numpy(train_split.x).to(device)
    y_train = torch.from_numpy(train_split.y).to(device)
    pos_weight = None
    if cfg.class_weighted:
        pos = y_train.sum(0).clamp(min=1)
        pos_weight = ((len(y_train) - pos) / pos).clamp(max=100.0)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    steps_per_epoch = -(-len(x_train) // cfg.batch_size)  # run_epoch's batches
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch
    )
    gen = torch.Generator(device=device).manual_seed(seed)

    fingerprint = run_fingerprint(arch, seed, model_cfg, cfg, data)
    history: list[dict] = []
    best_state, best_score, best_epoch, bad_epochs, start_epoch = None, -np.inf, 0, 0, 0
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        if state.get("fingerprint") == fingerprint:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            gen.set_state(state["generator"].to(gen.device) if device.type != "cuda" else state["generator"])
            torch.set_rng_state(state["torch_rng"])
            if device.type == "cuda" and state.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(state["cuda_rng"])
            np.random.set_state(state["numpy_rng"])
            random.setstate(state["python_rng"])
            history, best_state, best_score = state["history"], state["best_state"], state["best_score"]
            best_epoch, bad_epochs, start_epoch = state["best_epoch"], state["bad_epochs"], state["epoch"]
            print(
                f"train {arch} seed {seed}: resuming after epoch {start_epoch} from {checkpoint}",
                file=sys.stderr,
            )
            for record in history:
                if on_epoch:
                    on_epoch(record)
        else:
            print(
                f"train {arch} seed {seed}: {checkpoint} is from other settings or data; starting afresh",
                file=sys.stderr,
            )

    last_epoch = cfg.epochs if max_epochs is None else min(cfg.epochs, max_epochs)
    stopped_early = bad_epochs >= cfg.patience
    for epoch in range(start_epoch, last_epoch):
        if stopped_early:
            break
        t0 = time.perf_counter()
        train_loss = run_epoch(
            model,
            optimizer,
            scheduler,
            loss_fn,
            x_train,
            y_train,
            data.window,
            cfg.batch_size,
            gen,
            cfg.grad_clip,
            autocast,
        )
        val_p = predict_proba(model, val.x, data.eval_starts, data.window, device=device, autocast=autocast)
        score = macro_auroc(val.y, val_p)
        seconds = time.perf_counter() - t0
        record = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "val_macro_auroc": score,
            "lr": scheduler.get_last_lr()[0],
            "seconds": seconds,
        }
        history.append(record)
        if score > best_score:
            best_score, best_epoch, bad_epochs = score, epoch + 1, 0
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
        stopped_early = bad_epochs >= cfg.patience
        if progress:
            print(
                f"train {arch} seed {seed}: epoch {epoch + 1}/{cfg.epochs} loss {record['train_loss']:.4f} "
                f"val macro-AUROC {score:.4f} (best {best_score:.4f} @ {best_epoch}) {seconds:.1f} s",
                file=sys.stderr,
                flush=True,
            )
        if checkpoint is not None:
            _save_checkpoint(
                checkpoint,
                {
                    "fingerprint": fingerprint,
                    "epoch": epoch + 1,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "generator": gen.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state() if device.type == "cuda" else None,
                    "numpy_rng": np.random.get_state(),
                    "python_rng": random.getstate(),
                    "history": history,
                    "best_state": best_state,
                    "best_score": best_score,
                    "best_epoch": best_epoch,
                    "bad_epochs": bad_epochs,
                },
            )
        if on_epoch:
            on_epoch(record)
    if best_state is None:  # no epoch ran (max_epochs=0): keep the initial weights
        best_state = copy.deepcopy({k: v.cpu() for k, v in model.state_dict().items()})
    return TrainResult(
        arch,
        seed,
        best_state,
        history,
        best_epoch,
        float(best_score),
        float(sum(r["seconds"] for r in history)),
        stopped_early,
    )

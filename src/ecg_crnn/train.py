"""train(architecture, data, settings, seed) -> the best weights and the history. No file paths inside except
the optional resume checkpoint, which the caller names.

The recipe: random crops of one window per record per epoch from the whole training set held in memory
(on the GPU when there is one), BCE with logits (optionally class-weighted), AdamW, gradient clipping, and
a warm-up / constant / cosine cool-down schedule that early stopping cannot fight: when the validation
fold's macro-AUROC (records scored as at test time) has not improved for `patience` epochs after the
warm-up, the cool-down starts, and the run ends once it has annealed to zero. Every run therefore ends
annealed, and every architecture gets the same maximum budget and the same stopping rule. The weights of
the best validation epoch are kept. Every random source is seeded.

Resume: after each epoch the full state (weights, optimizer, schedule, the torch RNGs, history, best so far)
is written atomically to the checkpoint, in a form `torch.load(..., weights_only=True)` reads. A run killed
at any point and started again with the same settings continues from the last completed epoch and ends
exactly where an uninterrupted run ends. RNG states are always restored from CPU tensors (CUDA's
generator states are CPU byte tensors too).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

# cuBLAS is deterministic only with a fixed workspace; this must be set before CUDA initializes.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from .atomic import atomic_path  # noqa: E402
from .config import ModelSettings, TrainSettings  # noqa: E402
from .dataset import StudyData  # noqa: E402
from .metrics import auroc_per_class  # noqa: E402
from .models import build_model  # noqa: E402

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
    cooldown_from_epoch: int  # the epoch after which the cool-down began
    stopped_early: bool  # the cool-down was started by early stopping, before the budget's end


def pick_device(setting: str) -> torch.device:
    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def make_deterministic() -> None:
    """Deterministic kernels where PyTorch has them (cuDNN, cuBLAS with a fixed workspace, scatter/index ops);
    ops without one warn instead of failing. On CPU, results are bit-identical for a given thread count."""
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


class Schedule:
    """Learning rate per optimizer step: linear warm-up to `peak`, constant, then a cosine decay to zero
    over the cool-down. The cool-down starts at the latest so that it ends at the budget's last step, or
    earlier when `start_cooldown` is called (early stopping); `finished` says the decay has reached zero."""

    def __init__(self, optimizer, peak: float, steps_per_epoch: int, epochs: int, warmup: int, cooldown: int):
        self.optimizer, self.peak = optimizer, peak
        self.warmup_steps = warmup * steps_per_epoch
        self.cooldown_steps = max(1, cooldown * steps_per_epoch)
        self.decay_start = epochs * steps_per_epoch - self.cooldown_steps
        self.steps = 0
        self._apply()

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.peak * (step + 1) / self.warmup_steps
        if step < self.decay_start:
            return self.peak
        progress = min(1.0, (step - self.decay_start) / self.cooldown_steps)
        return self.peak * 0.5 * (1.0 + math.cos(math.pi * progress))

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.steps)

    def step(self) -> None:
        self.steps += 1
        self._apply()

    def start_cooldown(self) -> None:
        self.decay_start = min(self.decay_start, self.steps)

    @property
    def finished(self) -> bool:
        return self.steps >= self.decay_start + self.cooldown_steps

    def state_dict(self) -> dict:
        return {"steps": self.steps, "decay_start": self.decay_start}

    def load_state_dict(self, state: dict) -> None:
        self.steps, self.decay_start = int(state["steps"]), int(state["decay_start"])
        self._apply()


def schedule_epochs(cfg: TrainSettings) -> tuple[int, int]:
    """(warm-up epochs, cool-down epochs) of a budget of cfg.epochs."""
    warmup = round(cfg.warmup * cfg.epochs)
    cooldown = max(1, round(cfg.cooldown * cfg.epochs))
    return warmup, min(cooldown, cfg.epochs - warmup)


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
    no collation, no host-to-device copy per batch, and no host synchronization per step (the loss is
    summed on the device and read once per epoch).
    """
    model.train()
    device = x.device
    perm = torch.randperm(len(x), generator=gen, device=gen.device)
    steps = -(-len(x) // batch_size) if max_steps is None else max_steps
    total = torch.zeros((), device=device)
    seen = 0
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
        total += loss.detach() * len(idx)
        seen += len(idx)
    return float(total) / seen


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
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: see pipeline.save_torch
        torch.save(state, f)


def load_checkpoint(path: Path) -> dict:
    """A resume checkpoint, read as tensors and plain data only (never as an arbitrary pickle), on CPU."""
    return torch.load(path, map_location="cpu", weights_only=True)


def train(
    arch: str,
    data: StudyData,
    model_cfg: ModelSettings,
    cfg: TrainSettings,
    seed: int,
    checkpoint: Path | None = None,
    on_epoch: EpochCallback | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train one architecture with one seed. `on_epoch` sees every epoch's record (replayed ones too, after
    a resume) and may raise to stop the run (the Optuna search prunes that way)."""
    device = pick_device(cfg.device)
    autocast = device.type == "cuda" and cfg.bf16
    make_deterministic()
    seed_everything(seed)
    train_split, val = data.splits["train"], data.splits["val"]
    model = build_model(
        arch,
        data.n_leads,
        len(data.classes),
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
    warmup_epochs, cooldown_epochs = schedule_epochs(cfg)
    scheduler = Schedule(optimizer, cfg.lr, steps_per_epoch, cfg.epochs, warmup_epochs, cooldown_epochs)
    gen = torch.Generator(device=device).manual_seed(seed)

    fingerprint = run_fingerprint(arch, seed, model_cfg, cfg, data)
    history: list[dict] = []
    best_state, best_score, best_epoch, bad_epochs, start_epoch = None, -np.inf, 0, 0, 0
    if checkpoint is not None and checkpoint.is_file():
        state = load_checkpoint(checkpoint)
        if state.get("fingerprint") == fingerprint:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])  # moves its state to the parameters' device
            scheduler.load_state_dict(state["scheduler"])
            gen.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            if device.type == "cuda" and state.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(state["cuda_rng"])
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

    for epoch in range(start_epoch, cfg.epochs):
        if scheduler.finished:
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
        lr_used = scheduler.lr_at(scheduler.steps - 1)
        if score > best_score:
            best_score, best_epoch = score, epoch + 1
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            bad_epochs = 0
        elif epoch + 1 > warmup_epochs:  # patience counts only once the warm-up is over
            bad_epochs += 1
        if cfg.patience is not None and bad_epochs >= cfg.patience:
            scheduler.start_cooldown()
        record = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "val_macro_auroc": score,
            "lr": lr_used,
            "seconds": seconds,
        }
        history.append(record)
        if progress:
            print(
                f"train {arch} seed {seed}: epoch {epoch + 1}/{cfg.epochs} loss {train_loss:.4f} "
                f"val macro-AUROC {score:.4f} (best {best_score:.4f} @ {best_epoch}) lr {lr_used:.2e} "
                f"{seconds:.1f} s",
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
                    "history": history,
                    "best_state": best_state,
                    "best_score": float(best_score),
                    "best_epoch": best_epoch,
                    "bad_epochs": bad_epochs,
                },
            )
        if on_epoch:
            on_epoch(record)
    if best_state is None:  # no epoch ran: keep the initial weights
        best_state = copy.deepcopy({k: v.cpu() for k, v in model.state_dict().items()})
    steps_per_epoch = max(1, steps_per_epoch)
    cooldown_from = scheduler.decay_start // steps_per_epoch
    return TrainResult(
        arch,
        seed,
        best_state,
        history,
        best_epoch,
        float(best_score),
        float(sum(r["seconds"] for r in history)),
        cooldown_from,
        cooldown_from < cfg.epochs - cooldown_epochs,
    )

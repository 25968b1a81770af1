"""train(architecture, data, settings, seed) -> the best weights and the history. No file paths inside except
the optional resume checkpoint, which the caller names (the train stage writes the model file).

The recipe: random crops of one window per record per epoch from the whole training set held in memory
(on the GPU when there is one), BCE with logits (optionally class-weighted), AdamW, gradient clipping, and
a warm-up / constant / cosine cool-down schedule that early stopping cannot fight: when the validation
fold's macro-AUROC (records scored as at test time) has not improved for `patience` epochs after the
warm-up, the cool-down starts, and the run ends once it has annealed to zero. Every run therefore ends
annealed, and every architecture gets the same maximum budget and the same stopping rule. The weights of
the best validation epoch are kept. Every random source is seeded.

Resume: after each epoch the full state (weights, optimizer, schedule, the torch RNGs, history, best so far)
is written atomically to the checkpoint of the run's resume slot (resume.py), in a form
`torch.load(..., weights_only=True)` reads. A run killed at any point and started again with the same settings,
code and data continues from the last completed epoch and ends exactly where an uninterrupted run ends. "The
same" is the run's fingerprint (run_provenance): the settings, the source of every module of the training code
(the files DVC lists as the train stage's deps) and the content of the data it trains on; anything else starts
afresh. RNG states are always restored from CPU tensors (CUDA's generator states are CPU byte tensors too).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

# cuBLAS is deterministic only with a fixed workspace; this must be set before CUDA initializes.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from .artifact import load_torch  # noqa: E402
from .config import ModelSettings, TrainSettings  # noqa: E402
from .dataset import StudyData  # noqa: E402
from .metrics import macro_auroc  # noqa: E402
from .models import as_tensor, build_model, pick_device, predict_proba  # noqa: E402
from .provenance import code_fingerprint  # noqa: E402
from .resources import bind  # noqa: E402
from .resume import ResumeSlot  # noqa: E402
from .schedule import Schedule, schedule_epochs  # noqa: E402
from .train_step import GraphedStep, capturable_adamw, lr_to_device, train_step  # noqa: E402

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


def random_crops(x: torch.Tensor, idx: torch.Tensor, window: int, gen: torch.Generator) -> torch.Tensor:
    """One random window per selected record: (B, leads, window), gathered in one indexing operation."""
    starts = torch.randint(0, x.shape[2] - window + 1, (len(idx),), generator=gen, device=gen.device)
    time_idx = starts.to(x.device)[:, None] + torch.arange(window, device=x.device)
    return x[
        idx.to(x.device)[:, None, None],
        torch.arange(x.shape[1], device=x.device)[None, :, None],
        time_idx[:, None, :],
    ]


def add_noise(xb: torch.Tensor, snr_db: list[float], gen: torch.Generator) -> torch.Tensor:
    """Noise augmentation: white noise at an SNR drawn per crop from [low, high] dB, against each lead's own power
    in the crop (train.augment_snr_db; off by default). Drawn from the run's generator, so a run with it stays
    reproducible and resumable."""
    lo, hi = snr_db
    snr = lo + (hi - lo) * torch.rand((xb.shape[0], 1, 1), generator=gen, device=gen.device).to(xb.device)
    power = xb.pow(2).mean(dim=2, keepdim=True)
    noise = torch.randn(xb.shape, generator=gen, device=gen.device).to(xb.device)
    return xb + noise * torch.sqrt(power / 10 ** (snr / 10))


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
    records: int | None = None,
    noise_snr_db: list[float] | None = None,
    step: GraphedStep | None = None,
) -> float:
    """One pass over the training records in random order, one random crop each; returns the mean loss. With
    `records` above the number of training records (a share of the training data), the pass goes on through fresh
    permutations until it has taken that many, so every share gets the same optimizer steps per epoch.

    Batches are sliced from tensors already in memory (on the training device): no per-record Dataset,
    no collation, no host-to-device copy per batch, and no host synchronization per step (the loss is
    summed on the device and read once per epoch). `step` (train_step.GraphedStep) replaces the eager step
    with the CUDA-graph one; the batches and their crops are drawn the same way either way.
    """
    model.train()
    device = x.device
    n = max(records or len(x), len(x))
    perm = torch.cat(
        [torch.randperm(len(x), generator=gen, device=gen.device) for _ in range(-(-n // len(x)))]
    )[:n]
    steps = -(-n // batch_size) if max_steps is None else max_steps
    total = torch.zeros((), device=device)
    seen = 0
    for b in range(steps):
        idx = perm[b * batch_size : (b + 1) * batch_size]
        xb, yb = random_crops(x, idx, window, gen), y[idx.to(device)]
        if noise_snr_db:
            xb = add_noise(xb, noise_snr_db, gen)
        if step is None:
            loss = train_step(model, optimizer, loss_fn, xb, yb, grad_clip, autocast)
        else:
            loss = step(xb, yb)
        if scheduler is not None:
            scheduler.step()
        total += loss.detach() * len(idx)
        seen += len(idx)
    return float(total) / seen


def run_provenance(
    arch: str, seed: int, model_cfg: ModelSettings, cfg: TrainSettings, data: StudyData
) -> dict:
    """What a run's result depends on: its settings (the device and the seed list aside: a run retried on another
    machine resumes), the code loaded to train it and the data's content (StudyData.fingerprint)."""
    return {
        "run": {"arch": arch, "seed": seed},
        "settings": {
            "model": model_cfg.model_dump(),
            "train": {k: v for k, v in cfg.model_dump().items() if k not in ("seeds", "device")},
        },
        "data": data.fingerprint(),
        "code": code_fingerprint(),
    }


def fingerprint_of(provenance: dict) -> str:
    """Identifies a run: a checkpoint of another fingerprint is never resumed."""
    return hashlib.sha256(json.dumps(provenance, sort_keys=True, default=str).encode()).hexdigest()


class _Trainer:
    """One run's training state: the network, optimizer, schedule and RNGs, and the best epoch so far. Built in
    the order that fixes how random numbers are drawn (seed, then weights, then the crop generator), so an
    uninterrupted run and a resumed one see the same numbers."""

    def __init__(
        self,
        arch: str,
        data: StudyData,
        model_cfg: ModelSettings,
        cfg: TrainSettings,
        seed: int,
        fingerprint: str | None = None,
    ):
        self.arch, self.data, self.cfg, self.seed = arch, data, cfg, seed
        self.device = pick_device(cfg.device)
        bind(cfg.threads, self.device)  # train.threads, and this job's share of its GPU's memory
        self.autocast = self.device.type == "cuda" and cfg.bf16
        self.graphed = self.device.type == "cuda" and cfg.cuda_graph
        make_deterministic()
        seed_everything(seed)
        self.model = build_model(arch, data.n_leads, len(data.classes), model_cfg).to(self.device)
        # On CPU the training split stays the machine's shared read-only mapping (crops are gathered copies).
        self.x = as_tensor(data.splits["train"].x).to(self.device)
        self.y = torch.from_numpy(data.splits["train"].y).to(self.device)
        pos_weight = None
        if cfg.class_weighted:
            pos = self.y.sum(0).clamp(min=1)
            pos_weight = ((len(self.y) - pos) / pos).clamp(max=100.0)
        self.loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        self.records = max(data.full_train, len(self.x))  # a share of the data trains as long as the whole
        self.steps_per_epoch = -(-self.records // cfg.batch_size)  # run_epoch's batches
        self.optimizer = capturable_adamw(
            self.model.parameters(), cfg.lr, cfg.weight_decay, self.device, self.graphed
        )
        self.step = (
            GraphedStep(
                self.model, self.optimizer, self.loss_fn, cfg.batch_size, cfg.grad_clip, self.autocast
            )
            if self.graphed
            else None
        )
        self.warmup_epochs, self.cooldown_epochs = schedule_epochs(cfg)
        self.scheduler = Schedule(
            self.optimizer, cfg.lr, self.steps_per_epoch, cfg.epochs, self.warmup_epochs, self.cooldown_epochs
        )
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        # A fixed subset of the training records, the same for every run of the study (its own generator: it takes
        # nothing from the run's random streams), scored each epoch as validation is: the generalization gap.
        n = min(cfg.train_score_records, len(self.x))
        self.train_subset = np.sort(np.random.default_rng(0).choice(len(self.x), size=n, replace=False))
        self.fingerprint = fingerprint or fingerprint_of(run_provenance(arch, seed, model_cfg, cfg, data))
        self.history: list[dict] = []
        self.best_state, self.best_score, self.best_epoch, self.bad_epochs, self.start_epoch = (
            None,
            -np.inf,
            0,
            0,
            0,
        )

    def resume(self, slot: ResumeSlot, on_epoch: EpochCallback | None) -> None:
        checkpoint = slot.checkpoint
        state = slot.load(load_torch)
        if state is None:
            return
        if not isinstance(state, dict) or state.get("fingerprint") != self.fingerprint:
            print(
                f"train {self.arch} seed {self.seed}: {checkpoint} is from other settings, code or data; "
                "starting afresh",
                file=sys.stderr,
            )
            return
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])  # moves its state to the parameters' device
        lr_to_device(self.optimizer, self.device)
        self.scheduler.load_state_dict(state["scheduler"])
        self.gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if self.device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"])
        self.history, self.best_state, self.best_score = (
            state["history"],
            state["best_state"],
            state["best_score"],
        )
        self.best_epoch, self.bad_epochs, self.start_epoch = (
            state["best_epoch"],
            state["bad_epochs"],
            state["epoch"],
        )
        print(
            f"train {self.arch} seed {self.seed}: resuming after epoch {self.start_epoch} from {checkpoint}",
            file=sys.stderr,
        )
        for record in self.history:
            if on_epoch:
                on_epoch(record)

    def _train_score(self) -> float:
        """Macro-AUROC of the fixed training subset, scored as the validation fold is (nan when it is off)."""
        if not len(self.train_subset):
            return float("nan")
        data, idx = self.data, self.train_subset
        p = predict_proba(
            self.model,
            data.splits["train"].x[idx],
            data.eval_starts,
            data.window,
            device=self.device,
            autocast=self.autocast,
        )
        return macro_auroc(data.splits["train"].y[idx], p)

    def epoch(self, epoch: int) -> dict:
        """Train one epoch, score the validation fold, keep the best weights, apply early stopping's rule."""
        cfg, data, val = self.cfg, self.data, self.data.splits["val"]
        t0 = time.perf_counter()
        train_loss = run_epoch(
            self.model,
            self.optimizer,
            self.scheduler,
            self.loss_fn,
            self.x,
            self.y,
            data.window,
            cfg.batch_size,
            self.gen,
            cfg.grad_clip,
            self.autocast,
            records=self.records,
            noise_snr_db=cfg.augment_snr_db,
            step=self.step,
        )
        val_p = predict_proba(
            self.model, val.x, data.eval_starts, data.window, device=self.device, autocast=self.autocast
        )
        score = macro_auroc(val.y, val_p)
        train_score = self._train_score()
        seconds = time.perf_counter() - t0
        lr_used = self.scheduler.lr_at(self.scheduler.steps - 1)
        if score > self.best_score:
            self.best_score, self.best_epoch = score, epoch + 1
            self.best_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
            self.bad_epochs = 0
        elif epoch + 1 > self.warmup_epochs:  # patience counts only once the warm-up is over
            self.bad_epochs += 1
        if cfg.patience is not None and self.bad_epochs >= cfg.patience:
            self.scheduler.start_cooldown()
        record = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "val_macro_auroc": score,
            "train_macro_auroc": train_score,
            "lr": lr_used,
            "seconds": seconds,
        }
        self.history.append(record)
        return record

    def save(self, slot: ResumeSlot) -> None:
        """The state after this epoch, to the slot (which refuses it if a newer attempt owns the run)."""
        state = {
            "fingerprint": self.fingerprint,
            "epoch": len(self.history),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if self.device.type == "cuda" else None,
            "history": self.history,
            "best_state": self.best_state,
            "best_score": float(self.best_score),
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
        }
        slot.save(lambda f: torch.save(state, f))

    def result(self) -> TrainResult:
        best_state = self.best_state
        if best_state is None:  # no epoch ran: keep the initial weights
            best_state = copy.deepcopy({k: v.cpu() for k, v in self.model.state_dict().items()})
        cooldown_from = self.scheduler.decay_start // max(1, self.steps_per_epoch)
        return TrainResult(
            self.arch,
            self.seed,
            best_state,
            self.history,
            self.best_epoch,
            float(self.best_score),
            float(sum(r["seconds"] for r in self.history)),
            cooldown_from,
            cooldown_from < self.cfg.epochs - self.cooldown_epochs,
        )


def train(
    arch: str,
    data: StudyData,
    model_cfg: ModelSettings,
    cfg: TrainSettings,
    seed: int,
    checkpoint: ResumeSlot | None = None,
    on_epoch: EpochCallback | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train one architecture with one seed, resuming `checkpoint` (the run's slot, see resume.claim) when it
    holds a state of this very run. `on_epoch` sees every epoch's record (replayed ones too, after a resume) and
    may raise to stop the run (the Optuna search prunes that way)."""
    run = _Trainer(arch, data, model_cfg, cfg, seed, checkpoint.fingerprint if checkpoint else None)
    if checkpoint is not None:
        run.resume(checkpoint, on_epoch)
    for epoch in range(run.start_epoch, cfg.epochs):
        if run.scheduler.finished:
            break
        record = run.epoch(epoch)
        if progress:
            print(
                f"train {arch} seed {seed}: epoch {epoch + 1}/{cfg.epochs} loss {record['train_loss']:.4f} "
                f"val macro-AUROC {record['val_macro_auroc']:.4f} (best {run.best_score:.4f} @ {run.best_epoch}) "
                f"lr {record['lr']:.2e} {record['seconds']:.1f} s",
                file=sys.stderr,
                flush=True,
            )
        if checkpoint is not None:
            run.save(checkpoint)
        if on_epoch:
            on_epoch(record)
    return run.result()

"""The learning-rate schedule every run follows: linear warm-up, constant, cosine cool-down to zero.

Torch-free, so that training (which steps it) and the report (which describes and draws it) use the same numbers:
the report's warm-up and cool-down epochs are the ones training ran, clamp included.
"""

from __future__ import annotations

import math

from .config import TrainSettings


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
        lr = self.lr_at(self.steps)
        for group in self.optimizer.param_groups:
            if hasattr(group["lr"], "fill_"):  # a capturable optimizer's tensor rate, read by a CUDA graph
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr

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


class _NoOptimizer:
    param_groups: list[dict] = []


def budget_curve(cfg: TrainSettings, steps_per_epoch: int = 100) -> tuple[list[float], list[float]]:
    """(epoch, learning rate) along the whole budget without early stopping, exactly as training steps it."""
    warmup, cooldown = schedule_epochs(cfg)
    s = Schedule(_NoOptimizer(), cfg.lr, steps_per_epoch, cfg.epochs, warmup, cooldown)
    steps = range(cfg.epochs * steps_per_epoch + 1)
    return [i / steps_per_epoch for i in steps], [
        s.lr_at(min(i, cfg.epochs * steps_per_epoch - 1)) for i in steps
    ]

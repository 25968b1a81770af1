"""One optimizer step of training, run eagerly or replayed from a CUDA graph that captured exactly that step.

A small model trains launch-bound on a GPU: ~110 steps per second of a few hundred tiny kernels each, most of the
time spent launching them. A CUDA graph records the whole step once (forward, loss, backward, gradient clipping,
the optimizer's update) and replays it with one launch. It is behind the switch `train.cuda_graph` (off by
default) and correct by construction: the graph records the very function the eager path calls, `train_step`,
on fixed-shape input buffers, with the flags that make a step capturable, which the eager path then uses too:

  - AdamW with `capturable=True` and its learning rate a device tensor, which the schedule fills in place (a
    Python float would be baked into the graph at capture);
  - autocast without its weight-cast cache (the cache would hold tensors from the capture's first pass).

The graph is captured on the first full batch. Capture needs the optimizer's state to exist and the kernels to
have run once, so one step is warmed up on a side stream and everything it changed (weights, batch-norm
statistics, optimizer state, the CUDA random generator) is put back before capturing: the captured run sees the
same numbers as an eager one. The last, smaller batch of an epoch runs eagerly with the same flags. Dropout
inside the graph draws from the CUDA generator at the offsets an eager step would, since PyTorch advances the
generator by the captured amount on each replay. Whether the graph is bit-identical to eager and how much faster it
is are measured by the `gpu` tests and benchmarks/bench_grid_runner.py where a GPU is present.
"""

from __future__ import annotations

import torch
from torch import nn


def train_step(
    model, optimizer, loss_fn, xb, yb, grad_clip: float, autocast: bool, autocast_cache: bool = True
):
    """Forward, loss, backward, clipping and the optimizer's update on one batch; returns the loss (on the device)."""
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(xb.device.type, dtype=torch.bfloat16, enabled=autocast, cache_enabled=autocast_cache):
        logits = model(xb)
    loss = loss_fn(logits.float(), yb)
    loss.backward()
    if grad_clip > 0:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss


def capturable_adamw(params, lr: float, weight_decay: float, device: torch.device, graphed: bool):
    """AdamW as training uses it; for a graphed run capturable, with its learning rate a tensor on `device`."""
    if not graphed:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.AdamW(
        params, lr=torch.tensor(lr, device=device), weight_decay=weight_decay, capturable=True
    )


def lr_to_device(optimizer, device: torch.device) -> None:
    """After optimizer.load_state_dict: a tensor learning rate comes back on the CPU; put it on the device."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"] = group["lr"].to(device)


class GraphedStep:
    """`train_step` with the graph flags; full batches of `batch_size` replay a CUDA graph of it (when `capture`),
    other batches run eagerly. `capture=False` runs every batch eagerly with the same flags (what the graph is
    compared with)."""

    def __init__(
        self, model, optimizer, loss_fn, batch_size: int, grad_clip: float, autocast: bool, capture=True
    ):
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.batch_size, self.grad_clip, self.autocast, self.capture = (
            batch_size,
            grad_clip,
            autocast,
            capture,
        )
        self.graph = None

    def _eager(self, xb, yb):
        return train_step(
            self.model, self.optimizer, self.loss_fn, xb, yb, self.grad_clip, self.autocast, False
        )

    def __call__(self, xb, yb):
        if not self.capture or xb.shape[0] != self.batch_size:
            return self._eager(xb, yb)
        if self.graph is None:
            self._capture(xb, yb)
        self.x.copy_(xb)
        self.y.copy_(yb)
        self.graph.replay()
        return self.loss

    def _tensors(self) -> list[torch.Tensor]:
        """Everything a step changes: weights, buffers (batch-norm statistics), the optimizer's state."""
        state = [t for s in self.optimizer.state.values() for t in s.values() if isinstance(t, torch.Tensor)]
        return [*self.model.parameters(), *self.model.buffers(), *state]

    def _capture(self, xb, yb) -> None:
        self.x, self.y = xb.clone(), yb.clone()
        fresh = not self.optimizer.state  # the first step creates the optimizer's state (zeros, step 0)
        saved = [t.detach().clone() for t in self._tensors()]
        rng = torch.cuda.get_rng_state(xb.device)
        side = torch.cuda.Stream(xb.device)
        side.wait_stream(torch.cuda.current_stream(xb.device))
        with torch.cuda.stream(side):
            self._eager(self.x, self.y)  # warm-up: kernels chosen, workspaces and optimizer state allocated
        torch.cuda.current_stream(xb.device).wait_stream(side)
        with torch.no_grad():
            tensors = self._tensors()
            for t, s in zip(tensors[: len(saved)], saved, strict=True):
                t.copy_(s)
            if fresh:  # put the state the warm-up created back to how the first step creates it
                for t in tensors[len(saved) :]:
                    t.zero_()
        torch.cuda.set_rng_state(rng, xb.device)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.loss = train_step(
                self.model, self.optimizer, self.loss_fn, self.x, self.y, self.grad_clip, self.autocast, False
            )
        self.grads = [p.grad for p in self.model.parameters()]  # the graph writes these; keep them alive

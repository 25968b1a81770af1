"""The study's networks: one CNN front end, an optional recurrent stack, one head; and scoring records with them.

Every architecture (named in registry.py) shares the front end and the head (mean+max pooling over time, dropout,
linear), so only the temporal part differs; the head's dropout is the only one, at every depth. `predict_proba`
scores records the way evaluation, validation during training, prediction and export all do: every evaluation
window, then max (or mean) over windows.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from .config import ModelSettings
from .registry import Architecture, get_architecture


class FrontEnd(nn.Module):
    """1-D convolutions over the leads; each of the first blocks halves the time axis (a total of 8x)."""

    def __init__(self, n_leads: int, channels: list[int], kernel_size: int, downsample_blocks: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = n_leads
        for i, c_out in enumerate(channels):
            layers += [
                nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=False),
                nn.BatchNorm1d(c_out),
                nn.ReLU(inplace=True),
            ]
            if i < downsample_blocks:
                layers.append(nn.MaxPool1d(2))
            c_in = c_out
        self.net = nn.Sequential(*layers)
        self.out_channels = c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, leads, T) -> (B, C, T/8)
        return self.net(x)


_BF16_RNN: dict[tuple[str, str], bool] = {}


def rnn_runs_in_bf16(device: torch.device, kind: str = "lstm") -> bool:
    """Whether this device's recurrent kernels (cuDNN on CUDA) run forward and backward in bfloat16.

    Probed once per device and kind with a tiny layer; where they do not, the recurrent part runs in
    float32 inside the autocast region instead of failing or silently falling back to a slow path."""
    key = (str(device), kind)
    if key not in _BF16_RNN:
        cls = nn.LSTM if kind == "lstm" else nn.GRU
        # The probe draws random numbers; fork the RNGs so that it consumes none of the run's (a resumed run
        # probes at another point than an uninterrupted one, and must still see the same dropout masks).
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            try:
                layer = cls(8, 8, batch_first=True).to(device)
                x = torch.randn(2, 4, 8, device=device, requires_grad=True)
                with torch.autocast(device.type, dtype=torch.bfloat16):
                    out, _ = layer(x)
                out.float().sum().backward()
                _BF16_RNN[key] = out.dtype == torch.bfloat16
            except RuntimeError:
                _BF16_RNN[key] = False
    return _BF16_RNN[key]


class CRNN(nn.Module):
    def __init__(
        self,
        arch: Architecture,
        n_leads: int,
        n_classes: int,
        channels: list[int],
        kernel_size: int,
        hidden: int,
        dropout: float,
    ):
        super().__init__()
        self.arch = arch
        self.front = FrontEnd(n_leads, channels, kernel_size)
        features = self.front.out_channels
        # One single-layer module per recurrent layer (the same model as `num_layers=N`; it keeps the model
        # files' parameter names, and each layer can fall back to float32 on its own under autocast).
        self.rnn = nn.ModuleList()
        if arch.rnn is not None:
            cls = nn.LSTM if arch.rnn == "lstm" else nn.GRU
            for _ in range(arch.layers):
                self.rnn.append(cls(features, hidden, batch_first=True, bidirectional=arch.bidirectional))
                features = hidden * (2 if arch.bidirectional else 1)
        # Dropout in one place for every architecture: on the pooled features, before the classifier, which
        # every architecture shares. Dropout between or after recurrent layers would regularize a 3-layer stack
        # at more places than a 1-layer one and the CNN at none, so depth would come confounded with
        # regularization; and before pooling, the max half of the CNN's pooling would see inverted dropout's
        # 1/(1-p) scaling in training but not at test. Its rate is tuned per architecture (recipe.yaml). The
        # masks come from torch's RNG, which checkpoints save and restore (a resumed run continues exactly).
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * features, n_classes)

    def _recur(self, h: torch.Tensor) -> torch.Tensor:
        for layer in self.rnn:
            h, _ = layer(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, leads, T) standardized signal -> (B, classes) logits."""
        h = self.front(x).transpose(1, 2)  # (B, T', C)
        if len(self.rnn):
            kind = self.arch.rnn or "lstm"
            if torch.is_autocast_enabled(h.device.type) and not rnn_runs_in_bf16(h.device, kind):
                with torch.autocast(h.device.type, enabled=False):
                    h = self._recur(h.float())
            else:
                h = self._recur(h)
        pooled = torch.cat([h.mean(dim=1), h.amax(dim=1)], dim=1)
        return self.classifier(self.dropout(pooled))


def build_model(name: str, n_leads: int, n_classes: int, settings: ModelSettings) -> CRNN:
    s = settings
    return CRNN(
        get_architecture(name), n_leads, n_classes, list(s.channels), s.kernel_size, s.hidden, s.dropout
    )


def as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A tensor over `x` without a copy, also when `x` is a read-only memory map (the shared standardized splits,
    see shared_data.py): torch warns that it cannot mark such a tensor read-only, and nothing here writes to it."""
    if isinstance(x, torch.Tensor) or x.flags.writeable:
        return torch.as_tensor(x)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(x)


def pick_device(setting: str) -> torch.device:
    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


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
    x = as_tensor(x)
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


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: CRNN, n_leads: int, window: int) -> int:
    """Multiply-accumulates of one forward pass over one window (convolutions, recurrences, classifier).

    Counted from the shapes each layer sees, with forward hooks; batch norm, activations and pooling
    are left out as is customary (they are a few percent at most).
    """
    macs = 0

    def conv_hook(mod: nn.Conv1d, _inp, out):
        nonlocal macs
        macs += out.shape[-1] * mod.out_channels * (mod.in_channels // mod.groups) * mod.kernel_size[0]

    def rnn_hook(mod: nn.RNNBase, inp, _out):
        nonlocal macs
        steps = inp[0].shape[1]
        gates = 4 if isinstance(mod, nn.LSTM) else 3
        dirs = 2 if mod.bidirectional else 1
        for layer in range(mod.num_layers):
            in_size = mod.input_size if layer == 0 else mod.hidden_size * dirs
            macs += dirs * steps * gates * mod.hidden_size * (in_size + mod.hidden_size)

    def linear_hook(mod: nn.Linear, _inp, _out):
        nonlocal macs
        macs += mod.in_features * mod.out_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv1d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.RNNBase):
            hooks.append(m.register_forward_hook(rnn_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, n_leads, window))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return macs

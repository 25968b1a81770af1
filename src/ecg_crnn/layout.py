"""Where the pipeline's files live: the data stages' folders and one folder per trained run.

dvc.yaml spells the same layout in its templates (it cannot import Python); the CLI's defaults, the stages, the
comparison, the flows and the tests take it from here, so a run's folder is built in one place.
A run is one (architecture, window, share of the training data, rotation of the folds, seed):
models/WINDOWs/ARCH/fracFRACTION/rotROTATION/seedSEED, and the same under evaluation/. The segment stage writes one
split per rotation (data/segmented/rotR/), the bootstrap stage one set of test-fold resamples per rotation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import Params
from .errors import EcgCrnnError
from .registry import get_architecture

RAW = Path("data/raw/ptbxl")
NOISE = Path("data/raw/nstdb")  # the noise stage's copy of nstdb (robustness.noise_source)
FILTERED = Path("data/filtered")
SEGMENTED = Path("data/segmented")
MODELS = Path("models")
EVALUATION = Path("evaluation")
ROBUSTNESS = Path("robustness")
BOOTSTRAP = EVALUATION / "bootstrap"
REPORTS = Path("reports")
MODEL_FILE = "model.pt"


def window_name(window_s: float) -> str:
    """2.5 -> "2.5s", 10.0 -> "10s": the folder of a window length (and its key in the DVC metrics)."""
    return f"{window_s:g}s"


@dataclass(frozen=True)
class RunKey:
    arch: str
    window: float
    seed: int
    rotation: int = 0  # segment.rotations: 0 is the split as configured
    fraction: float = 1.0  # study.train_fractions: the share of the training folds' patients trained on

    @property
    def run(self) -> Path:
        """The run's folder below its model's: fracF/rotR/seedS."""
        return Path(f"frac{float(self.fraction)}") / f"rot{self.rotation}" / f"seed{self.seed}"

    @property
    def folder(self) -> Path:
        return Path(window_name(self.window)) / self.arch / self.run

    def stage(self, kind: str) -> str:
        """DVC's name of this run's stage of `kind` ("train", "evaluate"), its matrix values joined by "-" in
        dvc.yaml's order: `train@cnn_bilstm1-2.5-1.0-0-0`."""
        return f"{kind}@{self.arch}-{self.window:g}-{float(self.fraction)}-{self.rotation}-{self.seed}"


def rotation_dir(segmented: Path, rotation: int) -> Path:
    """The segment stage's split and standardization of one rotation."""
    return Path(segmented) / f"rot{rotation}"


def bootstrap_file(root: Path, rotation: int) -> Path:
    """The test fold's shared patient resamples of one rotation (root: the bootstrap stage's output folder)."""
    return Path(root) / f"rot{rotation}.npz"


def window_folder(root: Path, window_s: float) -> Path:
    """root/2.5s; for a window that params.yaml spells as 10.0, DVC's template writes 10.0s, which is found too."""
    root = Path(root)
    if not (root / window_name(window_s)).is_dir() and root.is_dir():
        for d in root.iterdir():
            try:
                if d.is_dir() and d.name.endswith("s") and float(d.name[:-1]) == float(window_s):
                    return d
            except ValueError:
                continue
    return root / window_name(window_s)


def model_dir(key: RunKey, root: Path = MODELS) -> Path:
    return window_folder(root, key.window) / key.arch / key.run


def evaluation_dir(key: RunKey, root: Path = EVALUATION) -> Path:
    return window_folder(root, key.window) / key.arch / key.run


def robustness_dir(key: RunKey, root: Path = ROBUSTNESS) -> Path:
    return window_folder(root, key.window) / key.arch / key.run


def cost_file(arch: str, window_s: float, root: Path = EVALUATION) -> Path:
    return window_folder(root, window_s) / arch / "cost.json"


def resolve_run(
    params: Params, arch: str | None, window: float | None, seed: int | None, rotation=None, fraction=None
) -> RunKey:
    """The run a predict/export call means: defaults are the study's reference architecture at its first window,
    first seed, the configured split and the whole training data; a window or seed the study does not train is
    named."""
    arch = get_architecture(arch or params.study.reference).name
    window = window if window is not None else params.study.windows[0]
    seed = seed if seed is not None else params.train.seeds[0]
    if window not in params.study.windows:
        raise EcgCrnnError(
            f"--window {window:g}: not in study.windows ({', '.join(f'{w:g}' for w in params.study.windows)})"
        )
    if seed not in params.train.seeds:
        raise EcgCrnnError(f"--seed {seed}: not in train.seeds ({', '.join(map(str, params.train.seeds))})")
    fraction = fraction if fraction is not None else max(params.study.train_fractions)
    rotation = rotation if rotation is not None else params.segment.rotations[0]
    if rotation not in params.segment.rotations:
        raise EcgCrnnError(f"--rotation {rotation}: not in segment.rotations ({params.segment.rotations})")
    if fraction not in params.study.train_fractions:
        raise EcgCrnnError(
            f"--fraction {fraction:g}: not in study.train_fractions ({params.study.train_fractions})"
        )
    return RunKey(arch, float(window), seed, rotation, float(fraction))

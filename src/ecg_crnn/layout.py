"""Where the pipeline's files live: the data stages' folders and one folder per trained run.

dvc.yaml spells the same layout in its templates (it cannot import Python); the CLI's defaults, the stages, the
comparison, the flows and the tests take it from here, so a run's folder is built in one place.
A run is one (architecture, window, seed): models/WINDOWs/ARCH/seedSEED and evaluation/WINDOWs/ARCH/seedSEED.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import Params
from .errors import EcgCrnnError
from .registry import get_architecture

RAW = Path("data/raw/ptbxl")
FILTERED = Path("data/filtered")
SEGMENTED = Path("data/segmented")
MODELS = Path("models")
EVALUATION = Path("evaluation")
BOOTSTRAP = EVALUATION / "bootstrap.npz"
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

    @property
    def folder(self) -> Path:
        return Path(window_name(self.window)) / self.arch / f"seed{self.seed}"

    def stage(self, kind: str) -> str:
        """DVC's name of this run's stage of `kind` ("train", "evaluate"): `train@cnn_bilstm1-2.5-0`."""
        return f"{kind}@{self.arch}-{self.window:g}-{self.seed}"


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
    return window_folder(root, key.window) / key.arch / f"seed{key.seed}"


def evaluation_dir(key: RunKey, root: Path = EVALUATION) -> Path:
    return window_folder(root, key.window) / key.arch / f"seed{key.seed}"


def cost_file(arch: str, window_s: float, root: Path = EVALUATION) -> Path:
    return window_folder(root, window_s) / arch / "cost.json"


def resolve_run(params: Params, arch: str | None, window: float | None, seed: int | None) -> RunKey:
    """The run a predict/export call means: defaults are the study's reference architecture at its first window and
    first seed; a window or seed the study does not train is named."""
    arch = get_architecture(arch or params.study.reference).name
    window = window if window is not None else params.study.windows[0]
    seed = seed if seed is not None else params.train.seeds[0]
    if window not in params.study.windows:
        raise EcgCrnnError(
            f"--window {window:g}: not in study.windows ({', '.join(f'{w:g}' for w in params.study.windows)})"
        )
    if seed not in params.train.seeds:
        raise EcgCrnnError(f"--seed {seed}: not in train.seeds ({', '.join(map(str, params.train.seeds))})")
    return RunKey(arch, float(window), seed)

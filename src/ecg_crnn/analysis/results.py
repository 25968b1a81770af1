"""The evaluate and train stages' outputs read back, one Model per (architecture, window) with all its seeds."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import Params
from ..errors import EcgCrnnError
from ..layout import RunKey, cost_file, evaluation_dir, model_dir, robustness_dir
from ..metrics import TESTED, auroc_per_class
from ..registry import get_architecture

PRIMARY = "macro_auroc"
Key = tuple[str, float]  # (architecture, window in seconds)


@dataclass(frozen=True)
class Robustness:
    """One model's robustness stage outputs, all seeds: per condition (e.g. gaussian_12) its corruption, severity,
    noise source, each seed's per-class test AUROC (seeds, classes) and its patient resamples (seeds, B, classes)."""

    corruption: dict[str, str]
    severity: dict[str, float]
    source: dict[str, str]
    seed_class_auroc: dict[str, np.ndarray]
    class_auroc: dict[str, np.ndarray]

    def conditions_of(self, corruption: str) -> list[str]:
        return [c for c, name in self.corruption.items() if name == corruption]

    @property
    def corruptions(self) -> list[str]:
        return list(dict.fromkeys(self.corruption.values()))


def load_robustness(root: Path, keys: list[RunKey]) -> Robustness | None:
    """The robustness outputs of a model's runs (one per seed), or None when the stage has not run for them."""
    folders = [robustness_dir(k, root) for k in keys]
    if not all((f / "figures.json").is_file() for f in folders):
        return None
    figures = [json.loads((f / "figures.json").read_text())["conditions"] for f in folders]
    resamples = []
    for f in folders:
        with np.load(f / "resamples.npz") as npz:
            resamples.append({k: npz[k] for k in npz.files})
    first = figures[0]
    class_points = {
        c: np.array([[np.nan if v is None else v for v in fig[c]["class_auroc"]] for fig in figures])
        for c in first
    }
    return Robustness(
        {c: v["corruption"] for c, v in first.items()},
        {c: float(v["severity"]) for c, v in first.items()},
        {c: v["source"] for c, v in first.items()},
        class_points,
        {c: np.stack([r[c] for r in resamples]) for c in first},
    )


@dataclass
class Model:
    arch: str
    window: float
    seeds: list[int]
    runs: pd.DataFrame  # one row per seed: the evaluate stage's metrics.json
    resampled: dict[str, np.ndarray]  # figure -> (seeds, resamples)
    class_auroc: np.ndarray  # (seeds, resamples, classes)
    per_class: pd.DataFrame  # class, family, test_positives (records and patients), auroc (mean over seeds)
    seed_class_auroc: np.ndarray  # (seeds, classes) each seed's per-class test AUROC
    val_class_auroc: np.ndarray  # (seeds, classes) each seed's per-class validation AUROC (NaN: not scored)
    cost: dict
    histories: dict[int, pd.DataFrame]  # seed -> history.csv
    test_y: np.ndarray = field(repr=False, default=None)
    test_p: dict[int, np.ndarray] = field(repr=False, default_factory=dict)
    class_auprc: np.ndarray | None = field(repr=False, default=None)  # (seeds, resamples, classes)
    seed_class_auprc: np.ndarray | None = field(repr=False, default=None)  # (seeds, classes)
    robustness: Robustness | None = field(repr=False, default=None)  # the robustness stage's outputs

    @property
    def key(self) -> Key:
        return (self.arch, self.window)

    @property
    def name(self) -> str:
        return f"{self.arch} @ {self.window:g} s"

    @property
    def rnn_type(self) -> str:
        return get_architecture(self.arch).rnn_type

    @property
    def depth(self) -> int:
        return get_architecture(self.arch).layers

    def point(self, figure: str) -> float:
        return float(self.runs[figure].mean())

    def seed_sd(self, figure: str) -> float:
        return float(self.runs[figure].std(ddof=1)) if len(self.runs) > 1 else 0.0

    @property
    def val(self) -> float:
        return float(self.runs["val_macro_auroc"].mean())

    def val_of(self, seeds) -> float:
        """The mean validation macro-AUROC over `seeds` (the selection seeds make every choice)."""
        rows = self.runs.set_index("seed").loc[list(seeds)]
        return float(rows["val_macro_auroc"].mean())

    @property
    def minority_patients(self) -> np.ndarray:
        """Per class, the smaller of its positive and negative test patients: what its AUROC's precision rests on."""
        pc = self.per_class
        if "test_positive_patients" not in pc:
            return pc["test_positives"].to_numpy(int)
        return np.minimum(pc["test_positive_patients"], pc["test_negative_patients"]).to_numpy(int)


@dataclass
class _Seed:
    """One seed's files: what the evaluate stage wrote and the train stage's curves and timing."""

    metrics: dict
    resamples: dict
    predictions: dict
    per_class: pd.DataFrame
    history: pd.DataFrame
    train_seconds: float


def _read_seed(key: RunKey, evaluation: Path, models: Path) -> _Seed:
    ev, md = evaluation_dir(key, evaluation), model_dir(key, models)
    try:
        metrics = json.loads((ev / "metrics.json").read_text())
        with np.load(ev / "resamples.npz") as npz:
            resamples = {k: npz[k] for k in npz.files}
        with np.load(ev / "predictions.npz") as npz:
            predictions = {k: npz[k] for k in npz.files}
        # round_trip: pandas' default float parser can miss the written value by one unit in the last place; the
        # figures read here must be the ones the stages computed (the robustness stage's clean condition is
        # checked against them bit for bit)
        per_class = pd.read_csv(ev / "per_class.csv", float_precision="round_trip")
        history = pd.read_csv(md / "history.csv", float_precision="round_trip")
    except FileNotFoundError as exc:
        raise EcgCrnnError(
            f"{exc.filename}: missing (train and evaluate {key.arch} at {key.window:g} s, seed {key.seed})"
        ) from None
    timing = md / "timing.json"
    seconds = json.loads(timing.read_text())["train_seconds"] if timing.is_file() else np.nan
    return _Seed(metrics, resamples, predictions, per_class, history, seconds)


def load_model(
    arch: str,
    window: float,
    seeds: list[int],
    evaluation: Path,
    models: Path,
    rotation: int = 0,
    fraction=1.0,
    robustness: Path | None = None,
) -> Model:
    keys = [RunKey(arch, float(window), s, rotation, float(fraction)) for s in seeds]
    read = {
        s: _read_seed(
            RunKey(arch, float(window), s, rotation, float(fraction)), Path(evaluation), Path(models)
        )
        for s in seeds
    }
    cost_path = cost_file(arch, window, evaluation)
    cost = json.loads(cost_path.read_text()) if cost_path.is_file() else {}
    timing = [r.train_seconds for r in read.values()]
    # per seed, as every other figure of a model is its seeds' mean
    cost["train_seconds"] = float(np.nanmean(timing)) if np.isfinite(timing).any() else np.nan
    first = next(iter(read.values()))
    keep = [
        c for c in ("class", "family", "test_positives", "test_positive_patients", "test_negative_patients")
    ]
    per_class = first.per_class[[c for c in keep if c in first.per_class]].copy()
    per_class["auroc"] = np.mean([r.per_class["auroc"].to_numpy(float) for r in read.values()], axis=0)
    resampled = {k: np.stack([r.resamples[k] for r in read.values()]) for k in TESTED}
    if len({r.resamples[k].shape for r in read.values() for k in TESTED}) != 1:
        raise EcgCrnnError("evaluations used different bootstrap resamples; re-run the evaluate stages")
    return Model(
        arch,
        float(window),
        list(seeds),
        pd.DataFrame([r.metrics for r in read.values()]),
        resampled,
        np.stack([r.resamples["class_auroc"] for r in read.values()]),
        per_class,
        np.stack([r.per_class["auroc"].to_numpy(float) for r in read.values()]),
        np.stack([auroc_per_class(r.predictions["val_y"], r.predictions["val_p"]) for r in read.values()]),
        cost,
        {s: r.history for s, r in read.items()},
        first.predictions["test_y"],
        {s: r.predictions["test_p"] for s, r in read.items()},
        np.stack([r.resamples["class_auprc"] for r in read.values()]),
        np.stack([r.per_class["auprc"].to_numpy(float) for r in read.values()]),
        load_robustness(robustness, keys) if robustness is not None else None,
    )


def load_models(
    evaluation: Path, models: Path, params: Params, fraction=None, robustness: Path | None = None
) -> dict[int, dict[Key, Model]]:
    """Every (architecture, window) of the configured grid at one share of the training data (default: the
    largest), per rotation of the folds, with every seed of train.seeds (and the robustness stage's outputs, when
    `robustness` is given and they are there); a missing evaluation is named."""
    fraction = max(params.study.train_fractions) if fraction is None else fraction
    out = {
        r: {
            (arch, float(w)): load_model(
                arch, w, params.train.seeds, evaluation, models, r, fraction, robustness
            )
            for w in params.study.windows
            for arch in params.study.architectures
        }
        for r in params.segment.rotations
    }
    for r, ms in out.items():
        if len({m.resampled[PRIMARY].shape[1] for m in ms.values()}) != 1:
            raise EcgCrnnError(f"rotation {r}: evaluations used different bootstrap resamples; re-run them")
    return out

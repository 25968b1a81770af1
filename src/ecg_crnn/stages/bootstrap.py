"""The bootstrap stage: per rotation of the folds, one set of patient resamples of its test fold that every
evaluation uses, so that comparisons are paired: integer weights per test record, in the order of split.csv's test
rows; evaluation/bootstrap/rotR.npz."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_dir
from ..config import Params
from ..data.labels import load_labels
from ..errors import EcgCrnnError
from ..layout import BOOTSTRAP, FILTERED, SEGMENTED, bootstrap_file, rotation_dir
from ..metrics import BootstrapError, patient_weights


@dataclass(frozen=True)
class Paths:
    filtered: Path = FILTERED
    segmented: Path = SEGMENTED
    out: Path = BOOTSTRAP


def test_fold_rows(filtered: Path, segmented: Path, rotation: int = 0) -> tuple[pd.DataFrame, list[str]]:
    table, classes = load_labels(filtered)
    split = pd.read_csv(rotation_dir(segmented, rotation) / "split.csv")
    rows = split.loc[split["split"] == "test", "row"].to_numpy()
    return table.loc[rows].reset_index(drop=True), classes


def _resample(params: Params, paths: Paths, rotation: int, folder: Path) -> np.ndarray:
    cfg = params.evaluate
    test, classes = test_fold_rows(paths.filtered, paths.segmented, rotation)
    y = test[classes].to_numpy(bool)
    try:
        weights, kept = patient_weights(
            test["patient_id"].to_numpy(), y, cfg.bootstrap, cfg.bootstrap_seed + rotation
        )
    except BootstrapError as exc:
        raise EcgCrnnError(f"bootstrap: rotation {rotation}: {exc}") from None
    with open(bootstrap_file(folder, rotation), "wb") as f:  # a file object: np.savez would append ".npz"
        np.savez_compressed(
            f, weights=weights, ecg_id=test["ecg_id"].to_numpy(), seed=cfg.bootstrap_seed, acceptance=kept
        )
    print(
        f"bootstrap: rotation {rotation}: {len(weights)} resamples of {test['patient_id'].nunique()} test patients "
        f"({len(test)} records; {kept:.0%} of the draws kept every scored class)",
        file=sys.stderr,
    )
    return weights


def run(params: Params, paths: Paths = Paths()) -> dict[int, np.ndarray]:
    with atomic_dir(paths.out) as tmp:
        out = {r: _resample(params, paths, r, tmp) for r in params.segment.rotations}
    first = out[params.segment.rotations[0]]
    print(f"bootstrap: {first.shape[0]} patient resamples of {first.shape[1]} test records -> {paths.out}")
    return out

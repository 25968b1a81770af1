"""The bootstrap stage: one set of patient resamples of the test fold that every evaluation uses, so that
comparisons are paired: integer weights per test record, in the order of split.csv's test rows."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_path
from ..config import Params
from ..data.labels import load_labels
from ..errors import EcgCrnnError
from ..layout import BOOTSTRAP, FILTERED, SEGMENTED
from ..metrics import BootstrapError, patient_weights


@dataclass(frozen=True)
class Paths:
    filtered: Path = FILTERED
    segmented: Path = SEGMENTED
    out: Path = BOOTSTRAP


def test_fold_rows(filtered: Path, segmented: Path) -> tuple[pd.DataFrame, list[str]]:
    table, classes = load_labels(filtered)
    split = pd.read_csv(Path(segmented) / "split.csv")
    rows = split.loc[split["split"] == "test", "row"].to_numpy()
    return table.loc[rows].reset_index(drop=True), classes


def run(params: Params, paths: Paths = Paths()) -> np.ndarray:
    cfg = params.evaluate
    test, classes = test_fold_rows(paths.filtered, paths.segmented)
    y = test[classes].to_numpy(bool)
    try:
        weights, kept = patient_weights(test["patient_id"].to_numpy(), y, cfg.bootstrap, cfg.bootstrap_seed)
    except BootstrapError as exc:
        raise EcgCrnnError(f"bootstrap: {exc}") from None
    with atomic_path(paths.out) as tmp, open(tmp, "wb") as f:  # a file object: np.savez would append ".npz"
        np.savez_compressed(
            f, weights=weights, ecg_id=test["ecg_id"].to_numpy(), seed=cfg.bootstrap_seed, acceptance=kept
        )
    print(
        f"bootstrap: {len(weights)} resamples of {test['patient_id'].nunique()} test patients "
        f"({len(test)} records; {kept:.0%} of the draws kept every scored class) -> {paths.out}",
        file=sys.stderr,
    )
    print(
        f"bootstrap: {weights.shape[0]} patient resamples of {weights.shape[1]} test records -> {paths.out}"
    )
    return weights

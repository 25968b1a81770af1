"""The filter stage's label table as later stages read it: labels.csv and classes.json.

labels.csv holds ecg_id, patient_id, strat_fold, filename, then one 0/1 column per class, in the order of the
signal cache's rows; classes.json the task, the class order, positives and family (MI, CD, rhythm, ...) per class.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..errors import EcgCrnnError

META_COLUMNS = ["ecg_id", "patient_id", "strat_fold", "filename"]


def load_labels(filtered_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    filtered_dir = Path(filtered_dir)
    try:
        classes = json.loads((filtered_dir / "classes.json").read_text())["classes"]
        table = pd.read_csv(filtered_dir / "labels.csv")
    except FileNotFoundError as exc:
        raise EcgCrnnError(f"{exc.filename}: not found (run the filter stage first)") from None
    return table, classes

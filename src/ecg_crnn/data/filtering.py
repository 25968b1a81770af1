"""The filter stage: labels of one task, the records that carry them, and their signal cache.

Outputs (one directory, swapped in atomically; previous outputs stay untouched on any error):
  labels.csv    ecg_id, patient_id, strat_fold, filename, then one 0/1 column per class
  classes.json  the task, the class order, positives and family (MI, CD, rhythm, ...) per class
  signals.npy, calibration.npz, signals.json   the signal cache (see cache.py)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from ..atomic import atomic_dir
from ..config import DataSettings, FilterSettings
from ..errors import EcgCrnnError
from .cache import build_cache
from .ptbxl import DATABASE_CSV, aggregate_labels, class_families, load_database, load_statements

META_COLUMNS = ["ecg_id", "patient_id", "strat_fold", "filename"]


def select_records(
    raw_dir: Path, data: DataSettings, cfg: FilterSettings
) -> tuple[pd.DataFrame, list[str], dict[str, str]]:
    """The label table of the task (records on disk checked, signals not yet read) and its class list.

    Classes are counted on the records actually used, so that a partial mirror or `validated_only` never
    yields a class without a single positive.
    """
    db = load_database(raw_dir)
    statements = load_statements(raw_dir)
    if cfg.validated_only:
        if "validated_by_human" not in db.columns:
            raise EcgCrnnError(
                f"{raw_dir / DATABASE_CSV}: filter.validated_only needs column 'validated_by_human'"
            )
        db = db[db["validated_by_human"].astype(str).str.lower() == "true"]
    column = "filename_lr" if data.sampling_rate == 100 else "filename_hr"
    table = pd.DataFrame(
        {
            "ecg_id": db.index,
            "patient_id": db["patient_id"].to_numpy(),
            "strat_fold": db["strat_fold"].to_numpy(),
            "filename": db[column].to_numpy(),
            "labels": aggregate_labels(db, statements, cfg.task).to_numpy(),
        }
    )
    table = table[table["labels"].map(len) > 0]
    if table.empty:
        raise EcgCrnnError(f"filter: no record has a label of task {cfg.task!r} with the settings given")
    table = restrict_to_present(table, raw_dir, cfg.records)
    counts = pd.Series([c for ls in table["labels"] for c in ls]).value_counts()
    classes = sorted(counts.index[counts >= max(cfg.min_class_count, 1)])
    table = table[table["labels"].map(lambda ls: any(c in classes for c in ls))].reset_index(drop=True)
    if table.empty:
        raise EcgCrnnError(f"filter: no class has filter.min_class_count={cfg.min_class_count} positives")
    for c in classes:
        table[c] = [int(c in ls) for ls in table["labels"]]
    return table.drop(columns="labels"), classes, class_families(statements, cfg.task, classes)


def restrict_to_present(table: pd.DataFrame, raw_dir: Path, records: str) -> pd.DataFrame:
    present = table["filename"].map(lambda f: (raw_dir / f"{f}.hea").is_file())
    n_missing = int((~present).sum())
    if n_missing and records == "all":
        first = table.loc[~present, "filename"].iloc[0]
        raise EcgCrnnError(
            f"{n_missing:,} of {len(table):,} records named in {raw_dir / DATABASE_CSV} are missing under "
            f"{raw_dir} (first: {first}.hea); download them, or set filter.records: present to use the "
            f"{int(present.sum()):,} that are there"
        )
    if not present.any():
        raise EcgCrnnError(
            f"none of the {len(table):,} records named in {raw_dir / DATABASE_CSV} is under {raw_dir}"
        )
    return table[present]


def run_filter(
    raw_dir: Path, out_dir: Path, data: DataSettings, cfg: FilterSettings, progress: bool = True
) -> dict:
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    table, classes, families = select_records(raw_dir, data, cfg)
    counts = {c: int(table[c].sum()) for c in classes}
    print(f"filter: task {cfg.task}: {len(table):,} records, {len(classes)} classes", file=sys.stderr)
    with atomic_dir(out_dir) as tmp:
        build_cache([raw_dir / f for f in table["filename"]], tmp, cfg.workers, progress)
        table.to_csv(tmp / "labels.csv", index=False)
        summary = {
            "task": cfg.task,
            "records": len(table),
            "classes": classes,
            "positives": counts,
            "families": families,
        }
        (tmp / "classes.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def load_labels(filtered_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    filtered_dir = Path(filtered_dir)
    try:
        classes = json.loads((filtered_dir / "classes.json").read_text())["classes"]
        table = pd.read_csv(filtered_dir / "labels.csv")
    except FileNotFoundError as exc:
        raise EcgCrnnError(f"{exc.filename}: not found (run the filter stage first)") from None
    return table, classes

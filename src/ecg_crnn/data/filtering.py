"""Which records and classes a task uses: the label table of filter.task, records on disk checked, and the
records taken out because their signal is unusable.

Record file names come from the database CSV, so each must be a plain relative path inside the dataset:
an absolute one or one that climbs out with '..' is refused, naming its ecg_id.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..config import DataSettings, FilterSettings
from ..errors import EcgCrnnError
from .checksums import is_plain_relative
from .labels import META_COLUMNS
from .ptbxl import DATABASE_CSV, aggregate_labels, class_families, load_database, load_statements


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
    check_filenames(db, column, raw_dir / DATABASE_CSV)
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


def check_filenames(db: pd.DataFrame, column: str, csv: Path) -> None:
    """Refuse a record file name that could lead out of the dataset (absolute, '..'), naming its ecg_id."""
    for ecg_id, name in zip(db.index, db[column], strict=True):
        if not isinstance(name, str) or not is_plain_relative(name):
            raise EcgCrnnError(
                f"{csv}: ecg_id {ecg_id}: {column} {name!r} is not a relative path inside the dataset "
                "(absolute, or climbing out with '..'); refused"
            )


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


def drop_unusable(
    table: pd.DataFrame, classes: list[str], problems: dict[int, list[str]], cfg: FilterSettings
) -> tuple[pd.DataFrame, list[str], pd.DataFrame]:
    """Take out the records with unusable signals, then classes left under filter.min_class_count (at
    least one positive) and the records left without a class. Returns the table, the classes and the
    dropped records (row in the cache, ecg_id, filename, reason)."""
    reasons = pd.Series("", index=table.index, dtype=object)
    for row, why in problems.items():
        reasons[row] = "; ".join(why)
    if problems:
        left = table[reasons == ""]
        counts = left[classes].sum()
        kept_classes = [c for c in classes if counts[c] >= max(cfg.min_class_count, 1)]
        lost = sorted(set(classes) - set(kept_classes))
        classless = (reasons == "") & (table[kept_classes].sum(axis=1) == 0)
        reasons[classless] = (
            f"no class left: {', '.join(lost)} fell under filter.min_class_count once the records "
            "with unusable signals were dropped"
        )
        classes = kept_classes
    gone = reasons != ""
    dropped = pd.DataFrame(
        {
            "row": table.index[gone],
            "ecg_id": table.loc[gone, "ecg_id"],
            "filename": table.loc[gone, "filename"],
            "reason": reasons[gone],
        }
    )
    lost_columns = [c for c in table.columns if c not in META_COLUMNS and c not in classes]
    table = table.loc[~gone].drop(columns=lost_columns)
    if table.empty:
        first = dropped.iloc[0]
        raise EcgCrnnError(
            f"filter: all {len(dropped):,} records were dropped, nothing is left to cache (first: ecg_id "
            f"{first['ecg_id']}, {first['filename']}: {first['reason']})"
        )
    return table.reset_index(drop=True), classes, dropped

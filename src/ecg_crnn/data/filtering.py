"""The filter stage: labels of one task, the records that carry them, and their signal cache.

Outputs (one directory, swapped in atomically; previous outputs stay untouched on any error):
  labels.csv    ecg_id, patient_id, strat_fold, filename, then one 0/1 column per class
  classes.json  the task, the class order, positives and family (MI, CD, rhythm, ...) per class
  dropped.csv   ecg_id, filename, reason: records left out because a lead carries no signal
                (filter.bad_records: drop; header only when none was)
  signals.npy, calibration.npz, signals.json   the signal cache (see cache.py)

Record file names come from the database CSV, so each must be a plain relative path inside the dataset:
an absolute one or one that climbs out with '..' is refused, naming its ecg_id.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from ..atomic import atomic_dir
from ..config import DataSettings, FilterSettings
from ..errors import EcgCrnnError
from .cache import build_cache, drop_rows
from .checksums import is_plain_relative
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


def run_filter(
    raw_dir: Path, out_dir: Path, data: DataSettings, cfg: FilterSettings, progress: bool = True
) -> dict:
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    table, classes, families = select_records(raw_dir, data, cfg)
    print(f"filter: task {cfg.task}: {len(table):,} records, {len(classes)} classes", file=sys.stderr)
    with atomic_dir(out_dir) as tmp:
        problems = build_cache(
            [raw_dir / f for f in table["filename"]],
            tmp,
            cfg.workers,
            progress,
            sampling_rate=data.sampling_rate,
        )
        if problems and cfg.bad_records == "refuse":
            row = next(iter(problems))
            raise EcgCrnnError(
                f"{raw_dir / table['filename'][row]}.hea (ecg_id {table['ecg_id'][row]}): "
                f"{'; '.join(problems[row])}; filter.bad_records is 'refuse' ({len(problems)} such "
                "record(s) in all): set filter.bad_records: drop to leave them out"
            )
        table, classes, dropped = _drop_unusable(table, classes, problems, cfg)
        if len(dropped):
            drop_rows(tmp, dropped["row"])
            print(
                f"filter: dropped {len(dropped):,} records whose signal is unusable; the list with the "
                f"reasons is in {out_dir / 'dropped.csv'}",
                file=sys.stderr,
            )
        dropped[["ecg_id", "filename", "reason"]].to_csv(tmp / "dropped.csv", index=False)
        families = {c: families[c] for c in classes}
        counts = {c: int(table[c].sum()) for c in classes}
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


def _drop_unusable(
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


def load_labels(filtered_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    filtered_dir = Path(filtered_dir)
    try:
        classes = json.loads((filtered_dir / "classes.json").read_text())["classes"]
        table = pd.read_csv(filtered_dir / "labels.csv")
    except FileNotFoundError as exc:
        raise EcgCrnnError(f"{exc.filename}: not found (run the filter stage first)") from None
    return table, classes

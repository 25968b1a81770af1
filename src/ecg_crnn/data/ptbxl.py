"""PTB-XL's two tables and the label aggregation that every PTB-XL paper uses.

Aggregation follows Strodthoff et al. (2020): every key of `scp_codes` counts, whatever its likelihood;
a task keeps the statements of its kind and maps them to its label set; records left without a label of
the task are dropped. On the full 1.0.3 tables the subdiagnostic task gives 21,388 records in 23 classes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd

from ..errors import EcgCrnnError

DATABASE_CSV = "ptbxl_database.csv"
STATEMENTS_CSV = "scp_statements.csv"
# The longest scp_codes cell of PTB-XL 1.0.3 is 128 characters (9 statements); all 71 statements with their
# likelihoods would take ~1,200. A cell longer than this is no statement list, and is refused before it is parsed
# (literal_eval of a huge or deeply nested cell exhausts memory or the parser's recursion).
MAX_SCP_CODES_CHARS = 4096
DATABASE_COLUMNS = ("ecg_id", "patient_id", "scp_codes", "strat_fold", "filename_lr", "filename_hr")
STATEMENT_COLUMNS = ("diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass")


def _read_csv(path: Path, required: tuple[str, ...], **kwargs) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, **kwargs)
    except FileNotFoundError:
        raise EcgCrnnError(f"{path}: not found") from None
    except pd.errors.EmptyDataError:
        raise EcgCrnnError(f"{path}: empty file (not even a header row)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise EcgCrnnError(f"{path}: not a readable CSV ({exc})") from None
    columns = set(df.columns) | {df.index.name}
    missing = [c for c in required if c not in columns]
    if missing:
        raise EcgCrnnError(f"{path}: missing required column(s) {', '.join(repr(c) for c in missing)}")
    return df


def load_database(root: Path) -> pd.DataFrame:
    """ptbxl_database.csv indexed by ecg_id, with `scp_codes` parsed into dicts."""
    path = Path(root) / DATABASE_CSV
    db = _read_csv(path, DATABASE_COLUMNS)
    if db.empty:
        raise EcgCrnnError(f"{path}: has no records (only a header row)")
    if db["ecg_id"].duplicated().any():
        dup = db.loc[db["ecg_id"].duplicated(), "ecg_id"].iloc[0]
        raise EcgCrnnError(f"{path}: ecg_id {dup} appears more than once")
    db = db.set_index("ecg_id")

    db["scp_codes"] = [_parse_codes(v, i, path) for v, i in zip(db["scp_codes"], db.index, strict=True)]
    bad_folds = db.loc[~db["strat_fold"].isin(range(1, 11))]
    if len(bad_folds):
        raise EcgCrnnError(
            f"{path}: ecg_id {bad_folds.index[0]}: strat_fold {bad_folds['strat_fold'].iloc[0]!r} is not in 1..10"
        )
    return db


def _parse_codes(value, ecg_id, path: Path) -> dict[str, float]:
    """One scp_codes cell: a dict literal of statement codes to likelihoods (0-100), bounded before parsing."""
    if isinstance(value, str) and len(value) > MAX_SCP_CODES_CHARS:
        raise EcgCrnnError(
            f"{path}: ecg_id {ecg_id}: scp_codes is {len(value):,} characters long ({value[:40]!r}...), more than "
            f"the {MAX_SCP_CODES_CHARS:,} a list of PTB-XL's statements can take; refused"
        )
    try:
        codes = ast.literal_eval(value) if isinstance(value, str) else None
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        codes = None
    ok = isinstance(codes, dict) and all(
        isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
        for k, v in codes.items()
    )
    if not ok:
        raise EcgCrnnError(
            f"{path}: ecg_id {ecg_id}: scp_codes {str(value)[:80]!r} is not a dict literal of statement codes "
            "to likelihoods"
        )
    return codes


def load_statements(root: Path) -> pd.DataFrame:
    return _read_csv(Path(root) / STATEMENTS_CSV, STATEMENT_COLUMNS, index_col=0)


def statement_map(statements: pd.DataFrame, task: str) -> dict[str, str]:
    """SCP code -> label of `task`, for the statements that task uses."""
    s = statements
    if task == "all":
        return {code: code for code in s.index}
    if task in ("form", "rhythm"):
        return {code: code for code in s.index[s[task] == 1]}
    diag = s[s["diagnostic"] == 1]
    column = {
        "diagnostic": None,
        "subdiagnostic": "diagnostic_subclass",
        "superdiagnostic": "diagnostic_class",
    }
    if task not in column:
        raise EcgCrnnError(f"filter.task: unknown task {task!r}")
    if column[task] is None:
        return {code: code for code in diag.index}
    return {code: str(label) for code, label in diag[column[task]].items() if pd.notna(label)}


def aggregate_labels(db: pd.DataFrame, statements: pd.DataFrame, task: str) -> pd.Series:
    """Per record, the sorted list of its labels for `task` (empty when it has none)."""
    mapping = statement_map(statements, task)
    return pd.Series(
        [sorted({mapping[c] for c in codes if c in mapping}) for codes in db["scp_codes"]],
        index=db.index,
        name="labels",
    )


def class_families(statements: pd.DataFrame, task: str, classes: list[str]) -> dict[str, str]:
    """Each class's family, for reporting where temporal modeling helps: the superdiagnostic class
    (NORM, MI, STTC, CD conduction, HYP) of diagnostic labels, else `form` or `rhythm`."""
    s = statements
    families: dict[str, str] = {}
    for code, row in s.iterrows():
        if row["diagnostic"] == 1 and pd.notna(row["diagnostic_class"]):
            family = str(row["diagnostic_class"])
            keys = {"subdiagnostic": row["diagnostic_subclass"], "superdiagnostic": row["diagnostic_class"]}
            families.setdefault(str(keys.get(task, code)), family)
        elif row["rhythm"] == 1:
            families.setdefault(str(code), "rhythm")
        elif row["form"] == 1:
            families.setdefault(str(code), "form")
    if task in ("form", "rhythm"):
        return {c: task for c in classes}
    return {c: families.get(c, "other") for c in classes}

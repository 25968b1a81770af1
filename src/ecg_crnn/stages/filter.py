"""The filter stage: labels of filter.task, the records that carry them, and their signal cache.

Outputs (one directory, swapped in atomically; previous outputs stay untouched on any error):
  labels.csv    ecg_id, patient_id, strat_fold, filename, then one 0/1 column per class
  classes.json  the task, the class order, positives and family (MI, CD, rhythm, ...) per class
  dropped.csv   ecg_id, filename, reason: records left out because a lead carries no signal or an amplitude no
                ECG can have (filter.bad_records: drop; header only when none was); each is also named on the
                console when there are at most NAMED of them
  signals.npy, calibration.npz, signals.json   the signal cache (see data/signals.py)
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_dir
from ..config import Params
from ..data.cache import build_cache, drop_rows
from ..data.filtering import drop_unusable, select_records
from ..errors import EcgCrnnError
from ..layout import FILTERED, RAW

NAMED = 10  # dropped records named one by one on the console; more are counted, and listed in dropped.csv


@dataclass(frozen=True)
class Paths:
    raw: Path = RAW
    out: Path = FILTERED


def run(params: Params, paths: Paths = Paths(), progress: bool = True) -> dict:
    raw_dir, out_dir, cfg = Path(paths.raw), Path(paths.out), params.filter
    table, classes, families = select_records(raw_dir, params.data, cfg)
    print(f"filter: task {cfg.task}: {len(table):,} records, {len(classes)} classes", file=sys.stderr)
    with atomic_dir(out_dir) as tmp:
        problems = build_cache(
            [raw_dir / f for f in table["filename"]], tmp, cfg.workers, progress, params.data.sampling_rate
        )
        if problems and cfg.bad_records == "refuse":
            row = next(iter(problems))
            raise EcgCrnnError(
                f"{raw_dir / table['filename'][row]}.hea (ecg_id {table['ecg_id'][row]}): "
                f"{'; '.join(problems[row])}; filter.bad_records is 'refuse' ({len(problems)} such "
                "record(s) in all): set filter.bad_records: drop to leave them out"
            )
        table, classes, dropped = drop_unusable(table, classes, problems, cfg)
        if len(dropped):
            drop_rows(tmp, dropped["row"])
            _say_dropped(dropped, out_dir / "dropped.csv")
        dropped[["ecg_id", "filename", "reason"]].to_csv(tmp / "dropped.csv", index=False)
        table.to_csv(tmp / "labels.csv", index=False)
        summary = {
            "task": cfg.task,
            "records": len(table),
            "classes": classes,
            "positives": {c: int(table[c].sum()) for c in classes},
            "families": {c: families[c] for c in classes},
        }
        (tmp / "classes.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"filter: {summary['records']} records, {len(summary['classes'])} classes -> {out_dir}")
    return summary


def _say_dropped(dropped, listing: Path) -> None:
    if len(dropped) <= NAMED:
        for ecg_id, filename, reason in dropped[["ecg_id", "filename", "reason"]].itertuples(index=False):
            print(f"filter: dropped ecg_id {ecg_id} ({filename}): {reason}", file=sys.stderr)
    print(
        f"filter: dropped {len(dropped):,} records whose signal is unusable or implausible; the list with the "
        f"reasons is in {listing}",
        file=sys.stderr,
    )

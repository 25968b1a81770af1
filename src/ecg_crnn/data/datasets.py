"""What a verified download fetches, per dataset: which listed files, how large each may be, what it owns.

One mechanism, several datasets: the download (download.py) takes a `Dataset` and never names a file of its own.
A description says
- which of the listing's files to fetch: named top-level files (required or fetched when listed) and every file
  under named folders;
- the most bytes each file and the listing (SHA256SUMS.txt) may have, counted as they arrive (raw bytes, never
  decompressed), so that a hostile or broken mirror cannot make a download endless;
- what the dataset owns in its output folder: the files it fetches and the folders they sit in. Only those may
  ever be removed by the download (see ownership.py).

PTB-XL's sizes follow from its layout (checked on the 488 records of the shared subset and the full tables):
every record is 12 leads x 10 s in format 16, so a .dat holds 12 x 10 x rate x 2 bytes: exactly 24,000 bytes at
100 Hz and 120,000 at 500 Hz; its cap is twice that, enough to reach the filter stage, whose message on a record of
another shape is more precise than a size cap's, and still a bound. A header is 12 short lines (597-620 bytes);
cap 4 KiB. ptbxl_database.csv is 6.6 MB in 1.0.3 (21,799 rows), capped at 32 MiB; scp_statements.csv (9.7 KB) and
LICENSE.txt (14.5 KB) at 1 MiB. The full listing names ~43,600 files per rate plus the tables, ~96 bytes a line:
~8.4 MB for both rates; capped at 16 MiB.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import EcgCrnnError
from .checksums import SUMS_NAME

KIB, MIB = 1024, 1024 * 1024


@dataclass(frozen=True)
class Dataset:
    name: str  # written into the ownership marker
    required: tuple[str, ...]  # top-level files the listing must name
    optional: tuple[str, ...] = ()  # top-level files fetched when listed
    folders: tuple[str, ...] = ()  # 'folder/': every listed file below is fetched (at least one must be)
    owned_folders: tuple[str, ...] = ()  # 'folder/': hold only this dataset's files (a superset of `folders`)
    caps: tuple[tuple[str, int], ...] = ()  # (fnmatch pattern over the relative path, max bytes); first match
    listing_max_bytes: int = 64 * KIB
    unreachable_hint: str = ""  # the ways on when the source cannot be reached

    @property
    def owned_top(self) -> frozenset[str]:
        """Top-level entries of an output folder that belong to the dataset (files and its folders)."""
        folders = {f.rstrip("/").split("/")[0] for f in (*self.folders, *self.owned_folders)}
        return frozenset({*self.required, *self.optional, *folders})

    def owns(self, relpath: str) -> bool:
        """Whether `relpath` (relative to the output folder) is a place only this dataset's files live."""
        return relpath in self.required or relpath in self.optional or relpath.startswith(self._all_folders)

    @property
    def _all_folders(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.folders, *self.owned_folders)))

    def max_bytes(self, relpath: str) -> int | None:
        for pattern, cap in self.caps:
            if fnmatch.fnmatchcase(relpath, pattern):
                return cap
        return None

    def select(self, sums: Mapping[str, str], origin: str) -> dict[str, str]:
        """The listed files this dataset fetches, each with a size cap; errors name the listing (`origin`)."""
        missing = [name for name in self.required if name not in sums]
        if missing:
            raise EcgCrnnError(f"{origin}: the source does not list {', '.join(missing)} ({self.name})")
        chosen = {
            p: d
            for p, d in sums.items()
            if p in self.required or p in self.optional or any(p.startswith(f) for f in self.folders)
        }
        for folder in self.folders:
            if not any(p.startswith(folder) for p in chosen):
                raise EcgCrnnError(f"{SUMS_NAME} of the source lists no file under {folder}")
        uncapped = sorted(p for p in chosen if self.max_bytes(p) is None)
        if uncapped:
            raise EcgCrnnError(
                f"{origin}: lists {uncapped[0]}"
                + (f" (and {len(uncapped) - 1:,} more)" if len(uncapped) > 1 else "")
                + f", a kind of file {self.name}'s layout does not have (no size bound is known for it); refused"
            )
        return chosen


def ptbxl(sampling_rate: int) -> Dataset:
    """PTB-XL 1.0.3 at one sampling rate: both tables, the license, and records100/ or records500/."""
    dat_bytes = 12 * 10 * sampling_rate * 2
    return Dataset(
        name="ptb-xl",
        required=("ptbxl_database.csv", "scp_statements.csv"),
        optional=("LICENSE.txt",),
        folders=(f"records{sampling_rate}/",),
        owned_folders=("records100/", "records500/"),
        caps=(
            (f"records{sampling_rate}/*.dat", 2 * dat_bytes),
            (f"records{sampling_rate}/*.hea", 4 * KIB),
            ("ptbxl_database.csv", 32 * MIB),
            ("scp_statements.csv", MIB),
            ("LICENSE.txt", MIB),
        ),
        listing_max_bytes=16 * MIB,
        unreachable_hint=(
            "Two ways on without it: set download.source to a local copy or mirror of PTB-XL, e.g. "
            "`dvc exp run -S download.source=../shared/ptbxl -S filter.records=present`; or make a "
            "synthetic set with `ecg-crnn synth --records 3000 data/synthetic` and run with "
            "`-S download.source=data/synthetic`"
        ),
    )


# The MIT-BIH Noise Stress Test Database 1.0.0: the robustness stage's real noise (robustness/nstdb.py reads it).
# Its three noise records, 2 channels at 360 Hz in format 212, 650,000 samples each: a .dat packs two 12-bit
# samples into 3 bytes, so 650,000 x 2 x 1.5 = 1,950,000 bytes exactly (capped at 2,000,000); a header is three
# short lines. Its SHA256SUMS.txt lists ~100 files of ~80 bytes a line.
NSTDB_BASE_URL = "https://physionet.org/files/nstdb/1.0.0/"
NSTDB_RECORDS = ("bw", "em", "ma")  # baseline wander, electrode motion, muscle artifact
NSTDB_FILES = tuple(f"{record}.{ext}" for record in NSTDB_RECORDS for ext in ("hea", "dat"))
NSTDB_FS, NSTDB_N_SIGNALS, NSTDB_N_SAMPLES = 360, 2, 650_000
NSTDB_DAT_BYTES = NSTDB_N_SAMPLES * NSTDB_N_SIGNALS * 3 // 2
NSTDB_MAX_BYTES = {name: (2_000_000 if name.endswith(".dat") else 4 * KIB) for name in NSTDB_FILES}
NSTDB_SUMS_MAX_BYTES = 64 * KIB


def nstdb() -> Dataset:
    """nstdb's three noise records (six files), each with its cap."""
    return exact_files("nstdb", NSTDB_MAX_BYTES, NSTDB_SUMS_MAX_BYTES)


def exact_files(name: str, max_bytes: Mapping[str, int], listing_max_bytes: int) -> Dataset:
    """A dataset of a fixed set of top-level files with their caps (e.g. nstdb's bw/em/ma records)."""
    return Dataset(
        name=name,
        required=tuple(max_bytes),
        caps=tuple((_literal(p), b) for p, b in max_bytes.items()),
        listing_max_bytes=listing_max_bytes,
    )


def _literal(name: str) -> str:
    """An fnmatch pattern that matches exactly `name`."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)

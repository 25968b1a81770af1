"""The download stage: PTB-XL's files for one sampling rate, fetched in parallel and verified by sha256.

Resumable by construction: a file reaches its final name only after its checksum matched, by an atomic
rename from a staging folder, so a killed run leaves only whole, verified files behind; the next run
re-hashes what is there, skips what matches and fetches the rest.

The output mirrors the source's listing for the chosen rate: once everything listed is in place, files
under the output directory that the listing no longer names (a record the source dropped, the other
rate's folder, strays) are removed, so later stages never read data the source no longer has. Listed
paths are refused unless they stay inside the output directory (no absolute paths, no '..', no symbolic
link out of it), so a hostile or broken mirror cannot write or delete anything elsewhere.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
import uuid
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..atomic import write_text
from ..errors import EcgCrnnError
from ..hashing import sha256_file
from .checksums import SUMS_NAME, format_sums, parse_sums
from .sources import Source, SourceUnreachable, TransientSourceError

CSV_FILES = ("ptbxl_database.csv", "scp_statements.csv")
EXTRA_FILES = ("LICENSE.txt",)  # fetched when the source lists it
STAGING = ".partial"


class ChecksumMismatch(EcgCrnnError):
    pass


@dataclass(frozen=True)
class DownloadReport:
    wanted: int
    already_verified: int
    fetched: int
    bytes_fetched: int
    removed: int = 0  # files under the output directory that the listing no longer names


class _HashingWriter:
    def __init__(self, f):
        self.f, self.h, self.n = f, hashlib.sha256(), 0

    def write(self, chunk: bytes) -> int:
        self.h.update(chunk)
        self.n += len(chunk)
        return self.f.write(chunk)


def select_files(sums: dict[str, str], sampling_rate: int) -> dict[str, str]:
    """The files one sampling rate needs: both CSVs, the license, and records100/ or records500/."""
    missing = [name for name in CSV_FILES if name not in sums]
    if missing:
        raise EcgCrnnError(f"{SUMS_NAME} of the source does not list {', '.join(missing)}")
    folder = f"records{sampling_rate}/"
    chosen = {p: d for p, d in sums.items() if p in CSV_FILES or p in EXTRA_FILES or p.startswith(folder)}
    if not any(p.startswith(folder) for p in chosen):
        raise EcgCrnnError(f"{SUMS_NAME} of the source lists no file under {folder}")
    return chosen


def _retrying(fn, retries: int):
    """`fn()`, tried `retries + 1` times in all while it fails transiently (connection failed or lost,
    server busy), with backoff. The only retry layer: sources make one attempt per call."""
    for attempt in range(retries + 1):
        try:
            return fn()
        except TransientSourceError:
            if attempt == retries:
                raise
            time.sleep(min(0.5 * 2**attempt, 8.0))
    raise AssertionError("unreachable")


def _fetch_one(
    source: Source, relpath: str, digest: str, out_dir: Path, staging: Path, retries: int = 3
) -> int:
    """Fetch one file, retrying transfers that broke off (a connection lost mid-file) with backoff."""
    return _retrying(lambda: _fetch_once(source, relpath, digest, out_dir, staging), retries)


def _origin(source: Source, relpath: str) -> str:
    url_of = getattr(source, "url_of", None)
    return url_of(relpath) if url_of else f"{source.description} {relpath}"


def _fetch_listing(source: Source, retries: int) -> str:
    def once() -> str:
        buf = _Buffer()
        source.fetch(SUMS_NAME, buf)
        return buf.text()

    try:
        return _retrying(once, retries)
    except SourceUnreachable as exc:
        raise SourceUnreachable(
            f"download.source: {source.description} is unreachable ({exc}). Two ways on without it: "
            "set download.source to a local copy or mirror of PTB-XL, e.g. "
            "`dvc exp run -S download.source=../shared/ptbxl -S filter.records=present`; or make a "
            "synthetic set with `ecg-crnn synth --records 3000 data/synthetic` and run with "
            "`-S download.source=data/synthetic`"
        ) from None


def _check_inside(out_dir: Path, files: dict[str, str], origin: str) -> set[str]:
    """Refuse listed paths that would land outside `out_dir` once symbolic links are resolved (parse_sums
    already refused absolute paths and '..'). Returns the resolved paths of the listed files."""
    root = os.path.realpath(out_dir)
    parents: dict[str, str] = {}
    resolved = set()
    for p in files:
        parent, name = os.path.split(p)
        real_parent = parents.get(parent)
        if real_parent is None:
            real_parent = parents[parent] = os.path.realpath(out_dir / parent)
        if os.path.commonpath([root, real_parent]) != root:
            raise EcgCrnnError(
                f"{origin}: entry {p!r} would be written to {os.path.join(real_parent, name)}, outside the "
                f"output directory {out_dir} (a symbolic link under it leads elsewhere); refused"
            )
        resolved.add(os.path.join(real_parent, name))
    return resolved


def _unlisted(out_dir: Path, keep_real: set[str]) -> list[Path]:
    """Files (and symbolic links) under `out_dir` that are not listed files, found without following
    links: removing them can never touch anything outside `out_dir`. SHA256SUMS.txt and the staging
    folder are never among them."""
    stale = []
    for dirpath, dirnames, filenames in os.walk(out_dir, followlinks=False):
        here = Path(dirpath)
        if here == out_dir:
            dirnames[:] = [d for d in dirnames if d != STAGING]
            filenames = [f for f in filenames if f != SUMS_NAME]
        real_here = os.path.realpath(here)
        for name in filenames + [d for d in dirnames if (here / d).is_symlink()]:
            if os.path.join(real_here, name) not in keep_real:
                stale.append(here / name)
    return sorted(stale)


def _remove(out_dir: Path, stale: list[Path]) -> int:
    for path in stale:
        path.unlink(missing_ok=True)  # a symbolic link is removed itself, never what it points to
    # Then the directories left empty, deepest first (never out_dir itself, never through a link).
    for dirpath, _dirnames, _files in sorted(os.walk(out_dir, followlinks=False), reverse=True):
        here = Path(dirpath)
        if here != out_dir and not here.is_symlink() and not any(here.iterdir()):
            here.rmdir()
    return len(stale)


def _fetch_once(source: Source, relpath: str, digest: str, out_dir: Path, staging: Path) -> int:
    tmp = staging / f"{uuid.uuid4().hex}.part"
    try:
        with open(tmp, "wb") as f:
            writer = _HashingWriter(f)
            source.fetch(relpath, writer)
        got = writer.h.hexdigest()
        if got != digest:
            raise ChecksumMismatch(
                f"{relpath}: checksum mismatch (sha256 {got[:12]}…, {SUMS_NAME} says {digest[:12]}…); "
                f"the file from {source.description} is corrupt or was tampered with, and was not kept"
            )
        final = out_dir / relpath
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        return writer.n
    finally:
        tmp.unlink(missing_ok=True)


def _verified(out_dir: Path, files: dict[str, str], workers: int, progress: bool) -> set[str]:
    """Files already in place whose sha256 matches (hashing releases the GIL, so threads scale)."""
    present = [p for p in files if (out_dir / p).is_file()]
    if not present:
        return set()

    def ok(p: str) -> bool:
        return sha256_file(out_dir / p) == files[p]

    with ThreadPoolExecutor(max(1, min(workers, os.cpu_count() or 1) * 2)) as pool:
        results = list(
            tqdm(
                pool.map(ok, present),
                total=len(present),
                desc="verify existing",
                unit="file",
                disable=not progress,
                mininterval=1.0,
                file=sys.stderr,
            )
        )
    return {p for p, good in zip(present, results, strict=True) if good}


def download(
    source: Source,
    out_dir: Path,
    sampling_rate: int,
    workers: int = 16,
    progress: bool = True,
    retries: int = 3,
) -> DownloadReport:
    out_dir = Path(out_dir)
    origin = _origin(source, SUMS_NAME)
    listing = _fetch_listing(source, retries)
    files = select_files(parse_sums(listing, origin), sampling_rate)
    out_dir.mkdir(parents=True, exist_ok=True)
    keep_real = _check_inside(out_dir, files, origin)

    staging = out_dir / STAGING
    shutil.rmtree(staging, ignore_errors=True)  # leftovers of a killed run are never trusted
    staging.mkdir()
    done = _verified(out_dir, files, workers, progress)
    todo = sorted(set(files) - done)
    stale = _unlisted(out_dir, keep_real)
    print(
        f"download: {len(files)} files for {sampling_rate} Hz from {source.description}: "
        f"{len(done)} already verified, {len(todo)} to fetch, {len(stale)} no longer listed "
        "(removed once the download succeeds)",
        file=sys.stderr,
    )
    fetched_bytes = 0
    try:
        if todo:
            bar = tqdm(
                total=len(todo),
                desc="download",
                unit="file",
                disable=not progress,
                mininterval=1.0,
                file=sys.stderr,
            )
            with ThreadPoolExecutor(workers) as pool:
                futures = [
                    pool.submit(_fetch_one, source, p, files[p], out_dir, staging, retries) for p in todo
                ]
                for fut in futures:
                    fut.add_done_callback(lambda _f: bar.update(1))
                finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
                errors = [f.exception() for f in finished if f.exception() is not None]
                if errors:
                    for fut in futures:
                        fut.cancel()
                    wait(futures)
                    raise errors[0]
                fetched_bytes = sum(f.result() for f in futures)
            bar.close()
        # Written last: its presence with matching content marks a complete download.
        write_text(out_dir / SUMS_NAME, format_sums(files))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    removed = _remove(out_dir, stale)
    return DownloadReport(len(files), len(done), len(todo), fetched_bytes, removed)


class _Buffer:
    def __init__(self):
        self.parts: list[bytes] = []

    def write(self, chunk: bytes) -> int:
        self.parts.append(chunk)
        return len(chunk)

    def text(self) -> str:
        return b"".join(self.parts).decode("utf-8")

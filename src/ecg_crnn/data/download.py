"""The verified download: a dataset's files (datasets.py says which) fetched in parallel and verified by sha256.

Resumable by construction: a file reaches its final name only after its checksum matched, by an atomic
rename from a staging folder, so a killed run leaves only whole, verified files behind; the next run
re-hashes what is there, skips what matches and fetches the rest.

The listing (SHA256SUMS.txt) is the source's word on every file; `listing_sha256` pins the listing itself, so that
a mirror that changed files and listing alike is caught too. Every transfer is bounded: at most the dataset's
bytes for that file (the listing too), within a per-file deadline (transfer.py).

The output mirrors the source's listing: once everything listed is in place, the dataset's files that the
listing no longer names (a record the source dropped, the other rate's folder) are removed, so later stages never
read data the source no longer has. Nothing else is ever removed: the output folder must hold only the dataset's
entries, and is pruned only once a previous download marked it as the dataset's (ownership.py). Listed paths are
refused unless they stay inside the output directory (no absolute paths, no '..', no symbolic link out of it), so
a hostile or broken mirror cannot write or delete anything elsewhere.
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
from . import ownership
from .checksums import SUMS_NAME, format_sums, parse_sums
from .datasets import Dataset
from .ownership import STAGING
from .sources import Source, SourceUnreachable, TransientSourceError
from .transfer import BoundedWriter, Bounds, MemoryWriter

DEFAULT_DEADLINE_S = 600.0


class ChecksumMismatch(EcgCrnnError):
    pass


@dataclass(frozen=True)
class DownloadReport:
    wanted: int
    already_verified: int
    fetched: int
    bytes_fetched: int
    removed: int = 0  # the dataset's files under the output directory that the listing no longer names
    kept: int = 0  # such files kept, in a folder no previous download had marked as the dataset's


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


@dataclass(frozen=True)
class _Plan:
    """One download's fixed inputs, shared by its worker threads."""

    source: Source
    out_dir: Path
    staging: Path
    dataset: Dataset
    deadline_s: float
    retries: int

    def bounds(self, relpath: str) -> Bounds:
        return Bounds(self.dataset.max_bytes(relpath), self.deadline_s)


def _origin(source: Source, relpath: str) -> str:
    url_of = getattr(source, "url_of", None)
    return url_of(relpath) if url_of else f"{source.description} {relpath}"


def _fetch_listing(plan: _Plan, pinned: str | None) -> str:
    """The source's SHA256SUMS.txt, within the dataset's listing cap, checked against the pinned sha256."""
    origin = _origin(plan.source, SUMS_NAME)
    bounds = Bounds(plan.dataset.listing_max_bytes, plan.deadline_s)

    def once() -> bytes:
        buf = MemoryWriter(origin, bounds)
        plan.source.fetch(SUMS_NAME, buf, bounds)
        return buf.data()

    try:
        data = _retrying(once, plan.retries)
    except SourceUnreachable as exc:
        hint = f" {plan.dataset.unreachable_hint}" if plan.dataset.unreachable_hint else ""
        raise SourceUnreachable(
            f"{getattr(plan.source, 'key', 'download.source')}: {plan.source.description} is unreachable ({exc}).{hint}"
        ) from None
    got = hashlib.sha256(data).hexdigest()
    if pinned is not None and got != pinned.lower():
        raise ChecksumMismatch(
            f"{origin}: sha256 {got}, but download.listing_sha256 pins {pinned.lower()}: the source's listing "
            "is not the one pinned (another version of the dataset, or a mirror that changed files and listing "
            "alike); nothing was fetched"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EcgCrnnError(f"{origin}: not UTF-8 text ({exc.reason} at byte {exc.start}); refused") from None


def _check_inside(out_dir: Path, files: dict[str, str], origin: str) -> set[str]:
    """Refuse listed paths that would land outside `out_dir` once symbolic links are resolved (parse_sums
    already refused absolute paths and '..'). Returns the listed files' paths with their folders resolved."""
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


def _fetch_one(plan: _Plan, relpath: str, digest: str) -> int:
    """Fetch one file, retrying transfers that broke off (a connection lost mid-file) with backoff."""
    return _retrying(lambda: _fetch_once(plan, relpath, digest), plan.retries)


def _fetch_once(plan: _Plan, relpath: str, digest: str) -> int:
    tmp = plan.staging / f"{uuid.uuid4().hex}.part"
    bounds = plan.bounds(relpath)
    try:
        with open(tmp, "wb") as f:
            writer = BoundedWriter(f, _origin(plan.source, relpath), bounds)
            plan.source.fetch(relpath, writer, bounds)
        got = writer.h.hexdigest()
        if got != digest:
            raise ChecksumMismatch(
                f"{relpath}: checksum mismatch (sha256 {got[:12]}…, {SUMS_NAME} says {digest[:12]}…); "
                f"the file from {plan.source.description} is corrupt or was tampered with, and was not kept"
            )
        final = plan.out_dir / relpath
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


def _fetch_all(plan: _Plan, files: dict[str, str], todo: list[str], workers: int, progress: bool) -> int:
    """Fetch `todo` in parallel; the first error cancels what has not started and is raised. Returns bytes."""
    if not todo:
        return 0
    bar = tqdm(
        total=len(todo), desc="download", unit="file", disable=not progress, mininterval=1.0, file=sys.stderr
    )
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(_fetch_one, plan, p, files[p]) for p in todo]
        for fut in futures:
            fut.add_done_callback(lambda _f: bar.update(1))
        finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
        errors = [f.exception() for f in finished if f.exception() is not None]
        if errors:
            for fut in futures:
                fut.cancel()
            wait(futures)
            raise errors[0]
    bar.close()
    return sum(f.result() for f in futures)


def download(
    source: Source,
    out_dir: Path,
    dataset: Dataset,
    workers: int = 16,
    progress: bool = True,
    retries: int = 3,
    deadline_s: float = DEFAULT_DEADLINE_S,
    listing_sha256: str | None = None,
) -> DownloadReport:
    """Make `out_dir` hold exactly `dataset`'s files as `source` lists them, each verified (module doc)."""
    out_dir = Path(out_dir)
    plan = _Plan(source, out_dir, out_dir / STAGING, dataset, deadline_s, retries)
    origin = _origin(source, SUMS_NAME)
    files = dataset.select(parse_sums(_fetch_listing(plan, listing_sha256), origin), origin)
    was_marked = ownership.claim(out_dir, dataset)  # before the first byte of the dataset is written
    keep_real = _check_inside(out_dir, files, origin)
    shutil.rmtree(plan.staging, ignore_errors=True)  # leftovers of a killed run are never trusted
    plan.staging.mkdir()
    done = _verified(out_dir, files, workers, progress)
    todo = sorted(set(files) - done)
    stale = ownership.unlisted(out_dir, dataset, keep_real)
    if was_marked or not stale:
        fate = f"{len(stale)} no longer listed (removed once the download succeeds)"
    else:
        fate = f"{len(stale)} not listed (kept: no previous download had marked {out_dir} as the dataset's)"
    print(
        f"download: {len(files)} files of {dataset.name} from {source.description}: {len(done)} already "
        f"verified, {len(todo)} to fetch, {fate}",
        file=sys.stderr,
    )
    try:
        fetched_bytes = _fetch_all(plan, files, todo, workers, progress)
        # Written last: its presence with matching content marks a complete download.
        write_text(out_dir / SUMS_NAME, format_sums(files))
    finally:
        shutil.rmtree(plan.staging, ignore_errors=True)
    removed = ownership.remove(out_dir, dataset, stale) if was_marked else 0
    kept = 0 if was_marked else len(stale)
    return DownloadReport(len(files), len(done), len(todo), fetched_bytes, removed, kept)

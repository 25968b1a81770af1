"""One host-wide copy of each standardized split, memory-mapped by every job that trains or evaluates on it.

Many models training at once on one machine would otherwise each hold their own float32 copy of the training
folds (0.8 GB at 100 Hz, 4 GB at 500 Hz). Instead the first job to need a split writes it once as a .npy file in a
host cache, named by a digest of everything its values depend on (the signal cache's bytes, the calibration, the
rows, the standardization), and every job maps that file read-only: the operating system keeps one copy in its
page cache for all of them. The file is written by the same function that fills the in-memory array
(dataset.load_standardized), into a temporary name under an exclusive lock, and renamed into place only when
complete, so a reader sees a whole file or none, and a job killed mid-write leaves nothing that is ever read.

Why a host cache and not a DVC output: the split is a pure function of DVC-tracked inputs (data/filtered,
data/segmented), so versioning it too would double the data in the DVC cache and in every remote, and make every
fresh workspace hash another gigabyte, for nothing DVC does not already reproduce. The cache can be deleted at any
time (mapped files stay valid until their last reader ends). Location: $ECG_CRNN_DATA_CACHE, else
$XDG_CACHE_HOME/ecg-crnn/data (~/.cache/ecg-crnn/data); ECG_CRNN_DATA_CACHE=off loads each split in memory.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

CACHE_ENV = "ECG_CRNN_DATA_CACHE"
FORMAT = 1  # bump when what the file holds changes: older files are then never found
_CHUNK = 1 << 24


def cache_root(environ=os.environ) -> Path | None:
    """The host cache's folder, or None when switched off."""
    raw = environ.get(CACHE_ENV)
    if raw == "off":
        return None
    if raw:
        return Path(raw)
    return Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ecg-crnn" / "data"


def file_digest(path: Path, root: Path) -> str:
    """sha256 of a file's bytes, computed once per file: memoized under `root` by the file's identity (device,
    inode, size, modification time in ns), which any rewrite changes (every writer here and DVC's checkouts
    replace files rather than edit them in place). Hard-linked copies of one DVC cache object share it."""
    st = os.stat(path)
    memo = root / "digests" / f"{st.st_dev}-{st.st_ino}-{st.st_size}-{st.st_mtime_ns}"
    with contextlib.suppress(OSError):
        return memo.read_text().strip()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    digest = h.hexdigest()
    with contextlib.suppress(OSError):
        _write_atomic(memo, digest.encode())
    return digest


def split_key(signals: Path, calibration: Path, rows, mean, std, root: Path) -> str:
    """The digest that names one standardized split: it changes whenever one of its values could."""
    h = hashlib.sha256(f"ecg-crnn standardized split, format {FORMAT}\n".encode())
    for part in (file_digest(signals, root), file_digest(calibration, root)):
        h.update(part.encode())
    for array in (np.asarray(rows, np.int64), np.asarray(mean, np.float32), np.asarray(std, np.float32)):
        h.update(str(array.shape).encode())
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes, or when a killed holder dies
        yield


def shared_array(key: str, shape: tuple, fill, root: Path) -> np.ndarray:
    """The float32 array `key` of `shape`, memory-mapped read-only from the host cache; built first, once, by
    `fill(out)` when no complete file exists. Concurrent callers wait on the builder's lock, then map its file."""
    final = root / f"{key}.npy"
    if not final.is_file():
        with _locked(root / f"{key}.lock"):
            if not final.is_file():
                for stale in root.glob(f".{key}.npy.*.tmp"):  # left by a builder that was killed
                    stale.unlink(missing_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=f".{key}.npy.", suffix=".tmp", dir=root)
                os.close(fd)
                try:
                    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
                    fill(out)
                    out.flush()
                    del out
                    with open(tmp, "rb+") as f:
                        os.fsync(f.fileno())
                    os.replace(tmp, final)
                except BaseException:
                    Path(tmp).unlink(missing_ok=True)
                    raise
    array = np.load(final, mmap_mode="r")
    if array.shape != tuple(shape) or array.dtype != np.float32:
        raise OSError(f"{final}: holds {array.dtype} {array.shape}, not float32 {tuple(shape)}")
    return array


def shared_or_in_memory(key_parts: dict, shape: tuple, fill) -> np.ndarray:
    """The shared copy when the host cache is on and usable, else a fresh in-memory array (the same values:
    both are filled by `fill`). A cache that cannot be written (disk full, read-only) is said, not fatal."""
    root = cache_root()
    if root is not None:
        try:
            key = split_key(root=root, **key_parts)
            return shared_array(key, shape, fill, root)
        except OSError as exc:
            print(f"shared data: {exc}; loading this split in memory instead", file=sys.stderr)
    out = np.empty(shape, np.float32)
    fill(out)
    return out

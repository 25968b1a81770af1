"""Atomic output: a file or directory appears complete under its final name, or not at all, and a crash or a
second writer never leaves the final name missing.

Every stage writes through these helpers, so an interrupted or failed run leaves the previous outputs untouched
(DVC keeps them because the stages' outputs are declared `persist`). The temporary names (`.NAME.<random>.tmp`)
come from `tempfile`, which creates them private (0600 / 0700); before the swap they get the mode a plain write
would have given them: 0666 for files, 0777 for directories, minus the process umask.

Temporaries of a killed writer (gigabytes for the signal cache) are removed at the start of the next write of the
same name. A writer holds an exclusive flock on its temporary for as long as it runs (the kernel releases it when
the process dies), so a temporary whose lock can be taken is provably abandoned, and a live writer's never is.

A directory is swapped in with Linux's renameat2(RENAME_EXCHANGE): the new tree and the old one trade names in one
step, so at every instant the final name holds one complete version, whichever writer finishes last wins whole,
and the old tree, now under the temporary name, is deleted after. That rules out the two plain renames (old
aside, new in) that leave no output between them, and a versioned folder behind a symlink, which DVC would track
as a link instead of the outputs. Where the file system has no exchange (NFS, non-Linux), the two renames run under
an exclusive lock of the parent directory, and the next writer puts a set-aside tree back if a crash came between
them.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_NO_EXCHANGE = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV}


def _umask() -> int:
    """The process umask, read without changing it where Linux says it (/proc), else set and restored."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _exchange(a: Path, b: Path) -> bool:
    """Swap the names `a` and `b` atomically; False where the platform or file system cannot."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    code = ctypes.get_errno()
    if code in _NO_EXCHANGE:
        return False
    raise OSError(code, os.strerror(code), str(b))


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


@contextlib.contextmanager
def _locked_dir(directory: Path) -> Iterator[None]:
    """An exclusive lock of `directory` itself (flock on the directory: no lock file is left behind)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def clean_stale(final: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of `final` that no live writer holds, and put back a tree the fallback swap set
    aside when a crash came between its two renames. Returns what was removed."""
    final = Path(final)
    parent = final.parent
    if not parent.is_dir():
        return []
    removed = []
    ours = re.compile(rf"\.{re.escape(final.name)}\.[a-z0-9_]{{8,32}}(\.[A-Za-z0-9]+)?\.tmp")
    for candidate in [p for p in parent.iterdir() if ours.fullmatch(p.name)]:
        try:
            fd = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue  # gone meanwhile, or a link: not ours
        try:
            if _try_lock(fd):  # its writer is gone: the kernel released the lock when it died
                _remove(candidate)
                removed.append(candidate)
        finally:
            os.close(fd)
    aside = parent / f".{final.name}.old"
    if aside.exists() or aside.is_symlink():
        with _locked_dir(parent):
            if aside.exists() and not final.exists():
                os.rename(aside, final)  # the crash left no output: the previous one is back
            elif aside.exists():
                _remove(aside)
                removed.append(aside)
    return removed


def _private_temp(final: Path, directory: bool, suffix: str = "") -> tuple[Path, int]:
    """A new temporary beside `final`, locked by this process (the fd holds the lock), named `.NAME.*.tmp` only
    once locked, so that clean_stale never sees it unlocked while its writer lives."""
    if directory:
        born = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=suffix + ".new", dir=final.parent))
        fd = os.open(born, os.O_RDONLY | os.O_DIRECTORY)
    else:
        fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix + ".new", dir=final.parent)
        born = Path(name)
    fcntl.flock(fd, fcntl.LOCK_EX)
    tmp = born.with_name(born.name.removesuffix(".new") + ".tmp")
    os.rename(born, tmp)
    return tmp, fd


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `final`; on success it is renamed onto `final`, on error removed.

    The temporary file lives in the same directory so that the rename is atomic on POSIX file systems.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(final)
    tmp, fd = _private_temp(final, directory=False, suffix=suffix)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


def write_text(final: str | os.PathLike, text: str) -> None:
    with atomic_path(final) as tmp:
        tmp.write_text(text)


def write_json(final: str | os.PathLike, obj) -> None:
    write_text(final, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def _swap_in(tmp: Path, final: Path) -> Path | None:
    """Put the tree at `tmp` under `final`; returns where the previous tree now is (to delete), or None."""
    while True:
        try:
            if _exchange(tmp, final):
                return tmp
            break  # no exchange here: the locked fallback below
        except FileNotFoundError:  # no previous output: a plain rename, unless another writer's lands first
            try:
                os.rename(tmp, final)
                return None
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
    with _locked_dir(final.parent):
        aside = final.parent / f".{final.name}.old"
        if aside.exists() and not final.exists():  # a crash came between the two renames: put it back
            os.rename(aside, final)
        elif aside.exists():
            _remove(aside)
        if not final.exists():
            os.rename(tmp, final)
            return None
        os.rename(final, aside)
        os.rename(tmp, final)
        garbage = final.parent / f".{final.name}.{uuid.uuid4().hex}.tmp"
        os.rename(aside, garbage)  # under a temporary's name: deleted below, or by the next writer
        return garbage


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Build a whole directory under a temporary name, then swap it in for `final` in one step (see above)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(final)
    tmp, fd = _private_temp(final, directory=True)
    try:
        try:
            yield tmp
            os.chmod(tmp, 0o777 & ~_umask())
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        previous = _swap_in(tmp, final)
        if previous is not None:
            _remove(previous)
    finally:
        os.close(fd)

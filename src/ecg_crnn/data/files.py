"""Opening a dataset's files without trusting them: regular files only, sizes known before reading.

A name from a header or a listing may point at a FIFO (reading it waits forever for a writer), a device, or a
file of any size. Each file is opened with O_NONBLOCK, so that opening a FIFO returns at once, then checked with
fstat on the open descriptor (no window between the check and the read): only a regular file is read, and only
when its size is within what the caller allows. Errors name the file and what it was.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from ..errors import EcgCrnnError


class UnsafeFile(EcgCrnnError):
    pass


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def open_regular(path: Path, what: str) -> tuple[BinaryIO, int]:
    """`path` opened for reading, and its size; refused unless it is a regular file. FileNotFoundError is left to
    the caller, which knows what a missing file means."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UnsafeFile(f"{path}: {what} cannot be opened ({exc.strerror})") from None
    f = os.fdopen(fd, "rb")
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        f.close()
        raise UnsafeFile(f"{path}: {what} is {_kind(info.st_mode)}, not a regular file; refused")
    return f, info.st_size


def read_small(path: Path, max_bytes: int, what: str) -> bytes:
    """The whole of a regular file of at most `max_bytes`."""
    f, size = open_regular(path, what)
    with f:
        if size > max_bytes:
            raise UnsafeFile(
                f"{path}: {what} of {size:,} bytes, more than the {max_bytes:,} it can have; refused"
            )
        try:
            return f.read(max_bytes + 1)
        except OSError as exc:
            raise UnsafeFile(f"{path}: {what} cannot be read ({exc.strerror})") from None


def is_plain_name(name: str) -> bool:
    """A file name with no directory part: it can only name a file in the folder it is joined to."""
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\0")

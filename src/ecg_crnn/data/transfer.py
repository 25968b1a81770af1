"""One file's transfer from a source: its bounds (bytes, deadline), the writer that enforces them, and what can go
wrong, as exceptions the download tells apart (worth another try, or not).

The bounds are per file and count what arrives (raw bytes, never decompressed): a mirror that sends an endless
listing, a file larger than the dataset's layout allows, or one byte every few seconds (which no per-read timeout
ever stops) ends with an error naming the file, the bound and the setting.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
import time
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import EcgCrnnError


class SourceFileMissing(EcgCrnnError):
    """The source has no file at that path (HTTP 404, S3 NoSuchKey, no such local file)."""


class TransientSourceError(EcgCrnnError):
    """A connection that failed or broke off mid-transfer, or a server that is busy (HTTP 429, 5xx):
    worth another try."""


class SourceUnreachable(TransientSourceError):
    """No connection could be made at all (name not resolved, connection refused, connect timeout)."""


class FileTooLarge(EcgCrnnError):
    """More bytes than the dataset's layout allows for this file: not retried, the source is wrong."""


class DeadlineExceeded(EcgCrnnError):
    """The file did not arrive whole within its deadline: not retried, a source this slow stays slow."""


# Answers that say "try again later" rather than "no".
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Bounds:
    max_bytes: int  # raw bytes, as they arrive
    deadline_s: float  # wall-clock seconds for the whole file, from the request to its last byte

    def too_large(self, where: str, size: int | None = None) -> FileTooLarge:
        """`size`: what the source declared (Content-Length, an object's or a file's size); None: it sent more."""
        got = f"{size:,} bytes declared, more" if size is not None else "more bytes arrived"
        return FileTooLarge(
            f"{where}: {got} than the {self.max_bytes:,} that this file of the dataset's layout can have; refused "
            "(the source is broken or hostile)"
        )

    def too_slow(self, where: str) -> DeadlineExceeded:
        return DeadlineExceeded(
            f"{where}: did not arrive whole within its deadline of {self.deadline_s:g} s "
            "(download.file_deadline_s); refused, not retried: raise download.file_deadline_s for a slow link"
        )


class BoundedWriter:
    """Writes chunks to `f` while hashing and counting them; stops at the byte cap or past the deadline."""

    def __init__(self, f: BinaryIO, where: str, bounds: Bounds):
        self.f, self.where, self.bounds = f, where, bounds
        self.h, self.n = hashlib.sha256(), 0
        self.deadline = time.monotonic() + bounds.deadline_s

    def write(self, chunk: bytes) -> int:
        if self.n + len(chunk) > self.bounds.max_bytes:
            raise self.bounds.too_large(self.where)
        if time.monotonic() > self.deadline:
            raise self.bounds.too_slow(self.where)
        self.h.update(chunk)
        self.n += len(chunk)
        return self.f.write(chunk) if self.f is not None else len(chunk)


class MemoryWriter(BoundedWriter):
    """A BoundedWriter that keeps what it got (for the listing)."""

    def __init__(self, where: str, bounds: Bounds):
        super().__init__(None, where, bounds)
        self.parts: list[bytes] = []

    def write(self, chunk: bytes) -> int:
        super().write(chunk)
        self.parts.append(chunk)
        return len(chunk)

    def data(self) -> bytes:
        return b"".join(self.parts)


class Watchdog:
    """A timer that, when `seconds` pass before the block ends, shuts down the socket of what it watches: a
    connection (its `sock`, while the request is sent and the headers arrive) or urllib3's response (its
    `shutdown()`, which reaches the socket even after http.client let go of it). That ends a read blocked in
    another thread, where a per-read timeout never fires while bytes keep trickling in. The fetch then checks
    `expired` and reports the deadline."""

    def __init__(self, seconds: float):
        self.expired = False
        self._conn = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()

    def watch(self, conn) -> None:
        with self._lock:
            self._conn = conn
            if self.expired:
                self._cut()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            self._cut()

    def _cut(self) -> None:
        shutdown = getattr(self._conn, "shutdown", None)
        if shutdown is not None:
            try:
                return shutdown()
            except (OSError, ValueError, RuntimeError):  # urllib3: no socket to shut, or already released
                pass
        sock = getattr(self._conn, "sock", None)
        if (
            sock is not None
        ):  # socket.socket's own shutdown, also under TLS (an SSLSocket's drops its TLS state)
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

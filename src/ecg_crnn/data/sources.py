"""Where a dataset comes from: PhysioNet or a mirror (HTTP(S), http_source.py), an S3 bucket (boto3), or a local
directory.

Every source does one thing: stream one file, named by its path relative to the dataset root, into an
open binary file, within the file's bounds (transfer.py: at most so many raw bytes, a wall-clock deadline). The
download stage adds parallelism, verification, atomic placement and the retries on top: sources try each request
once (no urllib3 or botocore retries underneath), so that a failing file is tried exactly `download.retries + 1`
times. A local source reads only regular files (a FIFO would block the read forever).
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlparse

from ..errors import EcgCrnnError
from ..redaction import redact
from ..s3 import describe_client_error
from .http_source import HttpSource
from .transfer import (
    RETRYABLE_STATUS,
    Bounds,
    DeadlineExceeded,
    FileTooLarge,
    SourceFileMissing,
    SourceUnreachable,
    TransientSourceError,
    Watchdog,
)

__all__ = [
    "Bounds",
    "DeadlineExceeded",
    "FileTooLarge",
    "HttpSource",
    "LocalSource",
    "S3Source",
    "Source",
    "SourceFileMissing",
    "SourceUnreachable",
    "TransientSourceError",
    "open_source",
]

_CHUNK = 1 << 20


class Source(Protocol):
    description: str
    key: str  # the parameter that named it, for messages: download.source, robustness.noise_source

    def fetch(self, relpath: str, out: BinaryIO, bounds: Bounds) -> None: ...

    def url_of(self, relpath: str) -> str: ...


class LocalSource:
    def __init__(self, root: Path, key: str = "download.source"):
        if not root.is_dir():
            raise EcgCrnnError(f"{key}: {root} is not a directory")
        self.root, self.key = root, key
        self.description = str(root)

    def url_of(self, relpath: str) -> str:
        return str(self.root / relpath)

    def fetch(self, relpath: str, out: BinaryIO, bounds: Bounds) -> None:
        path = self.root / relpath
        deadline = time.monotonic() + bounds.deadline_s
        try:
            # O_NONBLOCK: opening a FIFO does not wait for a writer; fstat then refuses it.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise SourceFileMissing(f"{path}: no such file in the source") from None
        except OSError as exc:
            raise EcgCrnnError(f"{path}: cannot be read ({exc.strerror})") from None
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise EcgCrnnError(f"{path}: not a regular file in the source (a FIFO, device or directory)")
            if info.st_size > bounds.max_bytes:
                raise bounds.too_large(str(path), info.st_size)
            while chunk := f.read(_CHUNK):
                out.write(chunk)
                if time.monotonic() > deadline:
                    raise bounds.too_slow(str(path))


class S3Source:
    """s3://bucket/prefix/ on AWS (PhysioNet's open-data bucket is `s3://physionet-open/ptb-xl/1.0.3/`)
    or on any S3-compatible server given its endpoint URL. Credentials come from boto3's usual chain."""

    def __init__(
        self,
        url: str,
        endpoint_url: str | None,
        unsigned: bool,
        timeout_s: float,
        key: str = "download.source",
    ):
        parsed = urlparse(url)
        self.key = key
        if not parsed.netloc:
            raise EcgCrnnError(f"{key}: {redact(url)!r} names no bucket (expected s3://bucket/prefix/)")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.endpoint_url = endpoint_url
        self.description = redact(url + (f" at {endpoint_url}" if endpoint_url else ""))
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config

        # One attempt per request (botocore's `total_max_attempts`; its `max_attempts` counts retries):
        # the download stage retries (see the module doc). boto3 clients are thread-safe; one is shared by
        # all download threads.
        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=timeout_s,
            read_timeout=timeout_s,
            max_pool_connections=64,
            **({"signature_version": UNSIGNED} if unsigned else {}),
        )
        self.client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)

    def _key(self, relpath: str) -> str:
        return f"{self.prefix}/{relpath}" if self.prefix else relpath

    def url_of(self, relpath: str) -> str:
        at = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self._key(relpath)}{at}"

    def fetch(self, relpath: str, out: BinaryIO, bounds: Bounds) -> None:
        where = f"s3://{self.bucket}/{self._key(relpath)}"
        with Watchdog(bounds.deadline_s) as deadline:
            try:
                self._get(self._key(relpath), where, out, bounds, deadline)
            except EcgCrnnError:
                if not deadline.expired:
                    raise
            if deadline.expired:
                raise bounds.too_slow(where)

    def _get(self, key: str, where: str, out: BinaryIO, bounds: Bounds, deadline: Watchdog) -> None:
        """One GET; the body's connection is watched by `deadline` (the headers come within botocore's
        per-read timeout)."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
        )
        from urllib3.exceptions import HTTPError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
            if answer.get("ContentLength", 0) > bounds.max_bytes:
                raise bounds.too_large(where, answer["ContentLength"])
            body = answer["Body"]
            deadline.watch(getattr(body, "_raw_stream", None))  # urllib3's response under botocore's body
            for chunk in body.iter_chunks(_CHUNK):
                out.write(chunk)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in ("NoSuchKey", "404"):
                raise SourceFileMissing(f"{where}: no such object") from None
            if status in RETRYABLE_STATUS or code in ("SlowDown", "Throttling", "RequestTimeout"):
                raise TransientSourceError(describe_client_error(exc, where)) from None
            raise EcgCrnnError(describe_client_error(exc, where)) from None
        except (EndpointConnectionError, ConnectTimeoutError) as exc:
            raise SourceUnreachable(describe_client_error(exc, where)) from None
        except (BotoCoreError, NoCredentialsError, HTTPError, OSError) as exc:
            raise TransientSourceError(describe_client_error(exc, where)) from None


def open_source(
    url: str,
    s3_endpoint_url: str | None = None,
    s3_unsigned: bool = True,
    timeout_s: float = 60.0,
    key: str = "download.source",
) -> Source:
    """The source `url` names; `key` is the parameter it came from, which every message names."""
    scheme = urlparse(url).scheme
    if scheme in ("http", "https"):
        return HttpSource(url, timeout_s, key)
    if scheme == "s3":
        return S3Source(url, s3_endpoint_url, s3_unsigned, timeout_s, key)
    if scheme == "file":
        return LocalSource(Path(urlparse(url).path), key)
    if scheme == "":
        return LocalSource(Path(url).expanduser(), key)
    raise EcgCrnnError(
        f"{key}: unsupported scheme {scheme!r} in {redact(url)!r} (use https://, s3:// or a path)"
    )

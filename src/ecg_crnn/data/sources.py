"""Where PTB-XL comes from: PhysioNet (HTTPS), an S3 bucket (boto3), or a local directory.

Every source does one thing: stream one file, named by its path relative to the dataset root, into an
open binary file. The download stage adds parallelism, verification, atomic placement and the retries on
top: sources try each request once (no urllib3 or botocore retries underneath), so that a failing file is
tried exactly `download.retries + 1` times.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlparse

from ..errors import EcgCrnnError
from ..redaction import redact
from ..s3 import describe_client_error

_CHUNK = 1 << 20


class SourceFileMissing(EcgCrnnError):
    """The source has no file at that path (HTTP 404, S3 NoSuchKey, no such local file)."""


class TransientSourceError(EcgCrnnError):
    """A connection that failed or broke off mid-transfer, or a server that is busy (HTTP 429, 5xx):
    worth another try."""


class SourceUnreachable(TransientSourceError):
    """No connection could be made at all (name not resolved, connection refused, connect timeout)."""


# Answers that say "try again later" rather than "no".
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class Source(Protocol):
    description: str

    def fetch(self, relpath: str, out: BinaryIO) -> None: ...

    def url_of(self, relpath: str) -> str: ...


class LocalSource:
    def __init__(self, root: Path):
        if not root.is_dir():
            raise EcgCrnnError(f"download.source: {root} is not a directory")
        self.root = root
        self.description = str(root)

    def url_of(self, relpath: str) -> str:
        return str(self.root / relpath)

    def fetch(self, relpath: str, out: BinaryIO) -> None:
        try:
            with open(self.root / relpath, "rb") as f:
                shutil.copyfileobj(f, out, _CHUNK)
        except FileNotFoundError:
            raise SourceFileMissing(f"{self.root / relpath}: no such file in the source") from None


class HttpSource:
    """PhysioNet or any HTTP(S) mirror that serves the dataset's tree under one base URL."""

    def __init__(self, base_url: str, timeout_s: float):
        self.base_url = base_url.rstrip("/") + "/"
        self.description = redact(self.base_url)  # what messages name; params.yaml refuses credentials anyway
        self.timeout_s = timeout_s
        self._local = threading.local()  # one keep-alive session per download thread

    def url_of(self, relpath: str) -> str:
        return self.base_url + relpath

    def _session(self):
        session = getattr(self._local, "session", None)
        if session is None:
            import requests
            from requests.adapters import HTTPAdapter

            # max_retries=0: one attempt per request; the download stage retries (see the module doc).
            session = requests.Session()
            session.mount("http://", HTTPAdapter(max_retries=0))
            session.mount("https://", HTTPAdapter(max_retries=0))
            session.headers["User-Agent"] = "ecg-crnn"
            self._local.session = session
        return session

    def fetch(self, relpath: str, out: BinaryIO) -> None:
        import requests

        url = self.url_of(relpath)
        try:
            resp = self._session().get(url, stream=True, timeout=self.timeout_s)
        except (requests.ConnectionError, requests.ConnectTimeout) as exc:
            raise SourceUnreachable(f"{url}: {type(exc).__name__}: {exc}") from None
        except requests.RequestException as exc:
            raise TransientSourceError(f"{url}: {type(exc).__name__}: {exc}") from None
        try:
            with resp:
                if resp.status_code == 404:
                    raise SourceFileMissing(f"{url}: not found (HTTP 404)")
                if resp.status_code in _RETRYABLE_STATUS:
                    raise TransientSourceError(f"{url}: HTTP {resp.status_code} {resp.reason}")
                if resp.status_code >= 400:
                    raise EcgCrnnError(f"{url}: HTTP {resp.status_code} {resp.reason}")
                for chunk in resp.iter_content(_CHUNK):
                    out.write(chunk)
        except requests.RequestException as exc:
            raise TransientSourceError(f"{url}: {type(exc).__name__}: {exc}") from None


class S3Source:
    """s3://bucket/prefix/ on AWS (PhysioNet's open-data bucket is `s3://physionet-open/ptb-xl/1.0.3/`)
    or on any S3-compatible server given its endpoint URL. Credentials come from boto3's usual chain."""

    def __init__(self, url: str, endpoint_url: str | None, unsigned: bool, timeout_s: float):
        parsed = urlparse(url)
        if not parsed.netloc:
            raise EcgCrnnError(f"download.source: {url!r} names no bucket (expected s3://bucket/prefix/)")
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

    def fetch(self, relpath: str, out: BinaryIO) -> None:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
        )

        key = self._key(relpath)
        where = f"s3://{self.bucket}/{key}"
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            for chunk in body.iter_chunks(_CHUNK):
                out.write(chunk)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in ("NoSuchKey", "404"):
                raise SourceFileMissing(f"{where}: no such object") from None
            if status in _RETRYABLE_STATUS or code in ("SlowDown", "Throttling", "RequestTimeout"):
                raise TransientSourceError(describe_client_error(exc, where)) from None
            raise EcgCrnnError(describe_client_error(exc, where)) from None
        except (EndpointConnectionError, ConnectTimeoutError) as exc:
            raise SourceUnreachable(describe_client_error(exc, where)) from None
        except (BotoCoreError, NoCredentialsError) as exc:
            raise TransientSourceError(describe_client_error(exc, where)) from None


def open_source(
    url: str, s3_endpoint_url: str | None = None, s3_unsigned: bool = True, timeout_s: float = 60.0
) -> Source:
    scheme = urlparse(url).scheme
    if scheme in ("http", "https"):
        return HttpSource(url, timeout_s)
    if scheme == "s3":
        return S3Source(url, s3_endpoint_url, s3_unsigned, timeout_s)
    if scheme == "file":
        return LocalSource(Path(urlparse(url).path))
    if scheme == "":
        return LocalSource(Path(url).expanduser())
    raise EcgCrnnError(
        f"download.source: unsupported scheme {scheme!r} in {url!r} (use https://, s3:// or a path)"
    )

"""Where PTB-XL comes from: PhysioNet (HTTPS), an S3 bucket (boto3), or a local directory.

Every source does one thing: stream one file, named by its path relative to the dataset root, into an
open binary file. The download stage adds parallelism, verification and atomic placement on top.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlparse

from ..errors import EcgCrnnError

_CHUNK = 1 << 20


class SourceFileMissing(EcgCrnnError):
    """The source has no file at that path (HTTP 404, S3 NoSuchKey, no such local file)."""


class TransientSourceError(EcgCrnnError):
    """A connection that failed or broke off mid-transfer: worth another try."""


class Source(Protocol):
    description: str

    def fetch(self, relpath: str, out: BinaryIO) -> None: ...


class LocalSource:
    def __init__(self, root: Path):
        if not root.is_dir():
            raise EcgCrnnError(f"download.source: {root} is not a directory")
        self.root = root
        self.description = str(root)

    def fetch(self, relpath: str, out: BinaryIO) -> None:
        try:
            with open(self.root / relpath, "rb") as f:
                shutil.copyfileobj(f, out, _CHUNK)
        except FileNotFoundError:
            raise SourceFileMissing(f"{self.root / relpath}: no such file in the source") from None


class HttpSource:
    """PhysioNet or any HTTP(S) mirror that serves the dataset's tree under one base URL."""

    def __init__(self, base_url: str, retries: int, timeout_s: float):
        self.base_url = base_url.rstrip("/") + "/"
        self.description = self.base_url
        self.retries = retries
        self.timeout_s = timeout_s
        self._local = threading.local()  # one keep-alive session per download thread

    def _session(self):
        session = getattr(self._local, "session", None)
        if session is None:
            import requests
            from requests.adapters import HTTPAdapter
            from urllib3.util.retry import Retry

            retry = Retry(
                total=self.retries,
                backoff_factor=0.5,
                status_forcelist=(429, 500, 502, 503, 504),
                allowed_methods=("GET",),
            )
            session = requests.Session()
            session.mount("http://", HTTPAdapter(max_retries=retry))
            session.mount("https://", HTTPAdapter(max_retries=retry))
            session.headers["User-Agent"] = "ecg-crnn"
            self._local.session = session
        return session

    def fetch(self, relpath: str, out: BinaryIO) -> None:
        import requests

        url = self.base_url + relpath
        try:
            with self._session().get(url, stream=True, timeout=self.timeout_s) as resp:
                if resp.status_code == 404:
                    raise SourceFileMissing(f"{url}: not found (HTTP 404)")
                if resp.status_code >= 400:
                    raise EcgCrnnError(f"{url}: HTTP {resp.status_code} {resp.reason}")
                for chunk in resp.iter_content(_CHUNK):
                    out.write(chunk)
        except requests.RequestException as exc:
            raise TransientSourceError(f"{url}: {type(exc).__name__}: {exc}") from None


class S3Source:
    """s3://bucket/prefix/ on AWS (PhysioNet's open-data bucket is `s3://physionet-open/ptb-xl/1.0.3/`)
    or on any S3-compatible server given its endpoint URL. Credentials come from boto3's usual chain."""

    def __init__(self, url: str, endpoint_url: str | None, unsigned: bool, retries: int, timeout_s: float):
        parsed = urlparse(url)
        if not parsed.netloc:
            raise EcgCrnnError(f"download.source: {url!r} names no bucket (expected s3://bucket/prefix/)")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.description = url + (f" at {endpoint_url}" if endpoint_url else "")
        from ..storage import s3_client

        # boto3 clients are thread-safe; one is shared by all download threads.
        self.client = s3_client(endpoint_url, unsigned, retries, timeout_s)

    def fetch(self, relpath: str, out: BinaryIO) -> None:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        from ..storage import describe_client_error

        key = f"{self.prefix}/{relpath}" if self.prefix else relpath
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            for chunk in body.iter_chunks(_CHUNK):
                out.write(chunk)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                raise SourceFileMissing(f"s3://{self.bucket}/{key}: no such object") from None
            raise EcgCrnnError(describe_client_error(exc, f"s3://{self.bucket}/{key}")) from None
        except (BotoCoreError, NoCredentialsError) as exc:
            raise TransientSourceError(describe_client_error(exc, f"s3://{self.bucket}/{key}")) from None


def open_source(
    url: str,
    s3_endpoint_url: str | None = None,
    s3_unsigned: bool = True,
    retries: int = 3,
    timeout_s: float = 60.0,
) -> Source:
    scheme = urlparse(url).scheme
    if scheme in ("http", "https"):
        return HttpSource(url, retries, timeout_s)
    if scheme == "s3":
        return S3Source(url, s3_endpoint_url, s3_unsigned, retries, timeout_s)
    if scheme == "file":
        return LocalSource(Path(urlparse(url).path))
    if scheme == "":
        return LocalSource(Path(url).expanduser())
    raise EcgCrnnError(
        f"download.source: unsupported scheme {scheme!r} in {url!r} (use https://, s3:// or a path)"
    )

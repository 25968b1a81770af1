"""PhysioNet or any HTTP(S) mirror as a source, each file bounded in bytes and in wall-clock time.

`timeout_s` bounds each socket operation (connect, one read); it cannot end a response that sends one byte every
second, nor headers that trickle in. The per-file deadline can: a watchdog timer, started with the request, shuts
the connection's socket down when the deadline passes, which ends whatever read is blocked (while the headers
arrive or the body streams), and the fetch then reports the deadline. The socket is found through urllib3's
documented extension point, a pool's `ConnectionCls`: the connection class here registers itself with the
thread's current deadline on every request, kept-alive or new.

Only identity encoding is asked for (`Accept-Encoding: identity`) and accepted: a response compressed anyway is
refused, since its decompressed size is not bounded by the bytes that arrive. A declared Content-Length over the
file's cap is refused before any byte is read; the body is read raw (never decoded) and counted by the writer.
"""

from __future__ import annotations

import threading
from typing import BinaryIO

from ..errors import EcgCrnnError
from ..redaction import redact
from .transfer import (
    RETRYABLE_STATUS,
    Bounds,
    SourceFileMissing,
    SourceUnreachable,
    TransientSourceError,
    Watchdog,
)

_CHUNK = 1 << 16
_current = threading.local()  # the watchdog of the fetch this thread is running


def _watched(connection_cls):
    class Watched(connection_cls):
        def request(self, *args, **kwargs):
            deadline = getattr(_current, "deadline", None)
            if deadline is not None:
                deadline.watch(self)
            return super().request(*args, **kwargs)

        def getresponse(self, *args, **kwargs):
            deadline = getattr(_current, "deadline", None)
            if deadline is not None:
                deadline.watch(
                    self
                )  # connected by now: a deadline already past cuts it before the first read
            return super().getresponse(*args, **kwargs)

    Watched.__name__ = f"Watched{connection_cls.__name__}"
    return Watched


def _pool_classes() -> dict:
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class Pool(HTTPConnectionPool):
        ConnectionCls = _watched(HTTPConnection)

    class SecurePool(HTTPSConnectionPool):
        ConnectionCls = _watched(HTTPSConnection)

    return {"http": Pool, "https": SecurePool}


def _session():
    import requests
    from requests.adapters import HTTPAdapter

    pools = _pool_classes()

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

        def proxy_manager_for(self, proxy, **kwargs):
            manager = super().proxy_manager_for(proxy, **kwargs)
            manager.pool_classes_by_scheme = pools
            return manager

    # max_retries=0: one attempt per request; the download stage retries (see download.py).
    session = requests.Session()
    session.mount("http://", Adapter(max_retries=0))
    session.mount("https://", Adapter(max_retries=0))
    session.headers["User-Agent"] = "ecg-crnn"
    session.headers["Accept-Encoding"] = "identity"
    return session


class HttpSource:
    """PhysioNet or any HTTP(S) mirror that serves the dataset's tree under one base URL."""

    def __init__(self, base_url: str, timeout_s: float, key: str = "download.source"):
        self.base_url = base_url.rstrip("/") + "/"
        self.key = key
        self.description = redact(self.base_url)  # what messages name; params.yaml refuses credentials anyway
        self.timeout_s = timeout_s
        self._local = threading.local()  # one keep-alive session per download thread

    def url_of(self, relpath: str) -> str:
        return self.base_url + relpath

    def _session(self):
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = _session()
        return session

    def fetch(self, relpath: str, out: BinaryIO, bounds: Bounds) -> None:
        url = self.url_of(relpath)
        with Watchdog(bounds.deadline_s) as deadline:
            _current.deadline = deadline
            try:
                resp = self._request(url)
                deadline.watch(resp.raw)
                with resp:
                    _check_response(resp, url, bounds)
                    _stream(resp, url, out)
            except EcgCrnnError:
                if not deadline.expired:
                    raise
            finally:
                _current.deadline = None
            if deadline.expired:  # however the cut surfaced: an error, or a body of unknown length cut short
                self._drop_session()
                raise bounds.too_slow(url)

    def _request(self, url: str):
        import requests

        try:
            return self._session().get(url, stream=True, timeout=self.timeout_s)
        except (requests.ConnectionError, requests.ConnectTimeout) as exc:
            raise SourceUnreachable(f"{url}: {type(exc).__name__}: {exc}") from None
        except requests.RequestException as exc:
            raise TransientSourceError(f"{url}: {type(exc).__name__}: {exc}") from None

    def _drop_session(self) -> None:
        session = getattr(self._local, "session", None)
        self._local.session = None
        if session is not None:
            session.close()


def _check_response(resp, url: str, bounds: Bounds) -> None:
    if resp.status_code == 404:
        raise SourceFileMissing(f"{url}: not found (HTTP 404)")
    if resp.status_code in RETRYABLE_STATUS:
        raise TransientSourceError(f"{url}: HTTP {resp.status_code} {resp.reason}")
    if resp.status_code >= 400:
        raise EcgCrnnError(f"{url}: HTTP {resp.status_code} {resp.reason}")
    encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise EcgCrnnError(
            f"{url}: the server sent it with Content-Encoding {encoding!r}, though only identity was asked "
            "for; refused, as a compressed body's size is not bounded by the bytes that arrive"
        )
    length = resp.headers.get("Content-Length", "").strip()
    if length.isdigit() and int(length) > bounds.max_bytes:
        raise bounds.too_large(url, int(length))


def _stream(resp, url: str, out: BinaryIO) -> None:
    """The body as it arrives (raw: never decoded), into `out`, whose own errors (the cap) pass unchanged."""
    import requests
    import urllib3

    try:
        for chunk in resp.raw.stream(_CHUNK, decode_content=False):
            out.write(chunk)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise TransientSourceError(f"{url}: {type(exc).__name__}: {exc}") from None

"""Publishing reports and models to an S3 bucket: each publish a fresh, immutable version with its manifest.

`publish PATHS --to s3://bucket/prefix` writes every file under `prefix/VERSION/`, then
`prefix/VERSION/manifest.json` (every file's key, path, size and sha256), then `prefix/latest.json` naming that
version. VERSION is the first 16 hex digits of the sha256 of the manifest's file list (paths, sizes, sha256s), so a
version's name is its content:
- an object under a manifest never changes afterwards: publishing other content writes another version, so a
  reader holding any manifest, old or new, finds exactly the bytes it lists (overwriting objects in place would
  leave an old manifest listing sha256s its objects no longer have, and a reader between the two writes would
  see a mix);
- publishing the same files again writes nothing (every object is there with its sha256, the manifest too), and
  a publish interrupted part-way is completed by running it again;
- `latest.json`, written last, is the only object ever replaced: it points at a manifest that is already whole.
Every object carries its sha256 in its metadata and is checked after upload; failed multipart uploads are aborted
by boto3's transfer manager. Older versions stay until someone deletes them (a bucket lifecycle rule can).

Keys are paths relative to the folder publish runs in (`root`), or, for a path given outside it, relative to that
path's own folder (`/elsewhere/model.pt` is `model.pt`); they are never resolved through symbolic links, so a key
says where its file lies. Refused: a symbolic link (to a file or a folder) whose target lies outside both `root`
and the given path's folder, anything but regular files (a FIFO would block the upload), and two files that would
share one key (the manifest would list one sha256 for two files).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import EcgCrnnError
from .hashing import sha256_file
from .s3 import describe_client_error, split_s3_url

MANIFEST = "manifest.json"
LATEST = "latest.json"


@dataclass(frozen=True)
class PublishedFile:
    path: str  # relative to the root, as in the version's keys
    size: int
    sha256: str


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([root, path]) == root


class _Collector:
    """The files to publish, each under its key; symbolic links followed only while they stay in the tree."""

    def __init__(self, root: Path):
        self.root = os.path.abspath(root)
        self.files: dict[str, str] = {}  # key (relative path) -> absolute path, not resolved

    def add(self, path: Path) -> None:
        path = os.path.abspath(path)
        if not os.path.lexists(path):
            raise EcgCrnnError(f"{path}: no such file or directory to publish")
        # Under the root, keys are paths relative to it; elsewhere, relative to the folder the path is in.
        base = self.root if _inside(path, self.root) else os.path.dirname(path)
        trees = (os.path.realpath(self.root), os.path.realpath(base))
        self._check_link(path, trees)
        if os.path.isdir(path):
            self._walk(path, base, trees)
        else:
            self._file(path, base, trees)

    def _check_link(self, path: str, trees: tuple[str, ...]) -> None:
        real = os.path.realpath(path)
        if not any(_inside(real, tree) for tree in trees):
            raise EcgCrnnError(
                f"publish: {path} is a symbolic link (or lies under one) that leads out of the tree, to {real}; "
                "refused, as it would publish a file from elsewhere under this key"
            )

    def _walk(self, top: str, base: str, trees: tuple[str, ...]) -> None:
        seen: set[str] = set()
        for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
            real = os.path.realpath(dirpath)
            if real in seen:  # a link back to a folder already walked: no loop, no second copy
                dirnames[:] = []
                continue
            seen.add(real)
            for d in dirnames:
                self._check_link(os.path.join(dirpath, d), trees)
            for name in sorted(filenames):
                self._file(os.path.join(dirpath, name), base, trees)

    def _file(self, path: str, base: str, trees: tuple[str, ...]) -> None:
        self._check_link(path, trees)
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise EcgCrnnError(f"publish: {path} is not a regular file (a FIFO, socket or device); refused")
        key = Path(os.path.relpath(path, base)).as_posix()
        other = self.files.get(key)
        if other is not None and not os.path.samefile(other, path):
            raise EcgCrnnError(
                f"publish: {other} and {path} would both be published as {key!r} (the manifest would list one "
                "sha256 for two files); refused: publish them from their common folder, or one at a time"
            )
        self.files[key] = path


def _remote_sha(client, bucket: str, key: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    # S3 lowercases user metadata keys; some compatible servers capitalize them.
    return {k.lower(): v for k, v in head.get("Metadata", {}).items()}.get("sha256")


def _version(files: list[PublishedFile]) -> str:
    listing = json.dumps([[f.path, f.size, f.sha256] for f in files], separators=(",", ":"))
    return hashlib.sha256(listing.encode()).hexdigest()[:16]


def _upload(client, bucket: str, key: str, path: str, digest: str) -> bool:
    """Upload `path` to `key` unless the object is there with this sha256; True when it was uploaded."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    where = f"s3://{bucket}/{key}"
    try:
        if _remote_sha(client, bucket, key) == digest:
            return False
        client.upload_file(path, bucket, key, ExtraArgs={"Metadata": {"sha256": digest}})
        if _remote_sha(client, bucket, key) != digest:
            raise EcgCrnnError(f"{where}: the stored object's sha256 differs from {path}'s after upload")
    except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
        raise EcgCrnnError(describe_client_error(exc, where)) from None
    print(f"publish: {path} -> {where}", file=sys.stderr)
    return True


def _put_json(client, bucket: str, key: str, obj) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        body = json.dumps(obj, indent=2).encode()
        client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    except (ClientError, BotoCoreError) as exc:
        raise EcgCrnnError(describe_client_error(exc, f"s3://{bucket}/{key}")) from None


def publish(paths: list[Path], dest: str, client, root: Path | None = None) -> dict:
    """Publish files and directories as a new version under s3://bucket/prefix/ (module doc); keys relative to
    `root` (default: the current folder)."""
    bucket, prefix = split_s3_url(dest)
    collector = _Collector(Path(root or Path.cwd()))
    for p in paths:
        collector.add(Path(p))
    sources = collector.files
    files = [
        PublishedFile(k, os.path.getsize(sources[k]), sha256_file(Path(sources[k]))) for k in sorted(sources)
    ]
    version = _version(files)
    base = f"{prefix}/{version}" if prefix else version
    uploaded = sum(_upload(client, bucket, f"{base}/{f.path}", sources[f.path], f.sha256) for f in files)
    manifest_key = f"{base}/{MANIFEST}"
    entries = [{"key": f"{base}/{f.path}", "path": f.path, "size": f.size, "sha256": f.sha256} for f in files]
    _put_json(client, bucket, manifest_key, {"version": version, "files": entries})
    latest_key = f"{prefix}/{LATEST}" if prefix else LATEST
    _put_json(client, bucket, latest_key, {"version": version, "manifest": manifest_key})
    return {
        "manifest": f"s3://{bucket}/{manifest_key}",
        "latest": f"s3://{bucket}/{latest_key}",
        "version": version,
        "files": len(files),
        "uploaded": uploaded,
    }

"""Publishing reports and models to an S3 bucket, each object with its sha256 and a manifest written last.

Publishing is all-or-nothing for readers: every object is uploaded with its sha256 in its metadata and
checked after upload, and `manifest.json` (every file's key, size and sha256) is written last, so a
manifest never names an object that is not there whole. Multipart uploads that fail are aborted by
boto3's transfer manager. Objects whose sha256 already matches are not uploaded again.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import EcgCrnnError
from .hashing import sha256_file
from .s3 import describe_client_error, split_s3_url

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class PublishedFile:
    key: str
    size: int
    sha256: str
    uploaded: bool


def _files(paths: list[Path]) -> list[Path]:
    out = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file())
        elif p.is_file():
            out.append(p)
        else:
            raise EcgCrnnError(f"{p}: no such file or directory to publish")
    return out


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


def publish(paths: list[Path], dest: str, client, root: Path | None = None) -> dict:
    """Upload files and directories under s3://bucket/prefix/, keys relative to `root` (default: cwd)."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = split_s3_url(dest)
    root = Path(root or Path.cwd()).resolve()
    published: list[PublishedFile] = []
    for f in _files([Path(p) for p in paths]):
        try:
            rel = f.resolve().relative_to(root).as_posix()
        except ValueError:
            rel = f.name
        key = f"{prefix}/{rel}" if prefix else rel
        digest, size = sha256_file(f), f.stat().st_size
        where = f"s3://{bucket}/{key}"
        try:
            if _remote_sha(client, bucket, key) == digest:
                published.append(PublishedFile(key, size, digest, uploaded=False))
                continue
            client.upload_file(str(f), bucket, key, ExtraArgs={"Metadata": {"sha256": digest}})
            if _remote_sha(client, bucket, key) != digest:
                raise EcgCrnnError(f"{where}: the stored object's sha256 differs from {f}'s after upload")
        except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
            raise EcgCrnnError(describe_client_error(exc, where)) from None
        print(f"publish: {f} -> {where}", file=sys.stderr)
        published.append(PublishedFile(key, size, digest, uploaded=True))
    manifest = {"files": [{"key": p.key, "size": p.size, "sha256": p.sha256} for p in published]}
    manifest_key = f"{prefix}/{MANIFEST}" if prefix else MANIFEST
    try:
        client.put_object(
            Bucket=bucket,
            Key=manifest_key,
            Body=json.dumps(manifest, indent=2).encode(),
            ContentType="application/json",
        )
    except (ClientError, BotoCoreError) as exc:
        raise EcgCrnnError(describe_client_error(exc, f"s3://{bucket}/{manifest_key}")) from None
    return {
        "manifest": f"s3://{bucket}/{manifest_key}",
        "files": len(published),
        "uploaded": sum(p.uploaded for p in published),
    }

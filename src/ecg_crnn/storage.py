"""S3 through boto3: clients from the usual AWS credential sources, and publishing results to a bucket.

Credentials are never passed around or printed: boto3 reads them from the environment
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), a profile (AWS_PROFILE) or an instance role, and every error
message here is built from the error code and the bucket/key only.

Publishing is all-or-nothing for readers: every object is uploaded with its sha256 in its metadata and
checked after upload, and `manifest.json` (every file's key, size and sha256) is written last, so a
manifest never names an object that is not there whole. Multipart uploads that fail are aborted by
boto3's transfer manager. Objects whose sha256 already matches are not uploaded again.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from .data.checksums import sha256_file
from .errors import EcgCrnnError

MANIFEST = "manifest.json"
# What S3 error codes mean to a user, without echoing anything from the request.
HINTS = {
    "InvalidAccessKeyId": "the access key is not known to the server (check AWS_ACCESS_KEY_ID or the profile)",
    "SignatureDoesNotMatch": "the secret key does not match the access key (check AWS_SECRET_ACCESS_KEY)",
    "AccessDenied": "access denied by the server for these credentials",
    "NoSuchBucket": "no such bucket",
    "NoSuchKey": "no such object",
    "404": "no such object",
    "403": "access denied",
    "UnsupportedAlgorithm": "the server requires signed requests (set s3_unsigned: false and credentials)",
}


def describe_client_error(exc: Exception, where: str) -> str:
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import ClientError, NoCredentialsError

    if isinstance(exc, S3UploadFailedError) and exc.__context__ is not None:
        exc = exc.__context__  # boto3's transfer manager wraps the S3 error it got

    if isinstance(exc, NoCredentialsError):
        return f"{where}: no AWS credentials found (environment, profile or instance role)"
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        return f"{where}: {code}: {HINTS.get(code, 'request failed')}"
    return f"{where}: {type(exc).__name__}: {exc}"


def s3_client(
    endpoint_url: str | None = None, unsigned: bool = False, retries: int = 3, timeout_s: float = 60.0
):
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": retries + 1, "mode": "standard"},
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        max_pool_connections=64,
        **({"signature_version": UNSIGNED} if unsigned else {}),
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


def split_s3_url(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise EcgCrnnError(f"{url!r} is not an s3://bucket/prefix URL")
    return parsed.netloc, parsed.path.strip("/")


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


def endpoint_from_env(explicit: str | None) -> str | None:
    """An explicit endpoint, else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL as boto3 itself reads them."""
    return explicit or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")

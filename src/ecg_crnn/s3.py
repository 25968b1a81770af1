"""S3 through boto3: clients from the usual AWS credential sources, and what S3 errors mean to a user.

Credentials are never passed around or printed: boto3 reads them from the environment
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), a profile (AWS_PROFILE) or an instance role, and every error
message here is built from the error code and the bucket/key only. Used by the download's S3 source and by
publishing.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from .errors import EcgCrnnError

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


def endpoint_from_env(explicit: str | None) -> str | None:
    """An explicit endpoint, else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL as boto3 itself reads them."""
    return explicit or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")

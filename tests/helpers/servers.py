"""Real servers on 127.0.0.1 for the tests: HTTP (a PhysioNet stand-in), S3 (`rclone serve s3`), and waiting for
one to answer."""

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .paths import VENV_BIN

S3_KEY, S3_SECRET = "ecgcrnntestkey", "ecgcrnn-test-secret-do-not-log"
PREFECT_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_LOGGING_LEVEL": "INFO",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
            if resp.status == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


@contextlib.contextmanager
def http_server(
    root: Path, delay: float = 0.0, misbehave: dict[str, str] | None = None, trickle_s: float = 0.5
):
    """A real HTTP server process on 127.0.0.1 serving `root`; yields its base URL. `misbehave` maps paths
    ("/SHA256SUMS.txt") to how a hostile mirror answers them (tests/http_server.py lists the modes)."""
    script = Path(__file__).resolve().parents[1] / "http_server.py"
    cmd = [sys.executable, str(script), str(root), "--delay", str(delay), "--trickle-s", str(trickle_s)]
    for path, mode in (misbehave or {}).items():
        cmd += ["--misbehave", f"{path}={mode}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class S3Server:
    """`rclone serve s3` on 127.0.0.1: a real S3 API over a directory (top-level folders are buckets)."""

    def __init__(self, root: Path, auth: bool = True, key: str = S3_KEY, secret: str = S3_SECRET):
        self.root, self.auth, self.key, self.secret = root, auth, key, secret
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        cmd = [
            str(Path(VENV_BIN) / "rclone"),
            "serve",
            "s3",
            "--addr",
            f"127.0.0.1:{self.port}",
            str(self.root),
        ]
        if self.auth:
            cmd[-1:-1] = ["--auth-key", f"{self.key},{self.secret}"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("rclone serve s3 did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
            region_name="us-east-1",
        )


def prefect_artifact(key: str, env: dict) -> str:
    """The latest artifact of `key` on the Prefect server `env` points at, as the server holds it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}),
        get_client(sync_client=True) as client,
    ):
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    assert found, f"no artifact {key!r}"
    return str(found[0].data)

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ecg_crnn.data.synthetic import write_synthetic

REPO = Path(__file__).resolve().parents[1]
SHARED_PTBXL = REPO.parent / "shared" / "ptbxl"
VENV_BIN = str(Path(sys.executable).parent)

# Subprocesses (ecg-crnn, dvc) must come from this interpreter's environment even when it is not activated.
os.environ["PATH"] = VENV_BIN + os.pathsep + os.environ.get("PATH", "")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


@pytest.fixture(scope="session")
def shared_ptbxl() -> Path:
    if not (SHARED_PTBXL / "ptbxl_database.csv").is_file():
        pytest.skip(f"real PTB-XL subset not found at {SHARED_PTBXL}")
    return SHARED_PTBXL


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    """A small synthetic PTB-XL (read-only by convention: copy it before changing anything)."""
    out = tmp_path_factory.mktemp("synthetic") / "ptbxl"
    write_synthetic(out, 300, seed=1, progress=False)
    return out


@pytest.fixture
def synthetic_copy(synthetic_dir, tmp_path) -> Path:
    out = tmp_path / "ptbxl"
    shutil.copytree(synthetic_dir, out)
    return out


@contextlib.contextmanager
def http_server(root: Path, delay: float = 0.0):
    """A real HTTP server process on 127.0.0.1 serving `root`; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("http_server.py")), str(root), "--delay", str(delay)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def write_params(tmp_path):
    """Write a params file from the repository's params.yaml with `overrides` ({"section.key": value})."""

    def write(overrides: dict, path: Path | None = None) -> Path:
        params = yaml.safe_load((REPO / "params.yaml").read_text())
        for dotted, value in overrides.items():
            section, key = dotted.split(".", 1)
            params.setdefault(section, {})[key] = value
        path = path or tmp_path / "params.yaml"
        path.write_text(yaml.safe_dump(params, sort_keys=False))
        return path

    return write


@pytest.fixture(scope="session")
def prepared(tmp_path_factory):
    """Filtered and segmented synthetic data (600 records), ready for training."""
    from ecg_crnn.config import DataSettings, FilterSettings, SegmentSettings
    from ecg_crnn.data.filtering import run_filter
    from ecg_crnn.data.segment import run_segment

    root = tmp_path_factory.mktemp("prepared")
    write_synthetic(root / "raw", 600, seed=2, progress=False)
    run_filter(root / "raw", root / "filtered", DataSettings(), FilterSettings(), progress=False)
    run_segment(root / "filtered", root / "segmented", SegmentSettings())
    return root


# Settings that keep a training run to seconds on 2 CPU cores.
SMALL = {
    "models.channels": [16, 16, 32, 32],
    "models.hidden": 16,
    "train.batch_size": 32,
    "evaluate.bootstrap": 50,
    "evaluate.latency_runs": 3,
}


GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}


def run(cmd, cwd, check=True):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **GIT_ENV})
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def train_cmd(params, prepared, out, resume, arch="cnn_bilstm1", cli=("ecg-crnn",)) -> list[str]:
    """`ecg-crnn train ARCH` at 2.5 s, seed 0, on the `prepared` data (`cli` swaps the command, e.g. `python -m`)."""
    return [
        *cli,
        "--params",
        str(params),
        "train",
        arch,
        "--window",
        "2.5",
        "--seed",
        "0",
        "--filtered",
        str(prepared / "filtered"),
        "--segmented",
        str(prepared / "segmented"),
        "--out",
        str(out),
        "--resume-dir",
        str(resume),
    ]


def kill_after_first_checkpoint(cmd: list[str], resume: Path, seconds: float, grace: float) -> None:
    """Start a training command and SIGKILL it `grace` s after its first checkpoint appears in `resume`:
    part-way through the run, with no chance to clean up."""
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (resume / "checkpoint.pt").exists():
        time.sleep(0.02)
    time.sleep(grace)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def start_workers(pool: str, env: dict, n: int = 2) -> list[subprocess.Popen]:
    """`n` Prefect process workers on `pool`, one flow run at a time each, in their own process groups (to kill)."""
    return [
        subprocess.Popen(
            [os.path.join(VENV_BIN, "prefect"), "worker", "start", "--pool", pool, "--limit", "1"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(n)
    ]


def make_project(root: Path) -> Path:
    """The project's pipeline files in a fresh git + DVC repository at `root`."""
    root.mkdir(parents=True)
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(REPO / ".dvc", root / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache"))
    (root / ".gitignore").write_text("/data/\n/.resume/\n")
    run(["git", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "init"], root)
    return root


@pytest.fixture
def project(tmp_path):
    """The project's pipeline files in a fresh git + DVC repository."""
    return make_project(tmp_path / "project")


# The small grid of the study tests: 2 architectures x 2 windows x 2 seeds, tiny models, 3 epochs (long
# enough for the pool test to kill a worker between a run's first checkpoint and its end).
GRID = {
    **SMALL,
    "train.epochs": 3,
    "study.architectures": ["cnn", "cnn_bilstm1"],
    "study.reference": "cnn_bilstm1",
    "study.windows": [2.5, 10],
    "train.seeds": [0, 1],
}


def set_all(root: Path, overrides: dict) -> None:
    for dotted, value in overrides.items():
        set_params(root, **{dotted.replace(".", "__", 1): value})


def lock_hashes(root: Path) -> dict[str, str]:
    """path -> md5 of every output dvc.lock records."""
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    return {o["path"]: o["md5"] for st in lock["stages"].values() for o in st.get("outs", [])}


@pytest.fixture(scope="session")
def local_grid(tmp_path_factory, synthetic_dir):
    """The small grid reproduced with a local `dvc repro` (the embedded default), once per session. Gives the
    project, dvc.lock's output hashes right after the run (tests may go on to change it), and its output."""
    root = make_project(tmp_path_factory.mktemp("local-grid") / "project")
    set_params(root, download__source=str(synthetic_dir))
    set_all(root, GRID)
    repro = run(["dvc", "repro"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "baseline study"], root)
    return root, lock_hashes(root), repro.stdout + repro.stderr


def set_params(root, **overrides):
    params = yaml.safe_load((root / "params.yaml").read_text())
    for dotted, value in overrides.items():
        section, key = dotted.split("__")
        params[section][key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


S3_KEY, S3_SECRET = "ecgcrnntestkey", "ecgcrnn-test-secret-do-not-log"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """`rclone serve s3` on 127.0.0.1: a real S3 API over a directory (top-level folders are buckets)."""

    def __init__(self, root: Path, auth: bool = True):
        self.root, self.auth = root, auth
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        import socket
        import time

        cmd = [
            str(Path(VENV_BIN) / "rclone"),
            "serve",
            "s3",
            "--addr",
            f"127.0.0.1:{self.port}",
            str(self.root),
        ]
        if self.auth:
            cmd[-1:-1] = ["--auth-key", f"{S3_KEY},{S3_SECRET}"]
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
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
            region_name="us-east-1",
        )


@pytest.fixture
def s3(tmp_path, monkeypatch):
    """A real S3-compatible server with credentials, which the environment hands to boto3 (and DVC)."""
    root = tmp_path / "s3root"
    root.mkdir()
    server = S3Server(root).start()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield server
    server.stop()


PREFECT_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_LOGGING_LEVEL": "INFO",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant: a process worker starts each flow run in a session of its
    own, so killing the worker's process group alone would leave the run going."""
    import psutil

    parent = psutil.Process(pid)
    for proc in [*parent.children(recursive=True), parent]:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGKILL)


def stop_group(proc: subprocess.Popen, grace: float = 20) -> None:
    """Stop a process started with start_new_session=True and its children: SIGINT (Prefect's servers and
    workers stop on it, not on SIGTERM), then SIGKILL after `grace` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _wait_http(url: str, seconds: float) -> None:
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
            if resp.status == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """A real Prefect server on 127.0.0.1 (its own SQLite database); yields the environment that points
    clients, workers and flows at it."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = {**os.environ, **PREFECT_ENV, "PREFECT_HOME": str(home)}
    proc = subprocess.Popen(
        [str(Path(VENV_BIN) / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/api/health", 120)
        yield {**env, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    finally:
        stop_group(proc)


def _pg_bin(name: str) -> str | None:
    import glob

    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL on a loopback port, initialized as the `postgres` user (initdb refuses root);
    yields a SQLAlchemy URL of an empty database."""
    import pwd
    import tempfile

    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries not installed (.ci/run installs them)")
    user = pwd.getpwnam("postgres")
    root = Path(tempfile.mkdtemp(prefix="ecg-crnn-pg-"))
    os.chown(root, user.pw_uid, user.pw_gid)
    data = root / "data"
    port = free_port()

    def as_postgres(cmd: list[str]) -> None:
        subprocess.run(
            ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(cmd)], check=True, capture_output=True
        )

    as_postgres([initdb, "-D", str(data), "--auth=trust", "-U", "postgres"])
    as_postgres(
        [
            pg_ctl,
            "-D",
            str(data),
            "-w",
            "-l",
            str(root / "log"),
            "-o",
            f"'-p {port} -k {root} -c listen_addresses=127.0.0.1'",
            "start",
        ]
    )
    try:
        import sqlalchemy

        engine = sqlalchemy.create_engine(
            f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres", isolation_level="AUTOCOMMIT"
        )
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("CREATE DATABASE optuna"))
        engine.dispose()
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/optuna"
    finally:
        as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(root, ignore_errors=True)

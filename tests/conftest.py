"""The tests' fixtures; what they are built from lives in tests/helpers/, which tests import as a package."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ecg_crnn.data.synthetic import write_synthetic
from ecg_crnn.shared_data import CACHE_ENV

from .helpers.params import GRID, set_params
from .helpers.params import write_params as _write_params
from .helpers.paths import SHARED_PTBXL, VENV_BIN
from .helpers.processes import run, stop_group
from .helpers.project import lock_hashes, make_project, prepare
from .helpers.servers import PREFECT_ENV, S3_KEY, S3_SECRET, S3Server, free_port, wait_http


@pytest.fixture(scope="session", autouse=True)
def data_cache(tmp_path_factory) -> Path:
    """The machine-wide cache of standardized splits (shared_data.py), for this session only: the tests and the
    commands they start never write into the user's own cache."""
    root = tmp_path_factory.mktemp("data-cache")
    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(root)
    yield root
    if before is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = before


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


@pytest.fixture
def write_params(tmp_path):
    """Write a params file from the repository's params.yaml with `overrides` ({"section.key": value})."""

    def write(overrides: dict, path: Path | None = None) -> Path:
        return _write_params(path or tmp_path / "params.yaml", overrides)

    return write


@pytest.fixture(scope="session")
def prepared(tmp_path_factory):
    """Filtered and segmented synthetic data (600 records), ready for training."""
    root = tmp_path_factory.mktemp("prepared")
    write_synthetic(root / "raw", 600, seed=2, progress=False)
    return prepare(root / "raw", root)


@pytest.fixture
def project(tmp_path):
    """The project's pipeline files in a fresh git + DVC repository."""
    return make_project(tmp_path / "project")


@pytest.fixture(scope="session")
def local_grid(tmp_path_factory, synthetic_dir):
    """The small grid reproduced with a local `dvc repro` (the embedded default), once per session. Gives the
    project, dvc.lock's output hashes right after the run (tests may go on to change it), and its output."""
    root = make_project(tmp_path_factory.mktemp("local-grid") / "project")
    set_params(root, {"download.source": str(synthetic_dir), **GRID})
    repro = run(["dvc", "repro"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "baseline study"], root)
    return root, lock_hashes(root), repro.stdout + repro.stderr


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
        wait_http(f"http://127.0.0.1:{port}/api/health", 120)
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

import contextlib
import os
import shutil
import subprocess
import sys
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

"""`dvc repro segment` end to end, as a user runs it, in a scratch copy of the project."""

import json
import os
import shutil
import subprocess

import pytest
import yaml

from .conftest import REPO

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


@pytest.fixture
def project(tmp_path):
    """The project's pipeline files in a fresh git + DVC repository."""
    root = tmp_path / "project"
    root.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(REPO / ".dvc", root / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache"))
    (root / ".gitignore").write_text("/data/\n")
    run(["git", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "init"], root)
    return root


def set_params(root, **overrides):
    params = yaml.safe_load((root / "params.yaml").read_text())
    for dotted, value in overrides.items():
        section, key = dotted.split("__")
        params[section][key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_repro_on_synthetic_then_status_clean_and_experiment(project, synthetic_dir):
    set_params(project, download__source=str(synthetic_dir))
    run(["dvc", "repro", "segment"], project)
    assert "Data and pipelines are up to date" in run(["dvc", "status"], project).stdout
    split = (project / "data/segmented/split.csv").read_text().splitlines()
    assert len(split) == 1 + 300
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"download", "filter", "segment"}
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "baseline"], project)

    # A changed parameter re-runs only what depends on it, as an experiment beside the baseline.
    out = run(["dvc", "exp", "run", "-S", "segment.window_s=2.0"], project).stdout
    assert "Stage 'download' didn't change" in out and "Stage 'filter' didn't change" in out
    assert "Running stage 'segment'" in out
    shown = json.loads(run(["dvc", "exp", "show", "--json"], project).stdout)
    windows = [
        exp["data"]["params"]["params.yaml"]["data"]["segment"]["window_s"]
        for commit in shown
        for exp in [commit, *[e for run_ in (commit.get("experiments") or []) for e in run_["revs"]]]
    ]
    assert 2.5 in windows and 2.0 in windows


def test_repro_on_real_subset_restricted_to_present(project, shared_ptbxl):
    set_params(project, download__source=str(shared_ptbxl))
    failed = run(["dvc", "repro", "segment"], project, check=False)
    assert failed.returncode != 0
    assert "set filter.records: present" in failed.stderr + failed.stdout
    set_params(project, filter__records="present")
    run(["dvc", "repro", "segment"], project)
    assert "Data and pipelines are up to date" in run(["dvc", "status"], project).stdout
    classes = json.loads((project / "data/filtered/classes.json").read_text())
    assert classes["records"] == 477 and classes["task"] == "subdiagnostic"

"""The flows' hardening, without a server: a flow parameter never becomes a git option, a transport that runs
commands or a path; the grid's snapshot holds no untracked file and no credential and its refs are deleted;
every command is bounded in time and redacted; a run stops when its flow run is no longer Running; the search's
coordinator crashes a run whose heartbeats stopped instead of waiting for ever."""

import importlib
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from uuid import uuid4

import psutil
import pytest

from ecg_crnn.errors import EcgCrnnError
from ecg_crnn.grid.snapshot import drop, snapshot

from .helpers.params import params
from .helpers.paths import REPO
from .helpers.processes import GIT_ENV


def _flows(name: str):
    sys.path.insert(0, str(REPO / "flows"))  # the flow scripts import their sibling `orchestration`
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(REPO / "flows"))


grid = _flows("grid")
orchestration = _flows("orchestration")
search = _flows("search")
retrain = _flows("retrain")

REF = "refs/ecg-crnn/grid/20260101T000000-abcdef"
COMMIT = "0" * 40
STAGE = "evaluate@cnn_bilstm1-2.5-1.0-0-0"
LOG = logging.getLogger("test")


def _git(*args, cwd):
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env={**os.environ, **GIT_ENV}
    ).stdout


# ---- parameters in their exact shapes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("git_url", "--upload-pack=touch pwned"),
        ("git_url", "-oProxyCommand=touch pwned"),
        ("git_url", "ext::sh -c touch% pwned"),
        ("git_url", "fd::3"),
        ("git_url", "git://example.org/repo"),  # plaintext, unauthenticated
        ("git_url", "https://ghp_token@github.com/org/repo.git"),  # a credential Prefect would store
        ("ref", "--orphan"),
        ("ref", "refs/heads/main"),
        ("ref", "refs/ecg-crnn/grid/../../heads/main"),
        ("commit", "HEAD"),
        ("commit", "-c"),
        ("stage", "evaluate@../../../etc-2.5-1.0-0-0"),
        ("stage", "train@cnn-2.5-1.0-0-0"),
        ("stage", "evaluate@cnn-2.5-0"),  # the matrix has five axes
        ("stage", "evaluate@cnn_lstm9-2.5-1.0-0-0"),  # no such architecture
        ("stage", "evaluate@cnn-2.5-1.0-0-0; rm -rf ~"),
        ("stage", "--force"),
        ("timeout_s", -1),
        ("jobs_per_gpu", 0),
        ("jobs_per_gpu", "2; rm -rf ~"),
    ],
)
def test_a_bad_run_parameter_is_refused_by_name(name, value):
    good = {
        "git_url": "https://git.example/org/ecg-crnn.git",
        "ref": REF,
        "commit": COMMIT,
        "stage": STAGE,
        "timeout_s": 60,
        "jobs_per_gpu": 2,
    }
    grid.check_run_parameters(**good)  # the good ones pass
    with pytest.raises(EcgCrnnError, match=f"refused parameters: {name} ") as info:
        grid.check_run_parameters(**{**good, name: value})
    assert "ghp_token" not in str(info.value)


@pytest.mark.parametrize("url", ["--upload-pack=touch {pwned}", "ext::sh -c touch% {pwned}"])
def test_git_itself_never_runs_a_command_from_the_url(tmp_path, url):
    """Even past the check: the URL comes after `--`, and only the https, ssh and file transports are allowed."""
    pwned = tmp_path / "pwned"
    with pytest.raises(EcgCrnnError):
        grid._checkout(url.format(pwned=pwned), REF, COMMIT, tmp_path / "checkout")
    assert not pwned.exists()


# ---- the snapshot -------------------------------------------------------------------------------------------


@pytest.fixture
def workspace(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git("init", "-q", cwd=repo)
    (repo / "dvc.yaml").write_text("stages: {}\n")
    (repo / "params.yaml").write_text("train: {}\n")
    (repo / "code.py").write_text("v = 1\n")
    (repo / ".gitignore").write_text("/ignored/\n")
    _git("add", "-A", cwd=repo)
    _git("commit", "-qm", "first", cwd=repo)
    (repo / "code.py").write_text("v = 2\n")  # an edit the grid must train
    (repo / "dvc.lock").write_text("schema: '2.0'\n")  # needed, untracked
    (repo / ".env").write_text("AWS_SECRET_ACCESS_KEY=hunter2\n")  # never
    (repo / "notes.txt").write_text("private\n")
    (repo / "ignored").mkdir()
    (repo / "ignored" / "big.bin").write_text("x")
    return repo


def test_the_snapshot_holds_tracked_files_and_what_the_grid_needs_and_is_deleted_after(
    workspace, tmp_path, caplog
):
    remote = tmp_path / "remote.git"
    _git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    head, status = _git("rev-parse", "HEAD", cwd=workspace), _git("status", "--porcelain", cwd=workspace)
    snap = snapshot(workspace, str(remote))
    url, ref, commit = snap.url, snap.ref, snap.commit
    files = set(_git("ls-tree", "-r", "--name-only", commit, cwd=workspace).split())
    assert files == {".gitignore", "code.py", "dvc.yaml", "dvc.lock", "params.yaml"}
    assert _git("show", f"{commit}:code.py", cwd=workspace) == "v = 2\n"
    warning = snap.left_out_warning()
    assert ".env" in warning and "notes.txt" in warning and "hunter2" not in warning
    assert "big.bin" not in warning  # ignored files are not even named
    assert _git("rev-parse", "HEAD", cwd=workspace) == head  # HEAD, the branch and the index as they were
    assert _git("status", "--porcelain", cwd=workspace) == status
    assert url == str(remote) and _git("ls-remote", str(remote), cwd=tmp_path).split()[0] == commit
    assert drop(workspace, ref, str(remote)) == []
    assert _git("ls-remote", str(remote), cwd=tmp_path) == ""
    assert _git("for-each-ref", "refs/ecg-crnn", cwd=workspace) == ""


def test_a_remote_whose_url_holds_a_token_is_refused_before_anything_is_pushed(workspace):
    _git("remote", "add", "origin", "https://ghp_hunter2@git.example/org/repo.git", cwd=workspace)
    with pytest.raises(EcgCrnnError, match="credential helper") as info:
        snapshot(workspace, "origin")
    assert "hunter2" not in str(info.value)
    assert _git("for-each-ref", "refs/ecg-crnn", cwd=workspace) == ""


# ---- bounded, redacted commands -------------------------------------------------------------------------


def test_a_command_past_its_time_is_stopped_with_its_children(tmp_path):
    marker = f"sleep {4242 + os.getpid() % 1000}"
    with pytest.raises(EcgCrnnError, match="did not finish within 0.5 s"):
        orchestration.run(["sh", "-c", f"{marker} & {marker}; wait"], tmp_path, timeout_s=0.5)
    left = [p for p in psutil.process_iter(["cmdline"]) if " ".join(p.info["cmdline"] or []) == marker]
    assert left == []


def test_a_failing_command_is_named_without_its_secrets(tmp_path):
    cmd = ["sh", "-c", "echo 'fatal: https://u:pw1@h/r' >&2; exit 3", "https://u:pw2@x/"]
    with pytest.raises(EcgCrnnError, match=r"failed \(3\)") as info:
        orchestration.run(cmd, tmp_path)
    assert "pw1" not in str(info.value) and "pw2" not in str(info.value) and "u:***@h/r" in str(info.value)


def test_a_run_stops_itself_when_its_flow_run_is_no_longer_running():
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    states = iter(["RUNNING", "RUNNING", "CRASHED"])
    dog = grid.Watchdog(proc, deadline_s=3600, every_s=0.01, state=lambda: next(states))
    dog.start()
    dog.join(timeout=30)
    assert proc.poll() is not None and "CRASHED" in dog.reason


def test_a_run_that_cannot_reach_the_server_goes_on_until_its_deadline():
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)

    def unreachable():
        raise ConnectionError("the Prefect server is gone for a moment")

    dog = grid.Watchdog(proc, deadline_s=0.2, every_s=0.05, state=unreachable)
    dog.start()
    dog.join(timeout=30)
    assert proc.poll() is not None and "did not finish within 0.2 s" in dog.reason


def test_retraining_targets_are_stage_names_never_options(tmp_path):
    with pytest.raises(EcgCrnnError, match="not stage names"):
        retrain.dvc_repro.fn(str(tmp_path), ["--force-downstream", "train@cnn-2.5-0"], 60)


# ---- the search's coordinator watches heartbeats --------------------------------------------------------


class _Client:
    """Prefect's client as the coordinator uses it: two trial runs that went silent an hour ago."""

    def __init__(self):
        started = datetime.now(UTC) - timedelta(hours=1)
        self.runs = {
            i: SimpleNamespace(id=i, start_time=started, state="RUNNING") for i in (uuid4(), uuid4())
        }

    def read_flow_runs(self, flow_run_filter):
        return [
            SimpleNamespace(
                id=r.id, start_time=r.start_time, state=SimpleNamespace(type=SimpleNamespace(value=r.state))
            )
            for r in self.runs.values()
        ]

    def read_events(self, filter, limit):
        return SimpleNamespace(events=[])  # no heartbeat since the start: the workers died

    def set_flow_run_state(self, run_id, state, force):
        self.runs[run_id].state = state.type.value


def test_the_search_crashes_runs_whose_heartbeats_stopped_instead_of_waiting_for_ever(monkeypatch):
    client = _Client()
    rounds = []

    def sleep(seconds):
        rounds.append(seconds)
        if len(rounds) > 50:
            raise AssertionError("still waiting on runs whose workers are gone")

    monkeypatch.setattr(search.time, "sleep", sleep)
    with pytest.raises(EcgCrnnError, match=r"every trial run ended \(CRASHED, CRASHED\) with 3 of 20"):
        search.wait_for_trials(
            client,
            list(client.runs),
            params({"search.mode": "pool"}),
            lambda: (3, 20),
            LOG,  # never reached
        )
    assert [r.state for r in client.runs.values()] == ["CRASHED", "CRASHED"]


def test_a_workers_log_lines_are_redacted(tmp_path, monkeypatch, caplog):
    """What a worker's `dvc repro` prints goes to Prefect's logs, which the server stores: redacted first."""
    real = subprocess.Popen
    script = "echo 'pulling from https://u:hunter2@dvc.example/store'; echo 'got https://b.example/k?X-Amz-Signature=hunter3 ok'"
    monkeypatch.setattr(grid.subprocess, "Popen", lambda cmd, **kw: real(["sh", "-c", script], **kw))
    monkeypatch.setattr(grid, "create_progress_artifact", lambda **kw: None)
    monkeypatch.setattr(grid, "update_progress_artifact", lambda *a, **kw: None)
    with caplog.at_level(logging.INFO):
        grid._reproduce(STAGE, tmp_path, dict(os.environ), 60, 1, lambda: "RUNNING", LOG)
    assert "u:***@dvc.example/store" in caplog.text
    assert "hunter2" not in caplog.text and "hunter3" not in caplog.text

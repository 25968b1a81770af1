"""The runner's parts on their own: the machine split into slots, slots claimed across processes, the snapshot
(tracked files and the pipeline's files, never an untracked one), orphaned jobs found by their working directory,
and the progress read from a real training run's output."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from ecg_crnn.errors import EcgCrnnError
from ecg_crnn.grid import progress, workspaces
from ecg_crnn.grid.runner import kill_jobs_under
from ecg_crnn.grid.slots import Slot, claim, describe, plan
from ecg_crnn.grid.snapshot import snapshot, snapshot_tree
from ecg_crnn.resources import GPU_MEMORY_ENV, gpu_memory_fraction

from .helpers.params import SMALL, params
from .helpers.paths import REPO
from .helpers.processes import run


def test_cpu_jobs_are_capped_at_cores_over_threads():
    assert [s.name for s in plan(None, 1, 2, 0)] == ["cpu0", "cpu1"]
    assert len(plan(8, 1, 2, 0)) == 2  # --jobs above cores / threads runs at most that many
    assert len(plan(8, 2, 16, 0)) == 8
    assert len(plan(None, 4, 2, 0)) == 1  # a job always runs, even with more threads than cores
    assert plan(None, 1, 2, 0)[0].env() == {"CUDA_VISIBLE_DEVICES": ""}


def test_gpu_jobs_are_bound_one_gpu_each_with_a_share_of_its_memory():
    slots = plan(3, 1, 16, 2)  # --jobs 3 per GPU on 2 GPUs
    assert len(slots) == 6
    assert [s.gpu for s in slots[:2]] == [0, 1]  # the first jobs go to different GPUs
    assert sorted(s.gpu for s in slots) == [0, 0, 0, 1, 1, 1]
    env = slots[1].env()
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert 3 * float(env[GPU_MEMORY_ENV]) < 1  # the three jobs' shares fit in the device with a margin
    assert gpu_memory_fraction(env) == pytest.approx(0.3, abs=1e-4)
    assert "more threads than the 4 cores" in describe(plan(4, 1, 4, 2), 1, 4)
    assert "more threads" not in describe(plan(2, 1, 4, 2), 1, 4)


def test_a_bad_memory_share_is_named():
    for bad in ("0", "1.5", "half"):
        with pytest.raises(EcgCrnnError, match=GPU_MEMORY_ENV):
            gpu_memory_fraction({GPU_MEMORY_ENV: bad})
    assert gpu_memory_fraction({}) is None


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from ecg_crnn.grid.slots import Slot, claim
    with claim([Slot(0), Slot(1)], Path(sys.argv[1])) as slot:
        print(slot.name, flush=True)
        time.sleep(600)
    """
)


def test_slots_are_claimed_across_processes_and_freed_by_a_dying_holder(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout.readline().strip() == "cpu0"  # another worker's run holds the first slot
        with claim([Slot(0), Slot(1)], tmp_path) as mine:
            assert mine.name == "cpu1"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with claim([Slot(0), Slot(1)], tmp_path) as mine:
        assert mine.name == "cpu0"  # the killed holder's lock went with it


def _repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    for name, text in {
        "dvc.yaml": "stages: {}\n",
        "params.yaml": "a: 1\n",
        "code.py": "x = 1\n",
        "gone.py": "",
    }.items():
        (root / name).write_text(text)
    run(["git", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "init"], root)
    return root


def _files(root, tree):
    return dict(
        line.split("\t")[::-1] for line in run(["git", "ls-tree", "-r", tree], root).stdout.splitlines()
    )


def test_the_snapshot_holds_tracked_edits_and_the_lock_never_an_untracked_file(tmp_path):
    root = _repo(tmp_path)
    (root / "code.py").write_text("x = 2\n")  # an edit, not committed
    (root / "gone.py").unlink()  # a deletion
    (root / "dvc.lock").write_text("schema: '2.0'\n")  # the pipeline's lock, not yet tracked
    (root / "scratch.py").write_text("secret = 1\n")  # an untracked file
    head = run(["git", "rev-parse", "HEAD"], root).stdout
    status = run(["git", "status", "--porcelain"], root).stdout
    snap = snapshot(root, ref="refs/ecg-crnn/grid/test")
    files = _files(root, snap.commit)
    assert set(files) == {"dvc.yaml", "params.yaml", "code.py", "dvc.lock"}
    assert run(["git", "show", f"{snap.commit}:code.py"], root).stdout == "x = 2\n"
    assert run(["git", "rev-parse", "HEAD"], root).stdout == head  # HEAD, branch and index untouched
    assert run(["git", "status", "--porcelain"], root).stdout == status
    assert snapshot_tree(root) == run(["git", "rev-parse", f"{snap.commit}^{{tree}}"], root).stdout.strip()


def test_a_worktree_uses_the_users_cache_and_leaves_nothing_behind(tmp_path):
    root = _repo(tmp_path)
    (root / ".dvc").mkdir()
    (root / ".dvc" / "config").write_text("[core]\n    analytics = false\n")
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "dvc"], root)
    commit = run(["git", "rev-parse", "HEAD"], root).stdout.strip()
    where = workspaces.add(root, commit, tmp_path / "work" / "job", tmp_path / "cache")
    config = (where / ".dvc" / "config.local").read_text()
    assert f"dir = {tmp_path / 'cache'}" in config and "type = hardlink,copy" in config
    assert (where / "code.py").read_text() == "x = 1\n"
    assert workspaces.clear(root, tmp_path / "work") == 1  # as after a killed runner
    assert run(["git", "worktree", "list", "--porcelain"], root).stdout.count("worktree ") == 1


def test_orphaned_jobs_are_found_by_their_working_directory(tmp_path):
    inside, outside = tmp_path / "work" / "job", tmp_path / "elsewhere"
    inside.mkdir(parents=True)
    outside.mkdir()
    procs = [subprocess.Popen(["sleep", "600"], cwd=d) for d in (inside, outside)]
    try:
        assert kill_jobs_under(tmp_path / "work") == 1
        assert procs[0].wait(timeout=30) == -signal.SIGKILL
        assert procs[1].poll() is None  # a process elsewhere is left alone
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_progress_reads_the_epochs_a_real_training_run_prints(prepared, capsys):
    from ecg_crnn.dataset import load_study_data
    from ecg_crnn.training import train

    p = params({**SMALL, "train.epochs": 2, "train.patience": None})
    data = load_study_data(prepared / "filtered", prepared / "segmented", 2.5, splits=("train", "val"))
    train("cnn", data, p.models, p.train, 0, progress=True)
    err = capsys.readouterr().err
    assert progress.epoch(err) == (2, 2)
    log = f"Running stage 'train@cnn-2.5-1.0-0-0':\n{err}"
    assert progress.state(log) == "training, epoch 2/2"
    assert progress.state(log + "\nRunning stage 'evaluate@cnn-2.5-1.0-0-0':\n") == "evaluating"
    assert (
        progress.state("Stage 'train@cnn-2.5-1.0-0-0' is cached - skipping run, checking out outputs")
        == "restoring"
    )
    assert progress.outcome(log) == "trained"
    assert progress.outcome("Stage 'x' is cached - skipping run") == "restored from the run-cache"

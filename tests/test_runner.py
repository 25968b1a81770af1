"""The local runner, `ecg-crnn grid --jobs N`, on the small synthetic grid: two models at a time in worktrees that
share the project's DVC cache, then restored here from DVC's run-cache. It ends with the same model and evaluation
bytes as the serial `dvc repro` of the session's `local_grid` (one thread per training job in both) and a clean
`dvc status`; a runner SIGKILLed mid-grid, with its jobs, is completed by a second start, which restores what
finished and resumes what was part-way; a failing stage is named with its log."""

import json
import re
import subprocess
import time

from .helpers.params import GRID, set_params
from .helpers.processes import kill_tree, run
from .helpers.project import lock_hashes, make_project

# Wall-clock measurements: the one kind of output two runs cannot share (as in test_grid_flow.py).
TIMING = ("timing.json", "cost.json")


def _project(tmp_path, synthetic_dir, overrides: dict | None = None):
    root = make_project(tmp_path / "project")
    set_params(root, {"download.source": str(synthetic_dir), **GRID, **(overrides or {})})
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "the grid"], root)
    return root


def _same_bytes_as(local_hashes: dict, root) -> int:
    """Assert that every data, model and evaluation output of `root` equals the serial run's; returns how many."""
    hashes = lock_hashes(root)
    compared = [p for p in hashes if not p.startswith("reports") and not p.endswith(TIMING)]
    assert {p: hashes[p] for p in compared} == {p: local_hashes.get(p) for p in compared}
    return len(compared)


def _clean(root) -> None:
    assert "Data and pipelines are up to date" in run(["dvc", "status"], root).stdout
    assert run(["git", "worktree", "list", "--porcelain"], root).stdout.count("worktree ") == 1
    assert not run(["git", "for-each-ref", "refs/ecg-crnn"], root).stdout.strip()


def test_two_jobs_at_once_end_with_the_serial_runs_bytes(local_grid, synthetic_dir, tmp_path):
    _, local_hashes, _ = local_grid
    # The small grid at one window (4 models of the serial run, byte for byte): two at a time on 2 cores.
    root = _project(tmp_path, synthetic_dir, {"study.windows": [2.5]})
    done = run(["ecg-crnn", "grid", "--jobs", "2"], root)
    out = done.stdout + done.stderr
    assert "4 models to train and evaluate; 2 jobs at once, on CPU, 1 thread(s) each" in out
    assert "4 models trained side by side and restored here from DVC's run-cache, 0 trained here" in out
    assert any(line.count("[training") == 2 for line in out.splitlines()), "two models should train at once"
    assert (
        len(re.findall(r"Stage 'train@\S+' is cached - skipping run", out)) == 4
    )  # the final repro restored
    # data (PTB-XL, nstdb, filtered, segmented), bootstrap, models (model, timing), evaluations, robustness
    assert _same_bytes_as(local_hashes, root) == 4 + 1 + 4 * 2 + 4 + 4
    _clean(root)
    shown = json.loads(run(["dvc", "exp", "show", "--json"], root).stdout)
    workspace = next(e for e in shown if e.get("rev") == "workspace")
    metrics = workspace["data"]["metrics"]["reports/study.json"]["data"]
    assert set(metrics) >= {"best", "2.5s"}, metrics


def test_a_killed_runner_started_again_completes_the_grid(local_grid, synthetic_dir, tmp_path):
    _, local_hashes, _ = local_grid
    root = _project(tmp_path, synthetic_dir, {"study.architectures": ["cnn_bilstm1"]})
    log = tmp_path / "first.log"
    with open(log, "w") as out:
        first = subprocess.Popen(
            ["ecg-crnn", "grid", "--jobs", "2"], cwd=root, stdout=out, stderr=subprocess.STDOUT
        )
    part_way, deadline = [], time.monotonic() + 900
    while not part_way and time.monotonic() < deadline and first.poll() is None:
        # one model finished, and another one mid-training: its first checkpoint saved, the run not done
        if ": trained in" in log.read_text():
            part_way = list((root / ".resume").rglob("checkpoint.pt"))
        time.sleep(0.05)
    assert part_way, f"the runner was never seen mid-grid:\n{log.read_text()[-3000:]}"
    kill_tree(first.pid)  # the runner and every job under it, SIGKILL: no chance to clean up
    first.wait()
    assert all(p.is_file() for p in part_way)  # killed before those models finished
    again = run(["ecg-crnn", "grid", "--jobs", "2"], root)
    out = again.stdout + again.stderr
    assert "restored from the run-cache" in out  # what had finished is not trained again
    assert "trained, resumed a checkpoint" in out  # what was part-way goes on from its checkpoint
    assert "4 models trained side by side" in out and "0 trained here" in out
    assert _same_bytes_as(local_hashes, root) == 4 + 1 + 4 * 2 + 4 + 4
    _clean(root)


def test_a_failing_stage_is_named_with_its_log_and_the_others_finish(synthetic_dir, tmp_path):
    root = _project(tmp_path, synthetic_dir, {"study.architectures": ["cnn"], "study.reference": "cnn"})
    set_params(root, {"study.windows": [2.5]})
    stage = root / "src" / "ecg_crnn" / "stages" / "evaluate.py"
    # An edit the snapshot carries (a tracked file, not committed): the jobs run the snapshot's code.
    text = stage.read_text().replace(
        "    checkpoint = load_model_file(model_path)\n",
        "    checkpoint = load_model_file(model_path)\n"
        "    if key.seed == 1:\n        raise RuntimeError('planted failure of seed 1')\n",
    )
    stage.write_text(text)
    done = run(["ecg-crnn", "grid", "--jobs", "2"], root, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    log = root.resolve() / ".dvc/tmp/ecg-crnn-grid/logs/evaluate@cnn-2.5-1.0-0-1.log"
    assert f"1 of 2 models failed: evaluate@cnn-2.5-1.0-0-1 (log: {log})" in done.stderr
    assert "planted failure of seed 1" in log.read_text()
    assert "grid: evaluate@cnn-2.5-1.0-0-0: trained" in done.stdout  # the other model finished
    assert run(["git", "worktree", "list", "--porcelain"], root).stdout.count("worktree ") == 1

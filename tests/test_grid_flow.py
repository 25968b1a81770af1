"""The study's grid on a Prefect work pool, as issue-free as a local `dvc repro`: a real Prefect server on
127.0.0.1, a real S3-compatible server as the DVC remote, two process workers, one of them killed (with its
training process) mid-training. The stage is resubmitted, resumes its shared checkpoint on the other worker, and
the coordinator restores every stage from DVC's run-cache: the same files as the local run, and a clean status."""

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, LogFilter, LogFilterFlowRunId

from ecg_crnn.layout import RunKey
from ecg_crnn.stages.train import run_label

from .helpers.params import GRID, set_params
from .helpers.paths import REPO
from .helpers.processes import kill_tree, run, start_workers, stop_group
from .helpers.project import lock_hashes, make_project
from .helpers.servers import S3_KEY, S3_SECRET

# Wall-clock measurements: the one kind of output two runs cannot share.
TIMING = ("timing.json", "cost.json")


def _training_run(workers: list[subprocess.Popen], resume_root: Path):
    """(worker, the model's output directory, its checkpoint) of a training process that has saved its first
    epoch's checkpoint in the shared resume root and is still training; (None, None, None) if there is none now."""
    import torch

    by_pid = {w.pid: w for w in workers}
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if "train" not in cmd or "--out" not in cmd or not any("ecg-crnn" in c for c in cmd):
            continue
        out = cmd[cmd.index("--out") + 1]
        key = RunKey(
            cmd[cmd.index("train") + 1],
            float(cmd[cmd.index("--window") + 1]),
            int(cmd[cmd.index("--seed") + 1]),
            int(cmd[cmd.index("--rotation") + 1]),
            float(cmd[cmd.index("--fraction") + 1]),
        )
        label = run_label(key)
        found = list(
            resume_root.glob(f"{label}-*/checkpoint.pt")
        )  # the run's folder, named by its fingerprint
        try:
            if len(found) != 1 or torch.load(found[0], weights_only=True)["epoch"] != 1:
                continue
            worker = next((by_pid[p.pid] for p in proc.parents() if p.pid in by_pid), None)
        except (FileNotFoundError, RuntimeError, EOFError, psutil.NoSuchProcess):
            continue
        if worker is not None:
            return worker, Path(out), found[0]
    return None, None, None


def _logs_of(stage: str, env: dict) -> list[str]:
    """Every log line of every flow run named after `stage` (the first attempt and its resubmissions)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}),
        get_client(sync_client=True) as client,
    ):
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[stage])))
        return [
            log.message
            for r in runs
            for log in client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[r.id])), limit=200
            )
        ]


@pytest.mark.slow
def test_grid_on_a_pool_with_a_killed_worker_equals_a_local_repro(
    prefect_server, s3, synthetic_dir, local_grid, tmp_path
):
    local, local_hashes, _ = local_grid
    pool = make_project(tmp_path / "pool")
    set_params(pool, {"download.source": str(synthetic_dir)})
    set_params(
        pool,
        {
            **GRID,
            # one architecture of the small grid (4 models: enough for two workers, one killed mid-training);
            # its models are the local run's, byte for byte
            "study.architectures": ["cnn_bilstm1"],
            "grid.work_pool": "grid-test",
            "grid.resume_root": str(tmp_path / "shared-resume"),
            "grid.stale_after_s": 61,
            "grid.worker_timeout_s": 300,
        },
    )
    s3.client().create_bucket(Bucket="dvc")
    run(["dvc", "remote", "add", "-d", "store", "s3://dvc/ecg-crnn"], pool)
    run(["dvc", "remote", "modify", "store", "endpointurl", s3.endpoint], pool)
    run(["git", "add", "-A"], pool)
    run(["git", "commit", "-qm", "the grid, with an S3 remote"], pool)
    env = {
        **prefect_server,
        "AWS_ACCESS_KEY_ID": S3_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "PATH": os.environ["PATH"],
    }
    flow = [sys.executable, str(REPO / "flows" / "grid.py"), "--params", str(pool / "params.yaml")]
    deployed = subprocess.run([*flow, "--deploy"], cwd=pool, env=env, capture_output=True, text=True)
    assert deployed.returncode == 0, deployed.stderr
    workers = start_workers("grid-test", env)
    try:
        coordinator = subprocess.Popen(
            [*flow, "--repo", str(pool), "--workdir", str(tmp_path / "work")],
            cwd=pool,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        killed, deadline = None, time.monotonic() + 400
        while killed is None and time.monotonic() < deadline and coordinator.poll() is None:
            worker, out_dir, checkpoint = _training_run(workers, tmp_path / "shared-resume")
            if (
                worker is not None
            ):  # epoch 1 of 3 is saved and training goes on: kill that worker's whole tree
                kill_tree(worker.pid)
                killed = out_dir
            time.sleep(0.02)
        assert killed is not None, "no worker was seen mid-training"
        assert checkpoint.is_file()  # killed before it finished
        out, _ = coordinator.communicate(timeout=900)
        assert coordinator.returncode == 0, out[-5000:]
    finally:
        for w in workers:
            if w.poll() is None:
                stop_group(w)
    assert "1 resubmitted" in out and "0 trained here" in out, out[-2000:]
    assert "Data and pipelines are up to date" in run(["dvc", "status"], pool).stdout
    # The killed stage resumed its shared checkpoint on the other worker (models/WINDOWs/ARCH/fracF/rotR/seedS).
    window, arch, fraction, rotation, seed = killed.parts[-5:]
    stage = RunKey(
        arch,
        float(window.removesuffix("s")),
        int(seed.removeprefix("seed")),
        int(rotation.removeprefix("rot")),
        float(fraction.removeprefix("frac")),
    ).stage("evaluate")
    assert any("resuming after epoch" in line for line in _logs_of(stage, env)), stage
    # Same files as the local run: every output of the data, train, evaluate and robustness stages, byte for byte.
    pool_hashes = lock_hashes(pool)
    compared = [p for p in pool_hashes if not p.startswith("reports") and not p.endswith(TIMING)]
    # data stages (PTB-XL, nstdb, filtered, segmented), bootstrap, 4 models (2 files), 4 evaluations, 4 robustness
    assert len(compared) == 4 + 1 + 4 * 2 + 4 + 4
    assert {p: pool_hashes[p] for p in compared} == {p: local_hashes.get(p) for p in compared}
    assert (pool / "reports/study/report.html").is_file()

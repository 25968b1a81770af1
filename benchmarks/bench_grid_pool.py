"""Wall time of a small grid on a Prefect work pool: 1 worker against 2 workers, on this machine, in one run.

A real Prefect server on 127.0.0.1, `rclone serve s3` as the DVC remote, process workers started with
`prefect worker start --pool ... --limit 1`; the grid (2 architectures x 2 windows x 2 seeds by default) runs
through flows/grid.py from a fresh project each time, ending with `dvc repro --pull` and a clean `dvc status`.
The local `dvc repro` of the same grid is timed too, as the embedded default to compare with.
Usage: python benchmarks/bench_grid_pool.py [--records 600] [--epochs 4] [--write]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml
from common import REPO, machine, write_section

from ecg_crnn.data.synthetic import write_synthetic

BIN = Path(sys.executable).parent
KEY, SECRET = "benchkey", "bench-secret"
GRID = {
    "study": {"architectures": ["cnn", "cnn_bilstm1"], "reference": "cnn_bilstm1", "windows": [2.5, 10]},
    "train": {"seeds": [0, 1], "batch_size": 32},
    "models": {"channels": [16, 16, 32, 32], "hidden": 16},
    "evaluate": {"bootstrap": 200, "latency_runs": 3},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2):
            return
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer")


def stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def sh(cmd, cwd, env=None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{cmd} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


def project(root: Path, source: Path, epochs: int, s3_endpoint: str | None, bucket_prefix: str) -> Path:
    root.mkdir(parents=True)
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(REPO / ".dvc", root / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache"))
    (root / ".gitignore").write_text("/data/\n/.resume/\n")
    params = yaml.safe_load((root / "params.yaml").read_text())
    for section, values in GRID.items():
        params[section].update(values)
    params["train"]["epochs"] = epochs
    params["download"]["source"] = str(source)
    params["grid"].update({"work_pool": "bench", "resume_root": str(root.parent / "resume")})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@b",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@b",
    }
    sh(["git", "init", "-q"], root)
    if s3_endpoint:
        sh(["dvc", "remote", "add", "-d", "store", f"s3://bench/{bucket_prefix}"], root)
        sh(["dvc", "remote", "modify", "store", "endpointurl", s3_endpoint], root)
    sh(["git", "add", "-A"], root, env)
    sh(["git", "commit", "-qm", "grid"], root, env)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ecg-crnn-bench-grid-"))
    write_synthetic(work / "synthetic", args.records, seed=1, progress=False)
    # This environment's dvc, prefect and git hooks first, for every command the benchmark runs.
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    env = {
        **os.environ,
        "PREFECT_HOME": str(work / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "DVC_NO_ANALYTICS": "1",
        "AWS_ACCESS_KEY_ID": KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    port, s3_port = free_port(), free_port()
    (work / "s3" / "bench").mkdir(parents=True)
    procs = [
        subprocess.Popen(
            [BIN / "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        ),
        subprocess.Popen(
            [
                BIN / "rclone",
                "serve",
                "s3",
                "--addr",
                f"127.0.0.1:{s3_port}",
                "--auth-key",
                f"{KEY},{SECRET}",
                str(work / "s3"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        ),
    ]
    env["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    results = {}
    try:
        wait_http(f"http://127.0.0.1:{port}/api/health", 120)
        local = project(work / "local" / "p", work / "synthetic", args.epochs, None, "local")
        t = time.perf_counter()
        sh(["dvc", "repro"], local, env)
        results["local `dvc repro` (embedded default)"] = time.perf_counter() - t
        for n in (1, 2):
            root = project(
                work / f"pool{n}" / "p",
                work / "synthetic",
                args.epochs,
                f"http://127.0.0.1:{s3_port}",
                f"pool{n}",
            )
            flow = [sys.executable, str(REPO / "flows" / "grid.py"), "--params", str(root / "params.yaml")]
            sh([*flow, "--deploy"], root, env)
            workers = [
                subprocess.Popen(
                    [BIN / "prefect", "worker", "start", "--pool", "bench", "--limit", "1"],
                    env=env,
                    cwd=REPO,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                for _ in range(n)
            ]
            try:
                t = time.perf_counter()
                out = sh([*flow, "--repo", str(root), "--workdir", str(work / f"work{n}")], root, env)
                results[f"pool, {n} worker{'s' if n > 1 else ''}"] = time.perf_counter() - t
                assert "Data and pipelines are up to date" in out, out
            finally:
                for w in workers:
                    stop(w)
    finally:
        for p in procs:
            stop(p)
        shutil.rmtree(work, ignore_errors=True)
    one = results["pool, 1 worker"]
    lines = [
        f"A grid of 2 architectures x 2 windows x 2 seeds (8 models; {args.records} synthetic records, "
        f"{args.epochs} epochs, small models), from a fresh project to a clean `dvc status`; {machine()}. "
        "Pool: flows/grid.py with a Prefect server on 127.0.0.1 and `rclone serve s3` as the DVC remote; each "
        "model's checkout, `dvc repro --pull`, training, evaluation and pushes on a worker, then the coordinator's "
        "`dvc repro --pull` restoring them from the run-cache.",
        "",
        "| run | wall time | against 1 worker |",
        "| --- | ---: | ---: |",
        *[f"| {k} | {v:.0f} s | {one / v:.2f}x |" for k, v in results.items()],
        "",
        "On 2 CPU cores the two workers share the cores, and each model's checkout and DVC commands add fixed "
        "seconds: the pool pays off with one GPU per worker and models that train for minutes, not seconds.",
        "",
        "Run: `python benchmarks/bench_grid_pool.py --write`",
    ]
    report = "\n".join(lines)
    print(report)
    if args.write:
        write_section("The grid on a work pool: 1 worker against 2", report)


if __name__ == "__main__":
    main()

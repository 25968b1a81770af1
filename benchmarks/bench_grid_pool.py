"""Wall time of a small grid on a Prefect work pool: 1 worker against 2 workers, on this machine, in one run.

A real Prefect server on 127.0.0.1, `rclone serve s3` as the DVC remote, process workers started with
`prefect worker start --pool ... --limit 1`; the grid (2 architectures x 2 windows x 2 seeds by default) runs
through flows/grid.py from a fresh project each time, ending with `dvc repro --pull` and a clean `dvc status`.
The local `dvc repro` of the same grid is timed too, as the embedded default to compare with.
Usage: python benchmarks/bench_grid_pool.py [--records 600] [--epochs 4] [--write]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, machine, write_section

from ecg_crnn.data.synthetic import write_synthetic
from tests.helpers.params import GRID, set_params
from tests.helpers.processes import run, start_workers, stop_group
from tests.helpers.project import make_project
from tests.helpers.servers import PREFECT_ENV, S3Server, free_port, wait_http

BIN = Path(sys.executable).parent


def project(root: Path, source: Path, epochs: int, s3_endpoint: str | None, bucket_prefix: str) -> Path:
    make_project(root)
    overrides = {**GRID, "evaluate.bootstrap": 200, "train.epochs": epochs, "download.source": str(source)}
    set_params(
        root, {**overrides, "grid.work_pool": "bench", "grid.resume_root": str(root.parent / "resume")}
    )
    if s3_endpoint:
        run(["dvc", "remote", "add", "-d", "store", f"s3://bench/{bucket_prefix}"], root)
        run(["dvc", "remote", "modify", "store", "endpointurl", s3_endpoint], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "grid"], root)
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
    env = {**os.environ, **PREFECT_ENV, "PREFECT_HOME": str(work / "prefect"), "DVC_NO_ANALYTICS": "1"}
    port = free_port()
    (work / "s3" / "bench").mkdir(parents=True)
    s3 = S3Server(work / "s3").start()
    env.update(
        {"AWS_ACCESS_KEY_ID": s3.key, "AWS_SECRET_ACCESS_KEY": s3.secret, "AWS_DEFAULT_REGION": "us-east-1"}
    )
    server = subprocess.Popen(
        [BIN / "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    env["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    results = {}
    try:
        wait_http(f"http://127.0.0.1:{port}/api/health", 120)
        local = project(work / "local" / "p", work / "synthetic", args.epochs, None, "local")
        t = time.perf_counter()
        run(["dvc", "repro"], local, env=env)
        results["local `dvc repro` (embedded default)"] = time.perf_counter() - t
        for n in (1, 2):
            root = project(work / f"pool{n}" / "p", work / "synthetic", args.epochs, s3.endpoint, f"pool{n}")
            flow = [sys.executable, str(REPO / "flows" / "grid.py"), "--params", str(root / "params.yaml")]
            run([*flow, "--deploy"], root, env=env)
            workers = start_workers("bench", env, n)
            try:
                t = time.perf_counter()
                out = run(
                    [*flow, "--repo", str(root), "--workdir", str(work / f"work{n}")], root, env=env
                ).stdout
                results[f"pool, {n} worker{'s' if n > 1 else ''}"] = time.perf_counter() - t
                assert "Data and pipelines are up to date" in out, out
            finally:
                for w in workers:
                    stop_group(w)
    finally:
        stop_group(server)
        s3.stop()
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

"""Many models at once on one machine, in one run: models per hour for 1 job against N jobs side by side, and the
small synthetic grid end to end, serial `dvc repro` against the local runner (`ecg-crnn grid --jobs 2`).

CPU: `--models` trainings of one architecture (default sizes) as `ecg-crnn train` processes, 1 job x 1 thread,
1 job x 2 threads (what one serial run gets on 2 cores) and 2 jobs x 1 thread; the model files of 1 x 1 and 2 x 1
are compared byte for byte (a model's bytes must not depend on how many jobs ran beside it).
GPU (only where CUDA is present): N = 1, 2, 4, 8, 16 jobs on GPU 0, each bound to it with 1/N of its memory (less
the runner's margin), with and without CUDA MPS when `nvidia-cuda-mps-control` can start it; and one job with
train.cuda_graph against eager. The default grid's time on one GPU is projected from the best N.
Every job maps the one shared standardized copy of the training split (shared_data.py).
Usage: python benchmarks/bench_grid_runner.py [--device cpu|cuda] [--records 3000] [--models 4] [--epochs 2] [--write]
(--device cpu: the CPU rows and the grid end to end; --device cuda: the GPU rows, their own section)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, machine, prepared, write_section

from ecg_crnn.data.synthetic import write_synthetic
from ecg_crnn.grid.slots import CONTEXT_MARGIN
from ecg_crnn.resources import GPU_MEMORY_ENV
from ecg_crnn.shared_data import CACHE_ENV
from tests.helpers.params import GRID, set_params, write_params
from tests.helpers.processes import run
from tests.helpers.project import lock_hashes, make_project

BIN = Path(sys.executable).parent
GRID_MODELS = 13 * 2 * 5  # the default grid: architectures x windows x seeds
GRID_EPOCHS = 40


def train_models(
    cfg: Path, data: Path, out: Path, seeds: list[int], jobs: int, env: dict, arch: str
) -> float:
    """Wall seconds to train one model per seed, `jobs` at a time (each an `ecg-crnn train` process, run as
    `python -m ecg_crnn` with this checkout's src/ first, so that no installed copy is needed)."""
    env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH")) if p)}
    cmds = [
        [
            sys.executable,
            "-m",
            "ecg_crnn",
            "--params",
            str(cfg),
            "-q",
            "train",
            arch,
            "--window",
            "2.5",
            "--seed",
            str(s),
        ]
        + ["--filtered", str(data / "filtered"), "--segmented", str(data / "segmented")]
        + ["--out", str(out / f"seed{s}"), "--resume-dir", str(out / f"resume{s}")]
        for s in seeds
    ]
    running: list[subprocess.Popen] = []
    t0 = time.perf_counter()
    while cmds or running:
        while cmds and len(running) < jobs:
            running.append(subprocess.Popen(cmds.pop(0), env=env, stderr=subprocess.PIPE, text=True))
        for proc in list(running):
            if proc.poll() is not None:
                assert proc.returncode == 0, proc.stderr.read()[-3000:]
                running.remove(proc)
        time.sleep(0.05)
    return time.perf_counter() - t0


def cpu_runs(work: Path, data: Path, args) -> tuple[list[tuple[str, float]], str]:
    """(jobs x threads, seconds) for the three CPU layouts, and whether 1 x 1 and 2 x 1 gave the same bytes."""
    seeds = list(range(args.models))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    results = []
    for jobs, threads in ((1, 1), (1, 2), (2, 1)):
        cfg = write_params(
            work / f"cpu-{jobs}x{threads}.yaml", {"train.epochs": args.epochs, "train.threads": threads}
        )
        out = work / f"cpu-{jobs}x{threads}"
        results.append((f"{jobs} x {threads}", train_models(cfg, data, out, seeds, jobs, env, args.arch)))
        print(results[-1])
    same = sum(
        (work / "cpu-1x1" / f"seed{s}" / "model.pt").read_bytes()
        == (work / "cpu-2x1" / f"seed{s}" / "model.pt").read_bytes()
        for s in seeds
    )
    return results, f"{same} of {len(seeds)}"


@contextlib.contextmanager
def mps(work: Path):
    """CUDA MPS for the jobs started inside (their environment's pipe directory); None if it cannot start."""
    control = shutil.which("nvidia-cuda-mps-control")
    if not control:
        yield None
        return
    dirs = {
        "CUDA_MPS_PIPE_DIRECTORY": str(work / "mps-pipe"),
        "CUDA_MPS_LOG_DIRECTORY": str(work / "mps-log"),
    }
    for d in dirs.values():
        Path(d).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **dirs}
    started = subprocess.run([control, "-d"], env=env, capture_output=True, text=True)
    if started.returncode != 0:
        yield None
        return
    try:
        yield dirs
    finally:
        subprocess.run([control], input="quit\n", env=env, capture_output=True, text=True)


def gpu_runs(work: Path, data: Path, args) -> dict[str, float]:
    """Models per hour on GPU 0 for each N, without and with MPS, and one job with the CUDA graph."""
    results = {}
    for graphed in (False, True):
        cfg = write_params(
            work / f"gpu-graph{graphed}.yaml",
            {"train.epochs": args.epochs, "train.device": "cuda", "train.cuda_graph": graphed},
        )
        for use_mps in (False, True) if not graphed else (False,):
            with mps(work) if use_mps else contextlib.nullcontext({}) as dirs:
                if dirs is None:
                    print("CUDA MPS could not be started here")
                    continue
                for n in args.gpu_jobs if not graphed else [1]:
                    env = {
                        **os.environ,
                        **dirs,
                        "CUDA_VISIBLE_DEVICES": "0",
                        GPU_MEMORY_ENV: f"{CONTEXT_MARGIN / n:.4f}",
                    }
                    out = work / f"gpu-{n}-mps{use_mps}-graph{graphed}"
                    seconds = train_models(cfg, data, out, list(range(2 * n)), n, env, args.arch)
                    key = f"{n} job{'s' if n > 1 else ''}{', MPS' if use_mps else ''}{', CUDA graph' if graphed else ''}"
                    results[key] = 2 * n / seconds * 3600
                    print(key, results[key])
    return results


def end_to_end(work: Path, source: Path) -> dict[str, float]:
    """Wall seconds of the small grid from a fresh project to a clean `dvc status`, serial and through the runner;
    asserts that both end with the same data, model and evaluation bytes."""
    seconds, hashes = {}, {}
    for name, cmd in (
        ("serial `dvc repro`", ["dvc", "repro"]),
        ("`ecg-crnn grid --jobs 2`", ["ecg-crnn", "grid", "--jobs", "2"]),
    ):
        root = make_project(work / name.split()[0].strip("`") / "project")
        set_params(root, {**GRID, "download.source": str(source)})
        run(["git", "add", "-A"], root)
        run(["git", "commit", "-qm", "grid"], root)
        t = time.perf_counter()
        run(cmd, root)
        seconds[name] = time.perf_counter() - t
        assert "Data and pipelines are up to date" in run(["dvc", "status"], root).stdout
        hashes[name] = {
            p: h
            for p, h in lock_hashes(root).items()
            if not p.startswith("reports") and not p.endswith(("timing.json", "cost.json"))
        }
    assert len({tuple(sorted(h.items())) for h in hashes.values()}) == 1, "the runner changed an output"
    return seconds


def _cpu_table(cpu: list[tuple[str, float]], models: int) -> list[str]:
    base = cpu[0][1]
    return [
        "| jobs x threads | wall time | models/hour | against 1 x 1 |",
        "| --- | ---: | ---: | ---: |",
        *[f"| {k} | {s:.0f} s | {models / s * 3600:.0f} | {base / s:.2f}x |" for k, s in cpu],
    ]


NOT_MEASURED = (
    "**Not yet measured**: no GPU was available where the runner was built. This section is written by "
    "`python benchmarks/bench_grid_runner.py --device cuda --write` where CUDA is present: models per hour for "
    "N = 1, 2, 4, 8, 16 jobs on one GPU, with and without CUDA MPS, one job with `train.cuda_graph` against eager, "
    "and the default grid's time on one GPU projected from the best row. Known so far: one model at a time, the "
    "default grid (130 models) costs about 4.5 h of training on an H100 (projected from the measured epoch times: "
    "*Architectures: epoch time per window (GPU)*); the goal, <= 15 min on one H100/H200, needs >= 18x that "
    "throughput from models side by side."
)


def gpu_report(args, gpu: dict[str, float], device: str) -> str:
    one = gpu["1 job"]
    best = max((k for k in gpu if "graph" not in k), key=gpu.get)
    grid_min = GRID_MODELS * GRID_EPOCHS / args.epochs / gpu[best] * 60
    lines = [
        f"{device}: {args.arch} (default sizes), {args.epochs} epochs per model, 2.5 s crops, {args.records:,} "
        f"synthetic records; 2 x N models per row, N at a time on GPU 0, each job bound to it with "
        f"{CONTEXT_MARGIN:.0%} / N of its memory; {machine()}.",
        "",
        "| GPU jobs | models/hour | against 1 job |",
        "| --- | ---: | ---: |",
        *[f"| {k} | {v:.0f} | {v / one:.2f}x |" for k, v in gpu.items()],
        "",
        f"Projected from the best row ({best}), not run: the default grid ({GRID_MODELS} models x {GRID_EPOCHS} "
        f"epochs, every model as costly as {args.arch}) in about **{grid_min:.0f} min** on this GPU.",
        "",
        "Run: `python benchmarks/bench_grid_runner.py --device cuda --write`",
    ]
    return "\n".join(lines)


def cpu_report(args, cpu, same, e2e, load: tuple[float, float]) -> str:
    serial, runner = e2e.values()
    lines = [
        f"{args.models} models of {args.arch} (default sizes), {args.epochs} epoch(s) each, 2.5 s crops, on "
        f"{args.records:,} synthetic records, each an `ecg-crnn train` process mapping the one shared standardized "
        f"copy of the training split; {machine()}; load average {load[0]:.1f} before, {load[1]:.1f} after "
        "(a shared machine: other processes took CPU time during these runs).",
        "",
        *_cpu_table(cpu, args.models),
        "",
        f"Model files byte-identical between 1 x 1 and 2 x 1: {same} (the same threads per job: the same bytes "
        "however many jobs ran beside it).",
        "",
        "The small synthetic grid end to end (2 architectures x 2 windows x 2 seeds, tiny models, 3 epochs, 300 "
        "records), from a fresh project to a clean `dvc status`, with the same data, model and evaluation bytes "
        f"both ways (checked): serial `dvc repro` {serial:.0f} s, `ecg-crnn grid --jobs 2` {runner:.0f} s "
        f"({serial / runner:.2f}x). Its models train in seconds, so each job's fixed costs (a worktree, DVC's "
        "start and checkout, two Python processes importing torch) weigh as much as the training; the runner is "
        "for models that train for minutes.",
        "",
        "GPU: see *Many models at once: the local runner (GPU)*.",
        "",
        "Run: `python benchmarks/bench_grid_runner.py --write`",
    ]
    return "\n".join(lines)


CPU_SECTION = "Many models at once: the local runner (CPU)"
GPU_SECTION = "Many models at once: the local runner (GPU)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--arch", default="cnn_bilstm1")
    parser.add_argument("--gpu-jobs", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    import torch

    work = Path(tempfile.mkdtemp(prefix="ecg-crnn-bench-runner-"))
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    os.environ.update({CACHE_ENV: str(work / "data-cache"), "DVC_NO_ANALYTICS": "1"})
    load = [os.getloadavg()[0]]
    try:
        write_synthetic(work / "raw", args.records, seed=1, progress=False)
        prepared(work / "raw", work / "data")
        if args.device == "cuda":
            sections = {
                GPU_SECTION: gpu_report(
                    args, gpu_runs(work, work / "data", args), torch.cuda.get_device_name(0)
                )
            }
        else:
            cpu, same = cpu_runs(work, work / "data", args)
            write_synthetic(work / "small", 300, seed=1, progress=False)
            e2e = end_to_end(work, work / "small")
            load.append(os.getloadavg()[0])
            sections = {CPU_SECTION: cpu_report(args, cpu, same, e2e, tuple(load))}
            if f"## {GPU_SECTION}" not in (REPO / "BENCHMARKS.md").read_text():
                sections[GPU_SECTION] = NOT_MEASURED
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name, text in sections.items():
        print(f"## {name}\n\n{text}\n")
        if args.write:
            write_section(name, text)


if __name__ == "__main__":
    main()

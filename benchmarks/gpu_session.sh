#!/usr/bin/env bash
# Where a CUDA GPU is lent, in one go: the gpu tests (the whole CUDA path, the CUDA-graph step against eager, a
# job's memory share), then the GPU rows of the runner's benchmark into BENCHMARKS.md. Extra arguments go to the
# benchmark (e.g. --gpu-jobs 1 2 4 --epochs 1 to fit a short lease).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
python -m pytest -m gpu -x -q tests/test_gpu.py tests/test_gpu_graph.py
python benchmarks/bench_grid_runner.py --device cuda --write "$@"

"""One job of the local runner, run in its worktree: `python -m ecg_crnn.grid.job train@KEY evaluate@KEY ...` (one
model's stages, snapshot.model_stages).

The data the stages read is checked out from the shared DVC cache, then the stages are reproduced, each
exactly as `dvc checkout PATHS` and `dvc repro --single-item` run them, through DVC's own command-line entry point
in one process, so that DVC starts once per job rather than twice (seconds per job on a busy machine).
"""

from __future__ import annotations

import sys

from ..layout import BOOTSTRAP, FILTERED, NOISE, SEGMENTED

DATA = [
    str(FILTERED),
    str(SEGMENTED),
    str(BOOTSTRAP),
    str(NOISE),
]  # what a model's stages read, from upstream stages
# The stages that produce DATA (with everything upstream of them), reproduced before any model runs: the bootstrap
# (after download, filter and segment) and the noise stage (the robustness stages' nstdb copy).
UPSTREAM = ["bootstrap", "noise"]


def main(argv: list[str] | None = None) -> int:
    from dvc.cli import main as dvc

    stages = argv if argv is not None else sys.argv[1:]
    for command in (["checkout", *DATA], ["repro", "--single-item", *stages]):
        print(f"$ dvc {' '.join(command)}", flush=True)
        rc = dvc(command)
        if rc:
            print(f"grid job: `dvc {command[0]}` exited {rc}", flush=True)
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())

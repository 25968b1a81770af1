"""A stage's dvc.yaml dependencies are exactly the code it runs: recorded from a real run of every stage, so that
editing code a stage does not run (the report, the search, the CLI...) never re-runs it, and editing code it does run
always does."""

import json
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from ecg_crnn.provenance import is_code_dep

from .helpers.paths import REPO
from .helpers.processes import run

# What counts as a stage's code is said once, in provenance.py: the resume fingerprint of a training run hashes the same
# files (the neutral modules left out here as there).
RECORDER = Path(__file__).with_name("helpers") / "record_modules.py"


def _module_file(name: str) -> str:
    path = REPO / "src" / Path(*name.split("."))
    return str((path / "__init__.py" if path.is_dir() else path.with_suffix(".py")).relative_to(REPO))


def _listed(deps: list[str]) -> set[str]:
    """The stage's code deps as files (a folder stands for the modules in it)."""
    out = set()
    for d in deps:
        if d.startswith("src/ecg_crnn/"):
            p = REPO / d
            out |= {str(f.relative_to(REPO)) for f in p.rglob("*.py")} if p.is_dir() else {d}
    return out


def _code(files) -> set[str]:
    return {f for f in (f.removeprefix("src/ecg_crnn/") for f in files) if is_code_dep(f)}


@pytest.fixture
def study_copy(local_grid, tmp_path):
    """A copy of the finished small study, to run stages in or edit code in without touching the original."""
    root = tmp_path / "project"
    shutil.copytree(local_grid[0], root, symlinks=True)
    return root


def _stages(root: Path) -> dict[str, tuple[str, list[str]]]:
    """One stage per dvc.yaml entry (the first of a matrix): name -> (command, deps)."""
    from dvc.repo import Repo

    out = {}
    with Repo(str(root)) as repo:
        for stage in repo.index.stages:
            base = stage.name.split("@")[0]
            if base not in out:
                out[base] = (stage.cmd, [d.def_path for d in stage.deps])
    return out


def test_every_stage_lists_exactly_the_code_it_runs(study_copy, tmp_path):
    stages = _stages(study_copy)
    assert set(stages) == {
        "download",
        "noise",
        "filter",
        "segment",
        "train",
        "bootstrap",
        "evaluate",
        "robustness",
        "cost",
        "drift",
        "drift_predictions",
        "compare",
    }
    for name, (cmd, deps) in stages.items():
        argv = shlex.split(cmd)
        assert argv[0] == "ecg-crnn", cmd
        out = tmp_path / f"{name}.json"
        run([sys.executable, str(RECORDER), str(out), *argv[1:]], study_copy)
        imported = _code(_module_file(m) for m in json.loads(out.read_text()))
        listed = _code(_listed(deps))
        assert imported == listed, (
            f"{name}: runs but does not list {sorted(imported - listed)}; lists but does not run {sorted(listed - imported)}"
        )


def _changed(root: Path) -> set[str]:
    return set(json.loads(run(["dvc", "status", "--json"], root).stdout or "{}"))


def test_editing_code_training_does_not_run_never_retrains(study_copy):
    assert not _changed(study_copy), "the study should start up to date"
    elsewhere = [
        "report/render.py",
        "report/plots.py",
        "analysis/compare.py",
        "cost.py",
        "drift.py",
        "search/objective.py",
        "publish.py",
        "inference.py",
        "cli.py",
    ]
    originals = {}
    for rel in elsewhere:
        path = study_copy / "src/ecg_crnn" / rel
        originals[path] = path.read_text()
        path.write_text(originals[path] + "\n# a comment\n")
    changed = _changed(study_copy)
    assert changed and not [s for s in changed if s.startswith("train@")], changed
    for path, text in originals.items():
        path.write_text(text)
    assert not _changed(study_copy)
    for rel in ("training.py", "data/windows.py"):  # the training loop, and a module deep in its imports
        path = study_copy / "src/ecg_crnn" / rel
        text = path.read_text()
        path.write_text(text + "\n# a comment\n")
        trains = {s for s in _changed(study_copy) if s.startswith("train@")}
        assert len(trains) == 8, (rel, trains)  # 2 architectures x 2 windows x 2 seeds
        path.write_text(text)

"""Scratch projects: the pipeline's files in a fresh git + DVC repository, and prepared data."""

import shutil
from pathlib import Path

import yaml

from .paths import REPO
from .processes import run


def make_project(root: Path) -> Path:
    """The project's pipeline files in a fresh git + DVC repository at `root`."""
    root.mkdir(parents=True)
    for name in ("dvc.yaml", "params.yaml", "recipe.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(REPO / ".dvc", root / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache"))
    (root / ".gitignore").write_text("/data/\n/.resume/\n")
    run(["git", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "init"], root)
    return root


def lock_hashes(root: Path) -> dict[str, str]:
    """path -> md5 of every output dvc.lock records."""
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    return {o["path"]: o["md5"] for st in lock["stages"].values() for o in st.get("outs", [])}


def prepare(raw: Path, work: Path, overrides: dict | None = None) -> Path:
    """Filter and segment the dataset `raw` into work/filtered and work/segmented (once), as the pipeline does."""
    from ecg_crnn.stages import filter, segment

    from .params import params

    if not (work / "segmented" / "layout.json").is_file():
        p = params(overrides)
        filter.run(p, filter.Paths(raw, work / "filtered"), progress=False)
        segment.run(p, segment.Paths(work / "filtered", work / "segmented"))
    return work

"""The workspace as the grid's jobs see it: one git commit of it, and the stages that are not up to date.

A snapshot holds the tracked files as they are in the workspace (edits and deletions included, committed or not),
plus the pipeline's own files (dvc.yaml, dvc.lock, params.yaml) even when git does not track them yet. It never
holds an untracked file: a scratch script or a stray data file in the workspace is not part of any stage, and a
job that could read it would not be reproducible from the snapshot. It is committed through a temporary index
onto a ref of its own, so the user's branch, HEAD and index stay as they were.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..errors import EcgCrnnError
from .shell import run

PIPELINE_FILES = ("dvc.yaml", "dvc.lock", "params.yaml")
REF_PREFIX = "refs/ecg-crnn/grid"
_IDENT = {
    "GIT_AUTHOR_NAME": "ecg-crnn grid",
    "GIT_AUTHOR_EMAIL": "grid@ecg-crnn",
    "GIT_COMMITTER_NAME": "ecg-crnn grid",
    "GIT_COMMITTER_EMAIL": "grid@ecg-crnn",
}


@dataclass(frozen=True)
class Snapshot:
    url: str  # where a job fetches it from
    ref: str
    commit: str


def snapshot_tree(repo: Path) -> str:
    """The git tree of the workspace's tracked files as they are now, with the pipeline's files."""
    git_dir = Path(run(["git", "rev-parse", "--absolute-git-dir"], repo).strip())
    index = git_dir / f"ecg-crnn-grid-{uuid.uuid4().hex}.index"
    env = {**os.environ, "GIT_INDEX_FILE": str(index)}
    try:
        run(["git", "read-tree", "HEAD"], repo, env)
        run(["git", "add", "-u"], repo, env)  # tracked files: edits and deletions, nothing untracked
        present = [name for name in PIPELINE_FILES if (repo / name).is_file()]
        if present:
            run(["git", "add", "-f", "--", *present], repo, env)
        return run(["git", "write-tree"], repo, env).strip()
    finally:
        index.unlink(missing_ok=True)


def snapshot(repo: Path, git_remote: str | None = None, ref: str | None = None) -> Snapshot:
    """Commit the workspace (see snapshot_tree) onto `ref` (default: a new refs/ecg-crnn/grid/TIME-ID) and,
    with `git_remote`, push it there for workers on other machines."""
    repo = Path(repo).resolve()
    try:
        run(["git", "rev-parse", "--verify", "-q", "HEAD"], repo)
    except EcgCrnnError:
        raise EcgCrnnError(
            f"{repo}: the grid snapshots a git commit; commit the project once first"
        ) from None
    ref = ref or f"{REF_PREFIX}/{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    tree = snapshot_tree(repo)
    message = ["-m", "ecg-crnn grid snapshot"]
    commit = run(["git", "commit-tree", tree, "-p", "HEAD", *message], repo, {**os.environ, **_IDENT}).strip()
    run(["git", "update-ref", ref, commit], repo)
    if not git_remote:
        return Snapshot(repo.as_uri(), ref, commit)
    run(["git", "push", "-q", git_remote, f"{commit}:{ref}"], repo)
    url = git_remote if "://" in git_remote else run(["git", "remote", "get-url", git_remote], repo).strip()
    return Snapshot(url, ref, commit)


def drop(repo: Path, ref: str) -> None:
    """Delete a snapshot's ref (its commit goes with git's next garbage collection)."""
    run(["git", "update-ref", "-d", ref], repo)


def pending_stages(repo: Path) -> list[str]:
    """The evaluate stages (each with its train stage) that are not up to date, in dvc.yaml's order."""
    changed = json.loads(run(["dvc", "status", "--json"], repo) or "{}")
    names = run(["dvc", "stage", "list", "--name-only"], repo).split()
    return [n for n in names if n.startswith("evaluate@") and (n in changed or "train@" + n[9:] in changed)]


def train_stage(evaluate_stage: str) -> str:
    """evaluate@ARCH-WINDOW-SEED -> train@ARCH-WINDOW-SEED."""
    return "train@" + evaluate_stage.split("@", 1)[1]

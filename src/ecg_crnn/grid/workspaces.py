"""Light workspaces for the grid's jobs: git worktrees of a snapshot that use the user's DVC cache.

A worktree costs a checkout of the tracked files (the code and the pipeline's files, a few hundred kB) and no copy of
the data: its DVC config points at the user's cache and links files from it (hard links where the file system allows,
copies otherwise), so the data a job reads is the cache's own bytes, and what a job commits, its outputs and its
run-cache entry, lands straight in that cache, for the user's workspace to restore. DVC writes every cache object
and run-cache entry to a temporary name and renames it into place, so jobs committing side by side never see one
another's half-written files; each worktree has its own DVC locks and state.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import EcgCrnnError
from .shell import run

LINKS = "hardlink,copy"  # never reflink/copy first: a hard link is what lets jobs share one page-cache copy


def dvc_cache_dir(repo: Path) -> Path:
    """The user's DVC cache, as DVC resolves it (`cache.dir` from any config level, default .dvc/cache)."""
    return Path(run(["dvc", "cache", "dir"], repo).strip()).resolve()


def add(repo: Path, commit: str, where: Path, cache: Path) -> Path:
    """A worktree of `commit` at `where`, detached (no branch), whose DVC uses `cache` with linked files."""
    where.parent.mkdir(parents=True, exist_ok=True)
    run(["git", "worktree", "add", "-q", "--detach", str(where), commit], repo)
    # .dvc/config.local is git-ignored: the worktree's own, written directly (no DVC process to start).
    (where / ".dvc" / "config.local").write_text(f"[cache]\n    dir = {cache}\n    type = {LINKS}\n")
    return where


def remove(repo: Path, where: Path) -> None:
    """Remove a worktree and git's record of it (its outputs are in the shared cache by then, or abandoned)."""
    try:
        run(["git", "worktree", "remove", "--force", "--force", str(where)], repo)
    except EcgCrnnError:  # e.g. a job that died mid-way left files git will not remove: delete, then prune
        shutil.rmtree(where, ignore_errors=True)
        run(["git", "worktree", "prune"], repo)


def clear(repo: Path, root: Path) -> int:
    """Remove every worktree left under `root` (by a runner that was killed) and prune git's records of them."""
    count = 0
    if root.is_dir():
        for where in sorted(p for p in root.iterdir() if p.is_dir()):
            shutil.rmtree(where, ignore_errors=True)
            count += 1
    run(["git", "worktree", "prune"], repo)
    return count

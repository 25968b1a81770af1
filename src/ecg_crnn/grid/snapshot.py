"""The workspace as the grid's jobs see it: one git commit of it, and the stages that are not up to date.

A snapshot holds the tracked files as they are in the workspace (edits and deletions included, committed or not),
plus the pipeline's own files (dvc.yaml, dvc.lock, the parameters) even when git does not track them yet. It never
holds another untracked file: a scratch script, a stray data file or a credentials file (`.env`) in the workspace
is not part of any stage; those left out are named (`Snapshot.left_out`) for the caller to warn about. It is
committed through a temporary index onto a ref of its own, so the user's branch, HEAD and index stay as they
were, and `drop` deletes that ref (here and on the remote) when the grid is done.

Pushed to a git remote for workers on other machines, it travels under git's safe transports only (https, ssh,
file; never `ext::`, which runs a command), with no prompt, and the URL the workers receive (a flow-run parameter,
which Prefect stores) never holds a credential.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..errors import EcgCrnnError
from ..redaction import redact
from ..shapes import GIT_ALLOW_PROTOCOL, git_url_problem, is_remote_name
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
    url: str  # where a job fetches it from (never with a credential)
    ref: str
    commit: str
    left_out: tuple[str, ...] = ()  # untracked files of the workspace the snapshot does not hold

    def left_out_warning(self) -> str | None:
        """The warning naming the untracked files left out, or None when there are none."""
        if not self.left_out:
            return None
        names = ", ".join(self.left_out[:10]) + (" ..." if len(self.left_out) > 10 else "")
        return (
            f"snapshot: {len(self.left_out)} untracked file(s) left out (commit what the grid needs; credentials "
            f"and .env files never belong in a snapshot): {names}"
        )


def git_env() -> dict:
    """git that fetches and pushes only over https, ssh or from a file (never `ext::`, which runs a command) and
    never waits for a password at a prompt nobody sees."""
    return {**os.environ, "GIT_ALLOW_PROTOCOL": GIT_ALLOW_PROTOCOL, "GIT_TERMINAL_PROMPT": "0"}


def snapshot_tree(repo: Path, extra: tuple[str, ...] = ()) -> str:
    """The git tree of the workspace's tracked files as they are now, with the pipeline's files and `extra`
    (paths inside the workspace, e.g. a parameters file given with --params)."""
    repo = Path(repo).resolve()
    git_dir = Path(run(["git", "rev-parse", "--absolute-git-dir"], repo).strip())
    index = git_dir / f"ecg-crnn-grid-{uuid.uuid4().hex}.index"
    env = {**os.environ, "GIT_INDEX_FILE": str(index)}
    inside = [(repo / name).resolve() for name in (*PIPELINE_FILES, *extra)]
    present = sorted({str(p.relative_to(repo)) for p in inside if p.is_relative_to(repo) and p.is_file()})
    try:
        run(["git", "read-tree", "HEAD"], repo, env)
        run(["git", "add", "-u"], repo, env)  # tracked files: edits and deletions, nothing untracked
        if present:
            run(["git", "add", "-f", "--", *present], repo, env)
        return run(["git", "write-tree"], repo, env).strip()
    finally:
        index.unlink(missing_ok=True)


def untracked(repo: Path) -> list[str]:
    """The workspace's untracked files that git does not ignore."""
    out = run(["git", "ls-files", "--others", "--exclude-standard", "-z"], repo)
    return [p for p in out.split("\0") if p]


def remote_url(repo: Path, git_remote: str | None) -> str:
    """The URL the workers fetch from: never one that holds a credential (the workers authenticate with their
    own credential helper or ~/.netrc). Refused before anything is pushed."""
    if not git_remote:
        return Path(repo).resolve().as_uri()
    url = (
        run(["git", "remote", "get-url", git_remote], repo).strip()
        if is_remote_name(git_remote)
        else git_remote
    )
    if problem := git_url_problem(url):
        raise EcgCrnnError(
            f"grid.git_remote {redact(git_remote)!r}: its URL {redact(url)!r} has {problem}; the workers receive "
            "it as a flow-run parameter, which Prefect stores. Set the remote's URL without credentials and give "
            "them through a git credential helper or ~/.netrc on each machine"
        )
    return url


def snapshot(
    repo: Path, git_remote: str | None = None, ref: str | None = None, extra: tuple[str, ...] = ()
) -> Snapshot:
    """Commit the workspace (see snapshot_tree) onto `ref` (default: a new refs/ecg-crnn/grid/TIME-ID) and,
    with `git_remote` (a remote's name or URL), push it there for workers on other machines."""
    repo = Path(repo).resolve()
    try:
        run(["git", "rev-parse", "--verify", "-q", "HEAD"], repo)
    except EcgCrnnError:
        raise EcgCrnnError(
            f"{repo}: the grid snapshots a git commit; commit the project once first"
        ) from None
    url = remote_url(repo, git_remote)
    ref = ref or f"{REF_PREFIX}/{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    tree = snapshot_tree(repo, extra)
    held = set(run(["git", "ls-tree", "-r", "--name-only", "-z", tree], repo).split("\0"))
    left_out = tuple(p for p in untracked(repo) if p not in held)
    message = ["-m", "ecg-crnn grid snapshot"]
    commit = run(["git", "commit-tree", tree, "-p", "HEAD", *message], repo, {**os.environ, **_IDENT}).strip()
    run(["git", "update-ref", ref, commit], repo)
    if git_remote:
        run(["git", "push", "-q", "--", git_remote, f"{commit}:{ref}"], repo, git_env())
    return Snapshot(url, ref, commit, left_out)


def drop(repo: Path, ref: str, git_remote: str | None = None) -> list[str]:
    """Delete a snapshot's ref here and on `git_remote` (its commit goes with git's next garbage collection);
    returns what could not be deleted, for a warning: the grid's result stands either way."""
    commands = [["git", "update-ref", "-d", ref]]
    if git_remote:
        commands.append(["git", "push", "-q", "--", git_remote, f":{ref}"])
    problems = []
    for cmd in commands:
        try:
            run(cmd, repo, git_env())
        except EcgCrnnError as exc:
            problems.append(f"snapshot {ref} not removed everywhere: {exc}")
    return problems


MODEL_STAGES = ("train", "evaluate", "robustness")  # one model's stages, in the order they run


def model_stages(evaluate_stage: str, names) -> list[str]:
    """evaluate@KEY -> the stages of that model among `names` (dvc.yaml's stages): train@KEY, evaluate@KEY and,
    where the pipeline has it, robustness@KEY. A grid job runs them together, on one worker."""
    key = evaluate_stage.split("@", 1)[1]
    return [f"{kind}@{key}" for kind in MODEL_STAGES if f"{kind}@{key}" in set(names)]


def stage_names(repo: Path) -> list[str]:
    return run(["dvc", "stage", "list", "--name-only"], repo).split()


def pending_stages(repo: Path) -> dict[str, list[str]]:
    """The models that are not up to date, in dvc.yaml's order: each evaluate stage with its model's stages
    (model_stages), for those of which any stage is not up to date."""
    changed = json.loads(run(["dvc", "status", "--json"], repo) or "{}")
    names = stage_names(repo)
    models = {n: model_stages(n, names) for n in names if n.startswith("evaluate@")}
    return {n: stages for n, stages in models.items() if any(s in changed for s in stages)}

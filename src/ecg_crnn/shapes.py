"""The exact shapes of values that become command arguments or paths: git URLs and refs, commits, DVC stage names,
work-pool names. A value from params.yaml or from a flow run's parameters (which anyone who reaches the Prefect
server can set) is checked here before it reaches `git`, `dvc` or the file system, so that it can never be read
as an option (`--upload-pack=...`), a transport that runs commands (`ext::`), or a path that climbs out.

Each check returns what is wrong (a phrase for the message) or None.
"""

from __future__ import annotations

import re

from .redaction import url_secret

# Transports a grid may fetch from: https and ssh for a real remote, file (and plain paths) for one on this disk.
# git's own `ext::` (runs a command) and the plaintext git:// and http:// are not among them.
GIT_SCHEMES = ("https", "ssh", "file")
GIT_ALLOW_PROTOCOL = ":".join(
    GIT_SCHEMES
)  # git's GIT_ALLOW_PROTOCOL: every other transport is refused by git
_REMOTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SCP_LIKE = re.compile(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._~/][^\s]*")  # git@github.com:org/repo.git
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://[^\s]+")
GRID_REF = re.compile(r"refs/ecg-crnn/grid/\d{8}T\d{6}-[0-9a-f]{6}")
COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # SHA-1 and SHA-256 repositories
# evaluate@ARCH-WINDOW-FRACTION-ROTATION-SEED, dvc.yaml's matrix (study.architectures x windows x train_fractions
# x segment.rotations x train.seeds)
EVALUATE_STAGE = re.compile(r"evaluate@([a-z][a-z0-9_]*)-(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)-(\d+)-(\d+)")
POOL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def git_url_problem(url: str, remote_name_ok: bool = False) -> str | None:
    """Why `url` may not be handed to git (as the repository of a fetch or push), or None. A remote's name is
    accepted where `remote_name_ok` (params.yaml's grid.git_remote may name one)."""
    url = str(url)
    if not url or url.startswith("-"):
        return "an option-like value (it starts with '-' or is empty)"
    if any(c.isspace() or ord(c) < 32 for c in url):
        return "white space or a control character"
    if secret := url_secret(url):
        return f"{secret} (give credentials through a git credential helper or ~/.netrc)"
    if m := _URL.fullmatch(url):
        if m.group(1).lower() not in GIT_SCHEMES:
            return f"the transport {m.group(1)!r} (allowed: {', '.join(GIT_SCHEMES)}, or a path)"
        return None
    if "::" in url:
        return "a transport helper (<transport>::<address>), which can run a command"
    if url.startswith("/") or _SCP_LIKE.fullmatch(url):
        return None
    if remote_name_ok and _REMOTE_NAME.fullmatch(url):
        return None
    return "not an https://, ssh:// or file:// URL, a user@host:path address or an absolute path"


def is_remote_name(value: str) -> bool:
    """A git remote's name (`origin`), as opposed to a URL, an address or a path."""
    return bool(_REMOTE_NAME.fullmatch(str(value)))


def ref_problem(ref: str) -> str | None:
    if not GRID_REF.fullmatch(str(ref)):
        return "not a grid snapshot ref (refs/ecg-crnn/grid/YYYYmmddTHHMMSS-xxxxxx)"
    return None


def commit_problem(commit: str) -> str | None:
    return None if COMMIT.fullmatch(str(commit)) else "not a full commit id (40 or 64 lower-case hex digits)"


def stage_problem(stage: str, architectures=None) -> str | None:
    """A grid stage is `evaluate@ARCH-WINDOW-FRACTION-ROTATION-SEED` exactly, ARCH one of `architectures` when
    given."""
    m = EVALUATE_STAGE.fullmatch(str(stage))
    if m is None:
        return "not a stage name of the form evaluate@ARCH-WINDOW-FRACTION-ROTATION-SEED"
    if architectures is not None and m.group(1) not in architectures:
        return f"{m.group(1)!r} is not a known architecture"
    return None


def pool_problem(name: str) -> str | None:
    return None if POOL_NAME.fullmatch(str(name)) else "not a work-pool name (letters, digits, '.', '_', '-')"

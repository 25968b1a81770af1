"""Where an unfinished training run keeps its checkpoint, so that a resume can only ever continue the same run.

One private folder (0700) per run under the resume base (`.resume`, $ECG_CRNN_RESUME_ROOT or a `--resume-dir`),
named by the run and its fingerprint (`cnn_bilstm1-2.5s-seed0-<fingerprint>`), which covers the settings, the code
and the data content (training.run_provenance). Runs with other settings, code or data, from this project or any
other sharing the base, therefore never meet in one folder. Inside:

  checkpoint.pt   (0600) the state after the last completed epoch
  run.json        (0600) what the fingerprint covers, to say what changed when a run starts afresh
  attempt-N       (0600) one per attempt that claimed the run: N is its fencing token, counting up
  lock            the target of short exclusive locks (claim, save, finish)

Locks on a shared base (a network disk) may not hold, and a slow run whose flow run the grid's coordinator has
crashed may go on training; so each attempt takes the next token when it starts (an O_EXCL create, atomic even
where locks are not), and a save or a finish goes through only while no higher token exists. A stale attempt
then stops at its next save without writing (Superseded). Where a lock fails to exclude, a stale save can land
only in the instant between the token check and the rename; what lands is still a whole checkpoint (written to
a temporary, renamed in one step) of the very same run (same fingerprint), from which a resume ends exactly
where an uninterrupted run ends. On success only the run's own files and its own folder are removed, never the
base or anything else in it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import EcgCrnnError

ATTEMPT_ENV = "ECG_CRNN_ATTEMPT"  # a label for this attempt in messages (the grid sets its flow run's id)
CHECKPOINT = "checkpoint.pt"
_TOKEN = re.compile(r"attempt-(\d+)")
_TEMP = re.compile(rf"\.(?:{re.escape(CHECKPOINT)}|run\.json)\.(?:(\d+)\.)?[0-9a-f]{{32}}\.tmp")  # see save


class Superseded(EcgCrnnError):
    """A newer attempt owns this run's checkpoint: this one stops without writing it."""


def _tokens(folder: Path) -> list[int]:
    try:
        return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _TOKEN.fullmatch(p.name)))
    except FileNotFoundError:
        return []


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive flock of folder/lock. A finished run removes the lock file; a waiter that then holds a lock
    on the removed file tries again on the current one (or finds the folder gone: FileNotFoundError)."""
    path = folder / "lock"
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                yield
                return
        finally:
            os.close(fd)


def _private_folder(folder: Path) -> None:
    """Create `folder` 0700, or accept it only when it is a real directory of this user (on a shared base,
    a link or another user's folder would let someone else read or replace the checkpoint)."""
    folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder, 0o700)
    st = os.lstat(folder)
    if not os.path.isdir(folder) or os.path.islink(folder):
        raise EcgCrnnError(
            f"{folder}: not a directory of its own (a link?); refusing to keep a checkpoint there"
        )
    if st.st_uid != os.getuid():
        raise EcgCrnnError(f"{folder}: belongs to another user; refusing to keep a checkpoint there")
    os.chmod(folder, 0o700)


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _attempt_label() -> str:
    return os.environ.get(ATTEMPT_ENV) or f"pid {os.getpid()} on {socket.gethostname()}"


@dataclass(frozen=True)
class ResumeSlot:
    """One attempt's hold on one run's checkpoint folder."""

    folder: Path
    label: str
    fingerprint: str
    token: int

    @property
    def checkpoint(self) -> Path:
        return self.folder / CHECKPOINT

    def current(self) -> bool:
        """This attempt's token is still there and none is higher (the run was neither finished nor taken)."""
        tokens = _tokens(self.folder)
        return self.token in tokens and max(tokens) == self.token

    def _newer(self) -> str:
        tokens = [t for t in _tokens(self.folder) if t > self.token]
        if not tokens:
            return "the run was finished by another attempt"
        try:
            owner = json.loads((self.folder / f"attempt-{max(tokens)}").read_text()).get("attempt", "?")
        except (OSError, ValueError):
            owner = "?"
        return f"a newer attempt ({owner}, token {max(tokens)}) took it over"

    def load(self, read: Callable[[Path], dict]) -> dict | None:
        """The saved state, or None when there is none or it cannot be read (then the run starts afresh)."""
        if not self.checkpoint.is_file():
            return None
        try:
            return read(self.checkpoint)
        except Exception as exc:  # a truncated file, a foreign pickle, a disk error: never a traceback loop
            print(
                f"train {self.label}: {self.checkpoint} cannot be read ({type(exc).__name__}: "
                f"{str(exc)[:200]}); starting afresh (the next epoch's save replaces it)",
                file=sys.stderr,
            )
            return None

    def save(self, write: Callable[[BinaryIO], None]) -> None:
        """Write the state through `write` to a private temporary, then, if this attempt still owns the run,
        rename it onto the checkpoint in one step; otherwise discard it and raise Superseded."""
        tmp = self.folder / f".{CHECKPOINT}.{self.token}.{uuid.uuid4().hex}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileNotFoundError:
            raise Superseded(f"train {self.label}: {self.folder} is gone: {self._newer()}") from None
        except OSError as exc:
            raise EcgCrnnError(f"{self.checkpoint}: cannot be written ({exc.strerror or exc})") from None
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            with _locked(self.folder):
                if not self.current():
                    raise Superseded(
                        f"train {self.label}: {self._newer()}; this attempt (token {self.token}) stops "
                        "without writing its checkpoint"
                    )
                os.replace(tmp, self.checkpoint)
        except FileNotFoundError:
            raise Superseded(f"train {self.label}: {self.folder} is gone: {self._newer()}") from None
        except OSError as exc:  # a full or read-only disk: training cannot go on resumable
            raise EcgCrnnError(f"{self.checkpoint}: cannot be written ({exc.strerror or exc})") from None
        finally:
            tmp.unlink(missing_ok=True)

    def finish(self) -> None:
        """The run is complete: remove its checkpoint and bookkeeping and its folder, if this attempt still owns
        them (a newer attempt may be resuming from them)."""
        try:
            with _locked(self.folder):
                if not self.current():
                    return
                for p in self.folder.iterdir():
                    if (
                        p.name in (CHECKPOINT, "run.json", "lock")
                        or _TOKEN.fullmatch(p.name)
                        or _TEMP.fullmatch(p.name)
                    ):
                        p.unlink(missing_ok=True)
        except FileNotFoundError:
            return
        with contextlib.suppress(OSError):
            self.folder.rmdir()  # only when empty: a file someone else put there stays, with its folder


def folder_name(label: str, fingerprint: str) -> str:
    return f"{label}-{fingerprint[:24]}"


def _claim_token(folder: Path, label: str) -> int:
    with _locked(folder):
        token = max(_tokens(folder), default=0) + 1
        while True:  # O_EXCL: two claimers the lock failed to separate still get distinct tokens
            try:
                fd = os.open(folder / f"attempt-{token}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                break
            except FileExistsError:
                token += 1
        with os.fdopen(fd, "w") as f:
            json.dump({"attempt": _attempt_label(), "run": label}, f)
        for p in folder.iterdir():  # half-written saves of killed or superseded attempts
            if (m := _TEMP.fullmatch(p.name)) and m.group(1) and int(m.group(1)) < token:
                p.unlink(missing_ok=True)
    return token


def claim(base: Path, label: str, fingerprint: str, provenance: dict) -> ResumeSlot:
    """This attempt's slot for the run `label` with `fingerprint`: its folder created private if needed, the
    next fencing token taken, what the fingerprint covers recorded; other runs' folders in `base` untouched."""
    folder = Path(base) / folder_name(label, fingerprint)
    try:
        while True:
            _private_folder(folder)
            try:
                token = _claim_token(folder, label)
                break
            except FileNotFoundError:  # a finishing attempt removed the folder meanwhile: make it again
                continue
        if not (folder / "run.json").is_file():
            _write_private(folder / "run.json", json.dumps(provenance, sort_keys=True, default=str).encode())
    except OSError as exc:  # the base is a file, read-only, full...
        raise EcgCrnnError(f"{base}: cannot keep a checkpoint there ({exc.strerror or exc})") from None
    return ResumeSlot(folder, label, fingerprint, token)


def _flat(tree: dict, prefix: str = "", depth: int = 3) -> dict:
    out = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        out |= _flat(v, key + ".", depth - 1) if isinstance(v, dict) and depth > 1 else {key: v}
    return out


def _differences(old: dict, new: dict) -> list[str]:
    """What differs, by part: settings and data as dotted keys, code as the files that changed."""
    out = []
    for part in ("settings", "data", "code"):
        depth = (
            1 if part == "code" else 3
        )  # code: the file names; settings and data: e.g. splits.train.labels
        a, b = _flat(old.get(part) or {}, depth=depth), _flat(new.get(part) or {}, depth=depth)
        changed = sorted(k for k in {*a, *b} if a.get(k) != b.get(k))
        if changed:
            out.append(f"{part} ({', '.join(changed[:5])}{', ...' if len(changed) > 5 else ''})")
    return out


def others(base: Path, label: str, fingerprint: str, provenance: dict) -> list[str]:
    """What differs between this run and each unfinished checkpoint of the same run (label) in `base` made with
    other settings, code or data: they are not resumed, and not deleted (another experiment may own them)."""
    out = []
    for folder in sorted(Path(base).glob(f"{label}-*")):
        if folder.name == folder_name(label, fingerprint) or not (folder / CHECKPOINT).is_file():
            continue
        try:
            old = json.loads((folder / "run.json").read_text())
        except (OSError, ValueError):
            old = {}
        diff = _differences(old, provenance) if old else ["(unrecorded)"]
        out.append(f"{folder.name}: other {'; '.join(diff) or 'fingerprint'}")
    return out

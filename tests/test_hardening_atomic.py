"""Atomic outputs get the permissions a plain write would give them (0666 / 0777 minus the umask); a killed
writer's temporaries go with the next write, a live writer's never; a crash or a second writer in the middle of a
directory swap never leaves the output missing or half-written."""

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ecg_crnn.atomic import atomic_dir, atomic_path, clean_stale, write_json, write_text


@pytest.fixture(params=[0o022, 0o027, 0o002])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_get_the_umask_mode(tmp_path, umask):
    write_text(tmp_path / "a.txt", "x")
    write_json(tmp_path / "b.json", {"x": 1})
    with atomic_path(tmp_path / "c.bin") as tmp:
        tmp.write_bytes(b"\0")
    (tmp_path / "plain.txt").write_text("x")  # what a normal write gives, for comparison
    for name in ("a.txt", "b.json", "c.bin"):
        assert _mode(tmp_path / name) == 0o666 & ~umask == _mode(tmp_path / "plain.txt")


def test_directories_get_the_umask_mode(tmp_path, umask):
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "f.txt").write_text("x")
    (tmp_path / "plain").mkdir()
    assert _mode(tmp_path / "out") == 0o777 & ~umask == _mode(tmp_path / "plain")
    assert _mode(tmp_path / "out" / "f.txt") == 0o666 & ~umask
    with atomic_dir(tmp_path / "out") as tmp:  # replacing an existing directory
        (tmp / "g.txt").write_text("y")
    assert _mode(tmp_path / "out") == 0o777 & ~umask
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["g.txt"]


# ---- interrupted and concurrent writes ---------------------------------------------------------------------

_KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from ecg_crnn.atomic import atomic_dir, atomic_path
final, kind = Path(sys.argv[1]), sys.argv[2]
with (atomic_dir(final) if kind == "dir" else atomic_path(final)) as tmp:
    target = tmp / "big.bin" if kind == "dir" else tmp
    target.write_bytes(b"x" * 1_000_000)
    os.kill(os.getpid(), signal.SIGKILL)  # no chance to clean up
"""


def _temporaries(final):
    return sorted(p.name for p in final.parent.iterdir() if p.name.startswith(f".{final.name}."))


def _python(code: str, *args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], **kwargs)


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path, kind):
    final = tmp_path / "out"
    left = []
    for _ in range(2):
        assert _python(_KILLED_WRITER, final, kind).wait() == -signal.SIGKILL
        left.append(_temporaries(final))
    # What a kill leaves behind: one temporary each time, the first one removed when the second writer started.
    assert len(left[0]) == len(left[1]) == 1 and left[0] != left[1] and not final.exists()
    if kind == "dir":
        with atomic_dir(final) as tmp:
            (tmp / "f.txt").write_text("whole")
    else:
        write_text(final, "whole")
    assert _temporaries(final) == []
    assert (final / "f.txt" if kind == "dir" else final).read_text() == "whole"


_PAUSED_WRITER = """
import sys
from pathlib import Path
from ecg_crnn.atomic import atomic_dir
with atomic_dir(Path(sys.argv[1])) as tmp:
    (tmp / "f.txt").write_text("slow")
    print("building", flush=True)
    sys.stdin.readline()  # the parent writes meanwhile
"""


def test_a_live_writers_temporary_is_never_removed(tmp_path):
    final = tmp_path / "out"
    slow = _python(_PAUSED_WRITER, final, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert slow.stdout.readline() == "building\n"
    with atomic_dir(final) as tmp:  # a second writer starts, cleans stale temporaries and finishes first
        (tmp / "f.txt").write_text("fast")
    assert len(_temporaries(final)) == 1  # the slow writer's tree, still being built
    slow.communicate("go\n")
    assert slow.returncode == 0
    assert (final / "f.txt").read_text() == "slow" and _temporaries(final) == []  # the last to finish wins


_DIES_AFTER_FIRST_RENAME = """
import os, signal, sys
from pathlib import Path
import ecg_crnn.atomic as atomic
final = Path(sys.argv[1])

def dying(rename):
    def wrapped(*args, **kwargs):
        result = rename(*args, **kwargs)
        if any(isinstance(a, (str, os.PathLike)) and Path(a) == final for a in args):
            os.kill(os.getpid(), signal.SIGKILL)  # right after the first rename that moved the output
        return result
    return wrapped

os.rename, os.replace = dying(os.rename), dying(os.replace)
if sys.argv[2] == "no-exchange":
    atomic._exchange = lambda a, b: False  # as on a file system without RENAME_EXCHANGE (NFS)
elif hasattr(atomic, "_exchange"):
    atomic._exchange = dying(atomic._exchange)
with atomic.atomic_dir(final) as tmp:
    (tmp / "v.txt").write_text("new")
"""


def test_a_crash_in_the_swap_never_leaves_the_output_missing(tmp_path):
    final = tmp_path / "out"
    with atomic_dir(final) as tmp:
        (tmp / "v.txt").write_text("old")
    assert _python(_DIES_AFTER_FIRST_RENAME, final, "exchange").wait() == -signal.SIGKILL
    assert (final / "v.txt").read_text() == "new"  # one step: the new tree is in place, whole
    with atomic_dir(final) as tmp:
        (tmp / "v.txt").write_text("next")
    assert _temporaries(final) == []  # the old tree, left under a temporary's name, went with the next write


def test_without_exchange_a_crash_between_the_renames_is_repaired_by_the_next_writer(tmp_path):
    final = tmp_path / "out"
    with atomic_dir(final) as tmp:
        (tmp / "v.txt").write_text("old")
    assert _python(_DIES_AFTER_FIRST_RENAME, final, "no-exchange").wait() == -signal.SIGKILL
    assert not final.exists()  # the fallback's one gap: the output was set aside when the crash came
    clean_stale(final)  # what every write does first
    assert (final / "v.txt").read_text() == "old" and _temporaries(final) == []


def test_a_second_writer_in_the_middle_of_a_swap_leaves_both_whole(tmp_path, monkeypatch):
    """Writer A is interrupted right after its swap's first rename by writer B, which runs to its end; then A
    goes on. Both succeed, the output is one whole version (B's: it finished last), nothing is left over."""
    import ecg_crnn.atomic as atomic

    final = tmp_path / "out"
    with atomic_dir(final) as tmp:
        (tmp / "v.txt").write_text("old")
    state = {"interrupted": False}

    def interrupting(rename):
        def wrapped(*args, **kwargs):
            result = rename(*args, **kwargs)
            if not state["interrupted"] and any(
                isinstance(a, str | os.PathLike) and Path(a) == final for a in args
            ):
                state["interrupted"] = True
                with atomic_dir(final) as tmp_b:
                    (tmp_b / "v.txt").write_text("B")
            return result

        return wrapped

    monkeypatch.setattr(os, "rename", interrupting(os.rename))
    monkeypatch.setattr(os, "replace", interrupting(os.replace))
    if hasattr(atomic, "_exchange"):
        monkeypatch.setattr(atomic, "_exchange", interrupting(atomic._exchange))
    with atomic_dir(final) as tmp_a:
        (tmp_a / "v.txt").write_text("A")
    monkeypatch.undo()
    assert state["interrupted"]
    assert [p.name for p in final.iterdir()] == ["v.txt"] and (final / "v.txt").read_text() == "B"
    assert _temporaries(final) == []

"""Atomic outputs get the permissions a plain write would give them: 0666 / 0777 minus the umask."""

import os
import stat

import pytest

from ecg_crnn.atomic import atomic_dir, atomic_path, write_json, write_text


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

"""Resumes that cannot go stale: a checkpoint is resumed only by the same settings, code and data content; runs
sharing a resume base never touch each other's checkpoints; a user's --resume-dir keeps its other files; the
run's folder and files are private; a stale attempt is stopped by its fencing token; an unreadable checkpoint is
a message and a fresh start."""

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from ecg_crnn import provenance
from ecg_crnn.errors import EcgCrnnError
from ecg_crnn.layout import RunKey
from ecg_crnn.provenance import is_code_dep
from ecg_crnn.resume import Superseded, claim
from ecg_crnn.stages import train

from .helpers.params import SMALL, params
from .helpers.paths import REPO
from .helpers.processes import checkpoint_in, kill_after_first_checkpoint, train_cmd

TINY = {**SMALL, "models.channels": [8, 8], "models.hidden": 8, "train.epochs": 2, "train.patience": None}
KEY = RunKey("cnn", 2.5, 0)


class _Stop(Exception):
    pass


def _stop_after_first_epoch(record):
    raise _Stop  # the run is interrupted right after its first checkpoint


@pytest.fixture
def data(prepared, tmp_path):
    """A private copy of the prepared data, to change labels or signals in."""
    for name in ("filtered", "segmented"):
        shutil.copytree(prepared / name, tmp_path / name)
    return tmp_path


def _paths(data: Path, out: Path, resume: Path | None) -> train.Paths:
    return train.Paths(data / "filtered", data / "segmented", out, resume)


def _interrupt(p, paths) -> None:
    with pytest.raises(_Stop):
        train.run(p, KEY, paths, progress=False, on_epoch=_stop_after_first_epoch)


def _flip_a_training_label(data: Path) -> None:
    labels = pd.read_csv(data / "filtered/labels.csv")
    row = int(pd.read_csv(data / "segmented/rot0/split.csv").query("split == 'train'")["row"].iloc[0])
    column = labels.columns[4]  # the first class
    labels.loc[row, column] = 1 - labels.loc[row, column]
    labels.to_csv(data / "filtered/labels.csv", index=False)


def _change_one_training_sample(data: Path) -> None:
    signals = np.load(data / "filtered/signals.npy", mmap_mode="r+")
    row = int(pd.read_csv(data / "segmented/rot0/split.csv").query("split == 'train'")["row"].iloc[3])
    signals[row, 5, 100] += 7
    signals.flush()


def _change_the_standardization(data: Path) -> None:
    std = json.loads((data / "segmented/rot0/standardization.json").read_text())
    std["std"][0] *= 1.000001
    (data / "segmented/rot0/standardization.json").write_text(json.dumps(std))


def _change_windows_py(monkeypatch) -> None:
    real = provenance.sha256_file
    monkeypatch.setattr(provenance, "sha256_file", lambda p: "edited" if p.name == "windows.py" else real(p))


CHANGES = {
    "nothing": None,
    "a label": _flip_a_training_label,
    "one signal sample": _change_one_training_sample,
    "the standardization": _change_the_standardization,
}


@pytest.mark.parametrize("change", [*CHANGES, "data/windows.py"])
def test_a_resume_after_a_change_of_data_or_code_starts_afresh(data, tmp_path, capsys, monkeypatch, change):
    p = params(TINY)
    paths = _paths(data, tmp_path / "out", tmp_path / "resume")
    _interrupt(p, paths)
    assert checkpoint_in(tmp_path / "resume") is not None
    if change == "data/windows.py":
        _change_windows_py(monkeypatch)
    elif CHANGES[change]:
        CHANGES[change](data)
    capsys.readouterr()
    summary = train.run(p, KEY, paths, progress=False)
    err = capsys.readouterr().err
    assert summary["epochs_run"] == 2
    if change == "nothing":  # the control: the same run resumes
        assert "resuming after epoch 1" in err
    else:
        assert "resuming after epoch" not in err and "starting afresh" in err
        expected = {
            "a label": "other data (splits.train.labels)",
            "one signal sample": "other data (splits.train.signals)",
            "the standardization": "standardization)",  # it standardizes the signals too
            "data/windows.py": "other code (data/windows.py)",
        }[change]
        assert expected in err, err


def test_runs_sharing_a_resume_root_never_touch_each_others_checkpoints(data, tmp_path, monkeypatch):
    """Two experiments (other learning rates) with the same output path and one shared root: each keeps its own
    checkpoint, and the first to finish (here with `--out .`) removes only its own."""
    monkeypatch.setenv(train.RESUME_ROOT_ENV, str(tmp_path / "shared"))
    slow, fast = params({**TINY, "train.lr": 0.003}), params({**TINY, "train.lr": 0.001})
    _interrupt(slow, _paths(data, tmp_path / "models", None))
    (kept,) = (tmp_path / "shared").glob("*/checkpoint.pt")
    before = kept.read_bytes()
    _interrupt(fast, _paths(data, tmp_path / "models", None))
    assert len(list((tmp_path / "shared").glob("*/checkpoint.pt"))) == 2  # two folders, named by fingerprint
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    train.run(fast, KEY, _paths(data, Path("."), None), progress=False)
    assert list((tmp_path / "shared").glob("*/checkpoint.pt")) == [kept] and kept.read_bytes() == before


def test_a_named_resume_dir_keeps_its_other_files_and_the_run_is_private(data, tmp_path, capsys):
    mine = tmp_path / "my-resume"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    old = os.umask(0)
    try:
        _interrupt(params(TINY), _paths(data, tmp_path / "out", mine))
    finally:
        os.umask(old)
    checkpoint = checkpoint_in(mine)
    assert stat.S_IMODE(checkpoint.parent.stat().st_mode) == 0o700
    for f in checkpoint.parent.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f.name
    train.run(params(TINY), KEY, _paths(data, tmp_path / "out", mine), progress=False)
    assert "resuming after epoch 1" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]  # the run's own folder went, nothing else


def test_the_fencing_token_stops_a_stale_writer(tmp_path):
    """Attempt 1 is slow (its flow run was crashed by the coordinator); attempt 2 takes the run over. Whatever
    the locks do, attempt 1 can neither write the checkpoint nor remove it."""
    stale = claim(tmp_path, "cnn-2.5s-seed0", "f" * 64, {})
    stale.save(lambda f: f.write(b"epoch 1 by attempt 1"))
    killed_mid_save = stale.folder / f".checkpoint.pt.1.{'a' * 32}.tmp"
    killed_mid_save.write_bytes(b"half")
    newer = claim(tmp_path, "cnn-2.5s-seed0", "f" * 64, {})
    assert not killed_mid_save.exists()  # an older attempt's half-written save goes when a newer one claims
    assert (stale.token, newer.token) == (1, 2) and stale.folder == newer.folder
    with pytest.raises(Superseded, match="newer attempt .* token 2"):
        stale.save(lambda f: f.write(b"epoch 2 by attempt 1"))
    assert newer.checkpoint.read_bytes() == b"epoch 1 by attempt 1"
    newer.save(lambda f: f.write(b"epoch 2 by attempt 2"))
    (newer.folder / f".checkpoint.pt.2.{'b' * 32}.tmp").write_bytes(b"half")
    stale.finish()  # the stale attempt ends: it must not remove what attempt 2 resumes from
    assert newer.checkpoint.read_bytes() == b"epoch 2 by attempt 2"
    newer.finish()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(Superseded):  # the run is finished: a straggler still cannot write
        stale.save(lambda f: f.write(b"late"))
    assert list(tmp_path.iterdir()) == []


def test_a_stale_training_run_stops_at_its_next_save(data, tmp_path):
    p = params({**TINY, "train.epochs": 3})
    paths = _paths(data, tmp_path / "out", tmp_path / "resume")
    seen = []

    def newer_attempt_starts(record):  # after epoch 1 another worker claims the run (the grid resubmitted it)
        if not seen:
            checkpoint = checkpoint_in(tmp_path / "resume")
            fingerprint = torch.load(checkpoint, weights_only=True)["fingerprint"]
            seen.append(claim(tmp_path / "resume", train.run_label(KEY), fingerprint, {}))

    with pytest.raises(Superseded, match="stops without writing its checkpoint"):
        train.run(p, KEY, paths, progress=False, on_epoch=newer_attempt_starts)
    assert torch.load(checkpoint_in(tmp_path / "resume"), weights_only=True)["epoch"] == 1  # not overwritten
    assert not (tmp_path / "out" / "model.pt").exists()


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", b"\x80\x04not a pickle"])
def test_an_unreadable_checkpoint_is_a_message_and_a_fresh_start(data, tmp_path, capsys, content):
    paths = _paths(data, tmp_path / "out", tmp_path / "resume")
    _interrupt(params(TINY), paths)
    checkpoint_in(tmp_path / "resume").write_bytes(content)
    capsys.readouterr()
    summary = train.run(params(TINY), KEY, paths, progress=False)
    err = capsys.readouterr().err
    assert "cannot be read" in err and "starting afresh" in err and summary["epochs_run"] == 2


def test_a_resume_folder_that_is_a_link_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "base").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "base" / f"cnn-2.5s-seed0-{'a' * 24}")
    with pytest.raises(EcgCrnnError, match="not a directory of its own"):
        claim(tmp_path / "base", "cnn-2.5s-seed0", "a" * 64, {})
    assert list((tmp_path / "elsewhere").iterdir()) == []


def _lines_until(proc: subprocess.Popen, marker: str) -> list[str]:
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if marker in line:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return lines


def test_a_real_edit_deep_in_the_import_closure_starts_afresh(prepared, tmp_path, write_params):
    """The training CLI run from a copy of the package: killed after its first checkpoint; started again it
    resumes; after an edit of data/windows.py (imported by dataset.py, not by training.py) it starts afresh. The
    code the fingerprint covers is exactly the train stage's code deps in dvc.yaml (the list DVC uses)."""
    shutil.copytree(
        REPO / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src")}
    cfg = write_params({**TINY, "train.epochs": 50})  # long enough never to finish here
    cmd = train_cmd(
        cfg, prepared, tmp_path / "out", tmp_path / "resume", "cnn", cli=(sys.executable, "-m", "ecg_crnn")
    )
    kill_after_first_checkpoint(cmd, tmp_path / "resume", seconds=300, grace=0, env=env)
    run_json = json.loads((checkpoint_in(tmp_path / "resume").parent / "run.json").read_text())
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["train"]
    listed = {d.removeprefix("src/ecg_crnn/") for d in stage["deps"] if d.startswith("src/ecg_crnn/")}
    assert set(run_json["code"]) == {d for d in listed if is_code_dep(d)}
    again = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    assert any("resuming after epoch" in line for line in _lines_until(again, "resuming after epoch"))
    windows = tmp_path / "src/ecg_crnn/data/windows.py"
    windows.write_text(windows.read_text() + "\n# an edit\n")
    edited = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    lines = _lines_until(edited, "epoch 1/50")
    assert not any("resuming after epoch" in line for line in lines), lines
    assert any("other code (data/windows.py)" in line for line in lines), lines
    assert any("epoch 1/50" in line for line in lines), lines


def test_a_resume_base_that_cannot_hold_checkpoints_is_named(tmp_path):
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(EcgCrnnError, match="a-file: cannot keep a checkpoint there"):
        claim(tmp_path / "a-file", "cnn-2.5s-seed0", "a" * 64, {})

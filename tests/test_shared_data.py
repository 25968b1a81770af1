"""One standardized copy of each split per machine: the same values as a split loaded in memory, built once however
many jobs ask for it at once, never read half-written, and training on it gives the same model bytes."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np

from ecg_crnn.data.signals import SignalCache
from ecg_crnn.dataset import load_standardized, load_study_data
from ecg_crnn.layout import rotation_dir
from ecg_crnn.shared_data import CACHE_ENV, shared_array

from .helpers.params import SMALL, params
from .helpers.paths import REPO


def _fresh(prepared, split="train"):
    """The split as dataset.py loads it without the host cache."""
    import json

    import pandas as pd

    cache = SignalCache.open(prepared / "filtered")
    table = pd.read_csv(rotation_dir(prepared / "segmented", 0) / "split.csv")
    std = json.loads((rotation_dir(prepared / "segmented", 0) / "standardization.json").read_text())
    rows = table.loc[table["split"] == split, "row"].to_numpy()
    return load_standardized(cache, rows, np.float32(std["mean"]), np.float32(std["std"]))


def test_the_shared_split_holds_the_in_memory_values_and_is_built_once(prepared, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    data = load_study_data(prepared / "filtered", prepared / "segmented", 2.5, splits=("train", "val"))
    x = data.splits["train"].x
    assert isinstance(x, np.memmap) and not x.flags.writeable  # mapped, read-only
    assert np.array_equal(x, _fresh(prepared, "train"))
    assert np.array_equal(data.splits["val"].x, _fresh(prepared, "val"))
    files = sorted(p.name for p in (tmp_path / "cache").glob("*.npy"))
    assert len(files) == 2  # one per split
    again = load_study_data(prepared / "filtered", prepared / "segmented", 10, splits=("train",))
    assert sorted(p.name for p in (tmp_path / "cache").glob("*.npy")) == files  # the window is no part of it
    assert os.path.samefile(again.splits["train"].x.filename, x.filename)


def test_cache_off_loads_in_memory_with_the_same_values(prepared, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, "off")
    data = load_study_data(prepared / "filtered", prepared / "segmented", 2.5, splits=("train",))
    x = data.splits["train"].x
    assert not isinstance(x, np.memmap) and x.flags.writeable
    assert np.array_equal(x, _fresh(prepared, "train"))


_BUILDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import numpy as np
    from ecg_crnn.shared_data import shared_array

    def fill(out):
        out[:] = 1.0
        print("filling", flush=True)
        if sys.argv[2] == "hang":
            time.sleep(600)  # killed here, mid-write

    a = shared_array("k", (64, 1000), fill, Path(sys.argv[1]))
    print("built" if a.sum() == 64000 else "wrong", flush=True)
    """
)


def _builder(root, mode):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen(
        [sys.executable, "-c", _BUILDER, str(root), mode], stdout=subprocess.PIPE, text=True, env=env
    )


def test_a_builder_killed_mid_write_leaves_nothing_that_is_read(tmp_path):
    root = tmp_path / "cache"
    proc = _builder(root, "hang")
    assert proc.stdout.readline().strip() == "filling"  # inside fill, holding the lock
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (root / "k.npy").exists()  # the killed builder's file was never renamed into place
    assert len(list(root.glob(".k.npy.*.tmp"))) == 1  # its half-written temporary file
    out, _ = _builder(root, "ok").communicate(timeout=120)
    assert out.split() == ["filling", "built"]  # the next job built the file afresh
    assert not list(root.glob(".k.npy.*.tmp"))  # and removed the dead builder's temporary file
    calls = []
    shared_array("k", (64, 1000), lambda out: calls.append(1), root)
    assert not calls  # from now on every job maps the one file


def test_training_on_the_shared_split_gives_the_same_model_bytes(prepared, tmp_path, monkeypatch):
    from ecg_crnn.layout import RunKey
    from ecg_crnn.stages import train

    p = params({**SMALL, "train.epochs": 1})
    key = RunKey("cnn_gru1", 2.5, 0)
    digests = []
    for i, cache in enumerate([str(tmp_path / "cache"), "off"]):
        monkeypatch.setenv(CACHE_ENV, cache)
        out = tmp_path / f"run{i}"
        paths = train.Paths(prepared / "filtered", prepared / "segmented", out, tmp_path / f"resume{i}")
        train.run(p, key, paths, progress=False)
        digests.append((out / "model.pt").read_bytes())
    assert list((tmp_path / "cache").glob("*.npy")), "the first run should have used the host cache"
    assert digests[0] == digests[1]

"""The filter and segment stages on real and synthetic PTB-XL, and what they do with bad input."""

import json

import numpy as np
import pandas as pd
import pytest
import wfdb

from ecg_crnn.cli import main
from ecg_crnn.config import DataSettings, FilterSettings, SegmentSettings
from ecg_crnn.data.cache import SignalCache
from ecg_crnn.data.filtering import load_labels, run_filter
from ecg_crnn.data.segment import eval_starts, run_segment
from ecg_crnn.errors import EcgCrnnError


def _snapshot(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_real_records_need_the_present_switch(shared_ptbxl, tmp_path):
    with pytest.raises(
        EcgCrnnError, match=r"20,911 of 21,388 records named in .*ptbxl_database\.csv are missing"
    ):
        run_filter(shared_ptbxl, tmp_path / "f", DataSettings(), FilterSettings(), progress=False)
    assert not (tmp_path / "f").exists()
    summary = run_filter(
        shared_ptbxl, tmp_path / "f", DataSettings(), FilterSettings(records="present"), progress=False
    )
    assert summary["records"] == 477  # the 488 present minus 11 without a diagnostic statement
    table, classes = load_labels(tmp_path / "f")
    assert all(table[c].sum() > 0 for c in classes)
    cache = SignalCache.open(tmp_path / "f")
    assert cache.signals.shape == (477, 12, 1000) and cache.fs == 100
    # The cache holds exactly what wfdb reads, row for row.
    for row in (0, 200, 476):
        expected, _ = wfdb.rdsamp(str(shared_ptbxl / table["filename"][row]))
        np.testing.assert_allclose(cache.physical([row])[0].T, expected, atol=1e-6)


def test_task_switches(synthetic_dir, tmp_path):
    s = run_filter(
        synthetic_dir, tmp_path / "a", DataSettings(), FilterSettings(task="superdiagnostic"), progress=False
    )
    assert set(s["classes"]) <= {"NORM", "MI", "HYP", "CD", "STTC"}
    r = run_filter(
        synthetic_dir, tmp_path / "b", DataSettings(), FilterSettings(task="rhythm"), progress=False
    )
    assert set(r["classes"]) <= {"SR", "AFIB", "STACH", "SBRAD", "SARRH"} and r["records"] == 300
    m = run_filter(
        synthetic_dir, tmp_path / "c", DataSettings(), FilterSettings(min_class_count=40), progress=False
    )
    assert all(n >= 40 for n in m["positives"].values())
    v = run_filter(
        synthetic_dir, tmp_path / "d", DataSettings(), FilterSettings(validated_only=True), progress=False
    )
    db = pd.read_csv(synthetic_dir / "ptbxl_database.csv")
    assert set(load_labels(tmp_path / "d")[0]["ecg_id"]) <= set(db.loc[db["validated_by_human"], "ecg_id"])
    assert v["records"] < 300


@pytest.mark.parametrize("damage", ["truncate", "checksum", "missing", "column"])
def test_bad_input_leaves_previous_output_untouched(synthetic_copy, tmp_path, write_params, capsys, damage):
    out = tmp_path / "filtered"
    params = write_params({})
    args = ["--params", str(params), "-q", "filter", "--raw", str(synthetic_copy), "--out", str(out)]
    assert main(args) == 0
    before = _snapshot(out)
    rec = synthetic_copy / "records100" / "00000" / "00042_lr"
    if damage == "truncate":
        rec.with_suffix(".dat").write_bytes(rec.with_suffix(".dat").read_bytes()[:5000])
        expected = "00042_lr.dat: 5000 bytes"
    elif damage == "checksum":
        hea = rec.with_suffix(".hea")
        lines = hea.read_text().splitlines()
        parts = lines[3].split()
        parts[6] = str((int(parts[6]) + 1) % 65536)
        lines[3] = " ".join(parts)
        hea.write_text("\n".join(lines) + "\n")
        expected = "00042_lr.hea: lead III checksum"
    elif damage == "missing":
        rec.with_suffix(".hea").unlink()
        expected = "1 of 300 records named in"
    else:
        db = pd.read_csv(synthetic_copy / "ptbxl_database.csv").drop(columns=["strat_fold"])
        db.to_csv(synthetic_copy / "ptbxl_database.csv", index=False)
        expected = "missing required column(s) 'strat_fold'"
    assert main(args) == 1
    assert expected in capsys.readouterr().err
    assert _snapshot(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".filtered")]


def test_segment_fits_standardization_on_training_folds_only(synthetic_dir, tmp_path):
    run_filter(synthetic_dir, tmp_path / "f", DataSettings(), FilterSettings(), progress=False)
    info = run_segment(tmp_path / "f", tmp_path / "s", SegmentSettings())
    split = pd.read_csv(tmp_path / "s" / "split.csv")
    table, _ = load_labels(tmp_path / "f")
    assert set(split.loc[split.split == "test", "strat_fold"]) == {10}
    assert set(split.loc[split.split == "val", "strat_fold"]) == {9}
    assert info["counts"]["train"] == int(table["strat_fold"].between(1, 8).sum())
    # Independent computation: load every training record and take numpy's per-lead mean/std.
    cache = SignalCache.open(tmp_path / "f")
    x = cache.physical(split.loc[split.split == "train", "row"].to_numpy()).astype(np.float64)
    std = json.loads((tmp_path / "s" / "standardization.json").read_text())
    np.testing.assert_allclose(std["mean"], x.mean(axis=(0, 2)), atol=1e-9)
    np.testing.assert_allclose(std["std"], x.std(axis=(0, 2)), rtol=1e-6)
    windows = json.loads((tmp_path / "s" / "windows.json").read_text())
    assert (windows["window"], windows["stride"]) == (250, 125)
    assert windows["eval_starts"] == [0, 125, 250, 375, 500, 625, 750]


def test_patient_never_crosses_splits(synthetic_dir, tmp_path):
    run_filter(synthetic_dir, tmp_path / "f", DataSettings(), FilterSettings(), progress=False)
    run_segment(tmp_path / "f", tmp_path / "s", SegmentSettings())
    split = pd.read_csv(tmp_path / "s" / "split.csv").merge(load_labels(tmp_path / "f")[0], on="ecg_id")
    assert split.groupby("patient_id")["split"].nunique().max() == 1


def test_eval_windows_cover_the_tail():
    assert eval_starts(1000, 300, 125) == [0, 125, 250, 375, 500, 625, 700]


def test_segment_rejects_windows_longer_than_records(synthetic_dir, tmp_path):
    run_filter(synthetic_dir, tmp_path / "f", DataSettings(), FilterSettings(), progress=False)
    with pytest.raises(EcgCrnnError, match="segment.window_s: 12.0 s is longer than the records"):
        run_segment(tmp_path / "f", tmp_path / "s", SegmentSettings(window_s=12.0))

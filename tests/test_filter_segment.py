"""The filter and segment stages on real and synthetic PTB-XL, and what they do with bad input."""

import json

import numpy as np
import pandas as pd
import pytest
import wfdb

from ecg_crnn.cli import main
from ecg_crnn.data.labels import load_labels
from ecg_crnn.data.signals import SignalCache
from ecg_crnn.data.windows import eval_starts, window_layout
from ecg_crnn.errors import EcgCrnnError

from .helpers.stages import filter_records, segment_records


def _snapshot(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_real_records_need_the_present_switch(shared_ptbxl, tmp_path):
    with pytest.raises(
        EcgCrnnError, match=r"20,911 of 21,388 records named in .*ptbxl_database\.csv are missing"
    ):
        filter_records(shared_ptbxl, tmp_path / "f")
    assert not (tmp_path / "f").exists()
    summary = filter_records(shared_ptbxl, tmp_path / "f", records="present")
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
    s = filter_records(synthetic_dir, tmp_path / "a", task="superdiagnostic")
    assert set(s["classes"]) == {"NORM", "MI", "HYP", "CD", "STTC", "rhythm"}
    r = filter_records(synthetic_dir, tmp_path / "b", task="rhythm")
    assert set(r["classes"]) == {"SR", "SVARR", "BIGU", "SARRH"} and r["records"] == 300
    m = filter_records(synthetic_dir, tmp_path / "c", min_class_count=40)
    assert all(n >= 40 for n in m["positives"].values())
    v = filter_records(synthetic_dir, tmp_path / "d", validated_only=True)
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
    filter_records(synthetic_dir, tmp_path / "f")
    info = segment_records(tmp_path / "f", tmp_path / "s")
    split = pd.read_csv(tmp_path / "s" / "rot0" / "split.csv")
    table, _ = load_labels(tmp_path / "f")
    assert set(split.loc[split.split == "test", "strat_fold"]) == {10}
    assert set(split.loc[split.split == "val", "strat_fold"]) == {9}
    assert info["counts"]["train"] == int(table["strat_fold"].between(1, 8).sum())
    # Independent computation: load every training record and take numpy's per-lead mean/std.
    cache = SignalCache.open(tmp_path / "f")
    x = cache.physical(split.loc[split.split == "train", "row"].to_numpy()).astype(np.float64)
    std = json.loads((tmp_path / "s" / "rot0" / "standardization.json").read_text())
    np.testing.assert_allclose(std["mean"], x.mean(axis=(0, 2)), atol=1e-9)
    np.testing.assert_allclose(std["std"], x.std(axis=(0, 2)), rtol=1e-6)
    layout = json.loads((tmp_path / "s" / "layout.json").read_text())
    assert layout == {"fs": 100.0, "record_samples": 1000, "stride": 125}
    assert window_layout(layout, 2.5) == (250, [0, 125, 250, 375, 500, 625, 750])
    assert window_layout(layout, 10) == (1000, [0])  # the whole record: scored once


def test_patient_never_crosses_splits_on_the_real_database(shared_ptbxl, tmp_path):
    """The real pipeline (filter, then segment) on PTB-XL's own CSV: no patient in two splits, and the
    folds are the database's strat_fold, record for record."""
    filter_records(shared_ptbxl, tmp_path / "f", records="present")
    segment_records(tmp_path / "f", tmp_path / "s")
    split = pd.read_csv(tmp_path / "s" / "rot0" / "split.csv")
    labels = load_labels(tmp_path / "f")[0]
    assert len(split) == len(labels) == 477 and set(split["split"]) == {"train", "val", "test"}
    joined = split.merge(labels[["ecg_id", "patient_id"]], on="ecg_id", how="left", validate="1:1")
    assert joined["patient_id"].notna().all()
    splits_per_patient = joined.groupby("patient_id")["split"].nunique()
    assert (splits_per_patient == 1).all(), splits_per_patient[splits_per_patient > 1].head()
    # Patients with several records are there, so the check above is not vacuous.
    assert (joined.groupby("patient_id").size() > 1).sum() > 0
    db = pd.read_csv(shared_ptbxl / "ptbxl_database.csv", usecols=["ecg_id", "patient_id", "strat_fold"])
    check = joined.merge(db, on="ecg_id", how="left", suffixes=("", "_db"), validate="1:1")
    assert (check["strat_fold"] == check["strat_fold_db"]).all()
    assert (check["patient_id"] == check["patient_id_db"]).all()
    expected = check["strat_fold_db"].map(lambda f: "test" if f == 10 else "val" if f == 9 else "train")
    assert (check["split"] == expected).all()
    # Rows point at the record of that ecg_id in the cache.
    assert (labels["ecg_id"].to_numpy()[split["row"]] == split["ecg_id"].to_numpy()).all()


def test_eval_windows_cover_the_tail():
    assert eval_starts(1000, 300, 125) == [0, 125, 250, 375, 500, 625, 700]


def test_windows_longer_than_records_are_refused():
    layout = {"fs": 100.0, "record_samples": 1000, "stride": 125}
    with pytest.raises(EcgCrnnError, match="window 12 s: longer than the records \\(10 s\\)"):
        window_layout(layout, 12.0)
    with pytest.raises(EcgCrnnError, match="window 0.001 s: under one sample at 100 Hz"):
        window_layout(layout, 0.001)


# --- Hardening: records named outside the dataset, headers that change what the numbers mean -----------


def _set_filename(root, ecg_id: int, filename: str) -> None:
    db = pd.read_csv(root / "ptbxl_database.csv")
    db.loc[db["ecg_id"] == ecg_id, "filename_lr"] = filename
    db.to_csv(root / "ptbxl_database.csv", index=False)


@pytest.mark.parametrize("kind", ["relative", "absolute"])
def test_database_path_out_of_the_dataset_is_refused(synthetic_copy, tmp_path, kind):
    outside = tmp_path / "outside"
    outside.mkdir()
    for ext in (".hea", ".dat"):  # a readable record really is there
        src = synthetic_copy / "records100" / "00000" / f"00007_lr{ext}"
        (outside / f"00007_lr{ext}").write_bytes(src.read_bytes())
    filename = "../outside/00007_lr" if kind == "relative" else str(outside / "00007_lr")
    _set_filename(synthetic_copy, 7, filename)
    with pytest.raises(EcgCrnnError) as err:
        filter_records(synthetic_copy, tmp_path / "f")
    message = str(err.value)
    assert "ptbxl_database.csv" in message and "ecg_id 7" in message and filename in message
    assert not (tmp_path / "f").exists()


def _write_fmt16(base, digital, leads, gains, baselines, units, fs=100):
    """A format-16 WFDB record written by hand (digital (leads, samples)), checksums matching."""
    digital = np.asarray(digital, dtype="<i2")
    checksums = digital.astype(np.int64).sum(axis=1) % 65536
    lines = [f"{base.name} {len(leads)} {fs} {digital.shape[1]}"]
    for lead, g, b, u, first, c in zip(leads, gains, baselines, units, digital[:, 0], checksums, strict=True):
        lines.append(f"{base.name}.dat 16 {g}({b})/{u} 16 0 {int(first)} {int(c)} 0 {lead}")
    base.with_suffix(".hea").write_text("\n".join(lines) + "\n")
    base.with_suffix(".dat").write_bytes(digital.T.tobytes())


def _rec(root, ecg_id):
    return root / "records100" / "00000" / f"{ecg_id:05d}_lr"


def _set_header_fs(base, fs):
    hea = base.with_suffix(".hea")
    lines = hea.read_text().splitlines()
    parts = lines[0].split()
    parts[2] = str(fs)
    lines[0] = " ".join(parts)
    hea.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("ecg_id", [1, 42])
def test_record_at_another_sampling_rate_is_refused(synthetic_copy, tmp_path, ecg_id):
    _set_header_fs(_rec(synthetic_copy, ecg_id), 500)
    with pytest.raises(EcgCrnnError, match=rf"{ecg_id:05d}_lr\.hea: 500 Hz, but data\.sampling_rate is 100"):
        filter_records(synthetic_copy, tmp_path / "f")


def test_record_with_other_lead_names_is_refused(synthetic_copy, tmp_path):
    hea = _rec(synthetic_copy, 42).with_suffix(".hea")
    hea.write_text(hea.read_text().replace(" V6\n", " V7\n"))
    with pytest.raises(EcgCrnnError, match=r"00042_lr\.hea: leads .*V7.* the first record's .*V6"):
        filter_records(synthetic_copy, tmp_path / "f")


def test_record_in_unknown_units_is_refused(synthetic_copy, tmp_path):
    hea = _rec(synthetic_copy, 42).with_suffix(".hea")
    hea.write_text(hea.read_text().replace("/mV 16 0", "/mmHg 16 0", 1))
    with pytest.raises(EcgCrnnError, match=r"00042_lr\.hea: lead I is in 'mmHg'"):
        filter_records(synthetic_copy, tmp_path / "f")


def test_leads_order_units_gain_and_baseline_give_the_right_physical_signal(synthetic_copy, tmp_path):
    """Three records rewritten so their digital numbers mean something else: leads in reverse order, uV
    instead of mV, other gains with nonzero baselines. The cache must hold the same signal in mV, in the
    first record's lead order."""
    originals = {i: wfdb.rdsamp(str(_rec(synthetic_copy, i)))[0] for i in (42, 43, 44)}  # (T, leads) mV
    header = wfdb.rdheader(str(_rec(synthetic_copy, 42)))
    leads, gain = header.sig_name, header.adc_gain[0]
    digital = {i: np.round(originals[i].T * gain).astype(np.int16) for i in originals}
    n = len(leads)
    _write_fmt16(_rec(synthetic_copy, 42), digital[42][::-1], leads[::-1], [gain] * n, [0] * n, ["mV"] * n)
    # uV with 1 adu/uV: the same digital numbers as 1000 adu/mV.
    _write_fmt16(_rec(synthetic_copy, 43), digital[43], leads, [gain / 1000] * n, [0] * n, ["uV"] * n)
    gains = [250.0 + 50 * k for k in range(n)]
    baselines = [-300 + 57 * k for k in range(n)]
    scaled = np.round(originals[44].T * np.array(gains)[:, None] + np.array(baselines)[:, None])
    _write_fmt16(_rec(synthetic_copy, 44), scaled, leads, gains, baselines, ["mV"] * n)

    filter_records(synthetic_copy, tmp_path / "f")
    table, _ = load_labels(tmp_path / "f")
    cache = SignalCache.open(tmp_path / "f")
    assert cache.leads == leads
    row = {i: int(np.flatnonzero(table["ecg_id"] == i)[0]) for i in (42, 43, 44)}
    np.testing.assert_allclose(cache.physical([row[42]])[0].T, originals[42], atol=1e-6)
    np.testing.assert_allclose(cache.physical([row[43]])[0].T, originals[43], atol=1e-6)
    as_read, fields = wfdb.rdsamp(str(_rec(synthetic_copy, 43)))
    assert fields["units"] == ["uV"] * n
    np.testing.assert_allclose(cache.physical([row[43]])[0].T, as_read / 1000, atol=1e-6)
    expected44, _ = wfdb.rdsamp(str(_rec(synthetic_copy, 44)))
    np.testing.assert_allclose(cache.physical([row[44]])[0].T, expected44, atol=1e-6)
    np.testing.assert_allclose(cache.physical([row[44]])[0].T, originals[44], atol=0.5 / 250)
    assert cache.baselines[row[44]].tolist() == baselines


# --- Hardening: records whose leads are dead or flat --------------------------------------------------


def _spoil(root):
    """Record 42: every sample of every lead is WFDB's invalid value; record 43: lead V2 flat."""
    header = wfdb.rdheader(str(_rec(root, 42)))
    leads, n = header.sig_name, header.n_sig
    _write_fmt16(_rec(root, 42), np.full((n, 1000), -32768), leads, [1000.0] * n, [0] * n, ["mV"] * n)
    digital = wfdb.rdrecord(str(_rec(root, 43)), physical=False).d_signal.T.copy()
    digital[leads.index("V2")] = 17
    _write_fmt16(_rec(root, 43), digital, leads, [1000.0] * n, [0] * n, ["mV"] * n)


def test_unusable_records_are_dropped_and_listed(synthetic_copy, tmp_path, capsys):
    _spoil(synthetic_copy)
    out = tmp_path / "f"
    summary = filter_records(synthetic_copy, out)
    table, classes = load_labels(out)
    assert summary["records"] == len(table) == 298 and not {42, 43} & set(table["ecg_id"])
    dropped = pd.read_csv(out / "dropped.csv")
    assert list(dropped.columns) == ["ecg_id", "filename", "reason"]
    assert dropped["ecg_id"].tolist() == [42, 43]
    assert dropped["filename"].tolist() == ["records100/00000/00042_lr", "records100/00000/00043_lr"]
    assert "every sample is the WFDB invalid value -32768" in dropped["reason"][0]
    assert dropped["reason"][1] == "lead V2: flat (constant)"
    err = capsys.readouterr().err
    assert "filter: dropped 2 records" in err and str(out / "dropped.csv") in err
    cache = SignalCache.open(out)
    assert cache.signals.shape[0] == len(table) == cache.gains.shape[0] == cache.baselines.shape[0]
    assert json.loads((out / "signals.json").read_text())["shape"][0] == 298
    assert all(table[c].sum() > 0 for c in classes)
    # Rows still line up with labels.csv after the two rows were taken out.
    for i in (0, 40, 41, 42, len(table) - 1):
        expected, _ = wfdb.rdsamp(str(synthetic_copy / table["filename"][i]))
        np.testing.assert_allclose(cache.physical([i])[0].T, expected, atol=1e-6)


def test_unusable_records_can_be_refused(synthetic_copy, tmp_path, write_params, capsys):
    out = tmp_path / "filtered"
    params = write_params({"filter.bad_records": "refuse"})
    args = ["--params", str(params), "-q", "filter", "--raw", str(synthetic_copy), "--out", str(out)]
    assert main(args) == 0
    assert pd.read_csv(out / "dropped.csv").empty
    before = _snapshot(out)
    _spoil(synthetic_copy)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "00042_lr" in err and "ecg_id 42" in err and "-32768" in err and "filter.bad_records" in err
    assert _snapshot(out) == before


def test_a_class_left_under_the_minimum_by_dropping_goes_with_its_records(synthetic_copy, tmp_path):
    first = filter_records(synthetic_copy, tmp_path / "a")
    table, classes = load_labels(tmp_path / "a")
    rarest = min(classes, key=lambda c: first["positives"][c])
    holders = table.loc[table[rarest] == 1, "ecg_id"].tolist()
    only_rarest = [i for i in holders if table.loc[table["ecg_id"] == i, classes].sum(axis=1).item() == 1]
    assert only_rarest, "the test needs a record whose only class is the rarest"
    victim = (
        next(i for i in holders if i not in only_rarest) if len(holders) > len(only_rarest) else holders[0]
    )
    header = wfdb.rdheader(str(_rec(synthetic_copy, victim)))
    n = header.n_sig
    _write_fmt16(
        _rec(synthetic_copy, victim),
        np.full((n, 1000), 5),
        header.sig_name,
        [1000.0] * n,
        [0] * n,
        ["mV"] * n,
    )
    summary = filter_records(synthetic_copy, tmp_path / "b", min_class_count=first["positives"][rarest])
    assert rarest not in summary["classes"] and rarest not in summary["families"]
    after, _ = load_labels(tmp_path / "b")
    assert rarest not in after.columns
    dropped = pd.read_csv(tmp_path / "b" / "dropped.csv")
    assert set(dropped["ecg_id"]) == {victim, *only_rarest}
    others = dropped[dropped["ecg_id"] != victim]
    assert all(others["reason"].str.startswith(f"no class left: {rarest}"))
    assert SignalCache.open(tmp_path / "b").signals.shape[0] == len(after) == summary["records"]


# --- Hardening: the cache sized only from a checked first record; implausible amplitudes ---------------------


@pytest.mark.parametrize("n_samples", [10**10, 10**12])
def test_a_first_header_of_absurd_length_allocates_nothing(
    synthetic_copy, tmp_path, write_params, capsys, n_samples
):
    hea = _rec(synthetic_copy, 1).with_suffix(".hea")
    lines = hea.read_text().splitlines()
    lines[0] = lines[0].replace(" 1000", f" {n_samples}")
    hea.write_text("\n".join(lines) + "\n")
    out = tmp_path / "filtered"
    args = [
        "--params",
        str(write_params({})),
        "-q",
        "filter",
        "--raw",
        str(synthetic_copy),
        "--out",
        str(out),
    ]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"{hea}: malformed WFDB header ({n_samples:,} samples per signal" in err and "at most 60 s" in err
    assert "Traceback" not in err and not out.exists()
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.stat().st_size > 10**8]  # no sparse giant


def _regain(root, ecg_id: int, gain: str) -> None:
    """Every lead of record `ecg_id` declared at another gain: the same samples, a different physical signal."""
    hea = _rec(root, ecg_id).with_suffix(".hea")
    hea.write_text(hea.read_text().replace("1000.0(0)/mV", f"{gain}(0)/mV"))


def test_implausible_amplitudes_are_dropped_and_named(synthetic_copy, tmp_path, capsys):
    _regain(synthetic_copy, 42, "1.0")  # uV numbers called mV: 1,000 times too large
    _regain(synthetic_copy, 43, "1000000.0")  # 1,000 times too small
    out = tmp_path / "f"
    summary = filter_records(synthetic_copy, out)
    assert summary["records"] == 298
    dropped = pd.read_csv(out / "dropped.csv")
    assert dropped["ecg_id"].tolist() == [42, 43]
    assert (
        dropped["reason"][0].startswith("lead I: ")
        and "mV peak to peak, more than the 100 mV" in dropped["reason"][0]
    )
    assert "gain 1 adu/mV" in dropped["reason"][0]
    assert "mV peak to peak, less than the 0.02 mV" in dropped["reason"][1]
    err = capsys.readouterr().err
    assert f"filter: dropped ecg_id 42 (records100/00000/00042_lr): {dropped['reason'][0]}" in err
    assert f"filter: dropped ecg_id 43 (records100/00000/00043_lr): {dropped['reason'][1]}" in err
    assert (
        f"filter: dropped 2 records whose signal is unusable or implausible; the list with the reasons is in {out / 'dropped.csv'}"
        in err
    )


def test_implausible_amplitudes_can_be_refused_by_name(synthetic_copy, tmp_path, write_params, capsys):
    _regain(synthetic_copy, 42, "1.0")
    out = tmp_path / "filtered"
    params = write_params({"filter.bad_records": "refuse"})
    assert (
        main(["--params", str(params), "-q", "filter", "--raw", str(synthetic_copy), "--out", str(out)]) == 1
    )
    err = capsys.readouterr().err
    assert "00042_lr.hea (ecg_id 42): lead I: " in err and "mV peak to peak, more than the 100 mV" in err
    assert "filter.bad_records is 'refuse'" in err and "Traceback" not in err and not out.exists()


def test_many_dropped_records_are_counted_not_listed_on_the_console(synthetic_copy, tmp_path, capsys):
    from ecg_crnn.stages.filter import NAMED

    victims = list(range(40, 40 + NAMED + 1))
    for ecg_id in victims:
        _regain(synthetic_copy, ecg_id, "1.0")
    out = tmp_path / "f"
    filter_records(synthetic_copy, out)
    err = capsys.readouterr().err
    assert f"filter: dropped {NAMED + 1} records whose signal is unusable or implausible" in err
    assert str(out / "dropped.csv") in err and "filter: dropped ecg_id" not in err
    assert pd.read_csv(out / "dropped.csv")["ecg_id"].tolist() == victims

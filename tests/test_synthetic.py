"""Synthetic PTB-XL: PhysioNet's layout, valid checksums, and classes that really change the signal."""

import numpy as np
import pandas as pd
import pytest
import wfdb
from scipy.signal import find_peaks

from ecg_crnn.cli import main
from ecg_crnn.data.checksums import parse_sums
from ecg_crnn.data.ptbxl import aggregate_labels, class_families, load_database, load_statements
from ecg_crnn.hashing import sha256_file


def test_layout_and_checksums(synthetic_dir):
    sums = parse_sums((synthetic_dir / "SHA256SUMS.txt").read_text())
    assert len(sums) == 2 + 2 * 300
    for path in list(sums)[:50]:
        assert sha256_file(synthetic_dir / path) == sums[path]
    db = load_database(synthetic_dir)
    real_columns = "ecg_id,patient_id,age,sex,height,weight,nurse,site,device,recording_date,report,scp_codes"
    assert ",".join(["ecg_id", *db.columns[:11]]) == real_columns
    record, fields = wfdb.rdsamp(str(synthetic_dir / db["filename_lr"].iloc[0]))
    assert record.shape == (1000, 12) and fields["fs"] == 100 and fields["units"] == ["mV"] * 12
    assert set(db["strat_fold"]) == set(range(1, 11))


def _rr(x):
    """R-peak intervals (s) from lead II at 100 Hz."""
    peaks, _ = find_peaks(x[:, 1], height=0.45, distance=25)
    return np.diff(peaks) / 100


def _qrs_width(x):
    """Samples where |lead II| exceeds half its maximum, per beat: wide for bundle branch blocks."""
    peaks, _ = find_peaks(x[:, 1], height=0.3, distance=25)
    above = np.abs(x[:, 1]) > 0.5 * x[:, 1].max()
    return above.sum() / max(len(peaks), 1)


@pytest.fixture(scope="module")
def signals(synthetic_dir):
    db = load_database(synthetic_dir)
    return db, {i: wfdb.rdsamp(str(synthetic_dir / f))[0] for i, f in db["filename_lr"].items()}


def _with(db, code):
    return [i for i, codes in db["scp_codes"].items() if code in codes]


def test_irregular_rhythms_share_their_spread_and_differ_in_order(signals):
    """SVARR, BIGU and SARRH vary RR by the same amount; only the order of intervals tells them apart:
    BIGU alternates (successive differences flip sign), SARRH changes smoothly, SVARR at random."""
    db, x = signals
    rr = {i: _rr(x[i]) for i in db.index}
    cv = {i: np.std(r) / np.mean(r) for i, r in rr.items()}
    sr = _with(db, "SR")
    irregular = {c: _with(db, c) for c in ("SVARR", "BIGU", "SARRH")}
    spread = {c: np.median([cv[i] for i in ids]) for c, ids in irregular.items()}
    assert all(v > 4 * np.median([cv[i] for i in sr]) for v in spread.values()), spread
    assert max(spread.values()) < 1.5 * min(spread.values()), spread  # the same spread, within noise

    def flips(r):  # share of successive RR differences that change sign
        d = np.diff(r)
        return np.mean(np.sign(d[1:]) != np.sign(d[:-1])) if len(d) > 2 else np.nan

    order = {c: np.nanmedian([flips(rr[i]) for i in ids]) for c, ids in irregular.items()}
    assert order["BIGU"] > 0.9 and order["SARRH"] < 0.5 and 0.45 < order["SVARR"] < 0.9, order
    rate = {i: 60 / np.mean(r) for i, r in rr.items()}
    assert 45 < np.median([rate[i] for i in sr]) < 85  # 50-80 bpm: two intervals exceed the CNN's field


def test_morphology_classes_change_beats(signals):
    db, x = signals
    norm = _with(db, "NORM")
    width = {i: _qrs_width(x[i]) for i in db.index}
    assert np.median([width[i] for i in _with(db, "CLBBB")]) > 1.5 * np.median([width[i] for i in norm])
    amp = {i: np.percentile(np.abs(x[i][:, 10]), 99.5) for i in db.index}  # V5
    assert np.median([amp[i] for i in _with(db, "LVH")]) > 1.5 * np.median([amp[i] for i in norm])


def test_subdiagnostic_task_keeps_the_planted_rhythm_classes(synthetic_dir):
    db, st = load_database(synthetic_dir), load_statements(synthetic_dir)
    labels = aggregate_labels(db, st, "subdiagnostic")
    assert {c for ls in labels for c in ls} == {
        "NORM",
        "IMI",
        "LVH",
        "CLBBB",
        "_AVB",
        "ISCA",
        "STTC",
        "SVARR",
        "BIGU",
        "SARRH",
    }
    families = class_families(st, "subdiagnostic", ["IMI", "SVARR", "BIGU", "SARRH", "_AVB"])
    assert families == {"IMI": "MI", "SVARR": "rhythm", "BIGU": "rhythm", "SARRH": "rhythm", "_AVB": "CD"}
    # NORM only with sinus rhythm: an irregular rhythm is itself a diagnosis here
    assert not any("NORM" in ls and set(ls) & {"SVARR", "BIGU", "SARRH"} for ls in labels)


def test_cli_synth_is_reproducible(tmp_path):
    assert main(["-q", "synth", "--records", "20", "--seed", "3", str(tmp_path / "a")]) == 0
    assert (
        main(["-q", "synth", "--records", "20", "--seed", "3", str(tmp_path / "b"), "--rates", "100", "500"])
        == 0
    )
    a = pd.read_csv(tmp_path / "a" / "ptbxl_database.csv")
    b = pd.read_csv(tmp_path / "b" / "ptbxl_database.csv")
    pd.testing.assert_frame_equal(a, b)
    assert (tmp_path / "a/records100/00000/00020_lr.dat").read_bytes() == (
        tmp_path / "b/records100/00000/00020_lr.dat"
    ).read_bytes()
    hr, fields = wfdb.rdsamp(str(tmp_path / "b/records500/00000/00020_hr"))
    assert hr.shape == (5000, 12) and fields["fs"] == 500


# --- Hardening: synth replaces only its own output ----------------------------------------------------


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("out", [".", "..", "HERE"])
def test_synth_into_the_current_folder_is_refused_and_touches_nothing(tmp_path, monkeypatch, capsys, out):
    here = tmp_path / "project"
    (here / ".git").mkdir(parents=True)
    (here / ".git" / "config").write_text("[core]\n")
    (here / "notes.md").write_text("the user's")
    before = _tree(tmp_path)
    monkeypatch.chdir(here)
    out = str(here) if out == "HERE" else out
    assert main(["-q", "synth", "--records", "10", out]) == 1
    err = capsys.readouterr().err
    assert f"synth: {out} is the current folder" in err and "replaces it in one step" in err
    assert "ecg-crnn synth data/synthetic" in err and "Traceback" not in err
    assert _tree(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["project"]


def test_synth_writes_into_new_empty_or_its_own_folders_only(tmp_path, capsys):
    from ecg_crnn.data.synthetic import MARKER

    mine = tmp_path / "mine"
    assert main(["-q", "synth", "--records", "10", str(mine)]) == 0
    assert (mine / MARKER).is_file()
    assert main(["-q", "synth", "--records", "12", str(mine)]) == 0  # its own earlier output: replaced
    assert len(pd.read_csv(mine / "ptbxl_database.csv")) == 12
    (tmp_path / "empty").mkdir()
    assert main(["-q", "synth", "--records", "10", str(tmp_path / "empty")]) == 0
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "data.csv").write_text("precious")
    capsys.readouterr()
    assert main(["-q", "synth", "--records", "10", str(theirs)]) == 1
    err = capsys.readouterr().err
    assert f"synth: {theirs} already holds files and is not a synthetic dataset that synth wrote" in err
    assert _tree(theirs) == {"data.csv": b"precious"}
    (tmp_path / "file").write_text("x")
    assert main(["-q", "synth", "--records", "10", str(tmp_path / "file")]) == 1
    assert "exists and is not a folder" in capsys.readouterr().err

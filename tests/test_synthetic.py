"""Synthetic PTB-XL: PhysioNet's layout, valid checksums, and classes that really change the signal."""

import numpy as np
import pandas as pd
import pytest
import torch
import wfdb
from scipy.signal import find_peaks
from scipy.stats import ks_2samp, mannwhitneyu

from ecg_crnn.cli import main
from ecg_crnn.config import ModelSettings
from ecg_crnn.data.checksums import parse_sums
from ecg_crnn.data.ptbxl import aggregate_labels, class_families, load_database, load_statements
from ecg_crnn.data.synthetic import GAIN, MORPHOLOGY, Acquisition, beat_support, receptive_field, render
from ecg_crnn.hashing import sha256_file
from ecg_crnn.models import build_model

IRREGULAR = ("SVARR", "BIGU", "SARRH")


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


def _beats(x: np.ndarray) -> np.ndarray:
    """R-peak sample indices in lead II of a (12, T) record at 100 Hz: sharp peaks (under 8 samples wide at half
    their prominence), so that T waves are never taken for beats."""
    peaks, _ = find_peaks(x[1], prominence=0.3, width=(None, 8), distance=40)
    return peaks


@pytest.fixture(scope="module")
def intervals():
    """RR intervals (s) between the R peaks found in 400 rendered 100 Hz records per rhythm (no morphology
    diagnosis, so every R peak is sharp), in their order."""
    rng = np.random.default_rng(7)
    return {
        c: [np.diff(_beats(render({c: 100.0}, 100, rng))) / 100 for _ in range(400)]
        for c in (*IRREGULAR, "SR")
    }


def _lag1(r: np.ndarray) -> float:
    d = r - r.mean()
    return float((d[1:] * d[:-1]).sum() / (d * d).sum())


def test_irregular_rhythms_hold_the_same_intervals_in_another_order(intervals):
    """What a record holds, one interval at a time, has one distribution in SVARR, BIGU and SARRH; their order
    differs. Two-sample Kolmogorov-Smirnov tests on one interval per record (independent records, so the
    test's p-value is valid), each relative to its record's mean interval: with equal distributions, one of
    the three pairs falls under p = 0.01 for at most 3% of seeds (Bonferroni). The same test on an interval
    picked by its order (the one after each record's shortest) is the negative control: it must find the
    difference, at p < 1e-6, with these 400 records."""
    pick = np.random.default_rng(0)
    single = {c: np.array([r[pick.integers(len(r))] / r.mean() for r in intervals[c]]) for c in IRREGULAR}
    after_shortest = {c: np.array([r[np.argmin(r[:-1]) + 1] for r in intervals[c]]) for c in IRREGULAR}
    lag1 = {c: np.array([_lag1(r) for r in intervals[c]]) for c in IRREGULAR}
    pairs = [("SVARR", "BIGU"), ("SVARR", "SARRH"), ("BIGU", "SARRH")]
    same = {f"{a}-{b}": ks_2samp(single[a], single[b]).pvalue for a, b in pairs}
    assert min(same.values()) > 0.01, same
    ordered = {f"{a}-{b}": ks_2samp(after_shortest[a], after_shortest[b]).pvalue for a, b in pairs}
    assert max(ordered.values()) < 1e-6, ordered
    # BIGU alternates (strongly negative lag-1 autocorrelation), SARRH changes slowly (positive), SVARR in
    # between (a random order of a fixed set of values: somewhat negative). Measured medians: -0.85, 0.58, -0.22.
    median = {c: float(np.median(v)) for c, v in lag1.items()}
    assert median["BIGU"] < -0.6 < median["SVARR"] < 0.2 < median["SARRH"], median
    assert all(mannwhitneyu(lag1[a], lag1[b]).pvalue < 1e-10 for a, b in pairs), median


def test_no_field_of_the_cnn_front_end_sees_two_irregular_intervals(intervals):
    """Any two successive irregular intervals outlast the front end's receptive field plus a beat's visible
    extent, so no field touches three beats; "irregular" itself shows in a single interval."""
    field = receptive_field() / 100
    first, last = beat_support()
    assert field == 0.98 and (first, last) == (-0.38, 0.52)
    shortest_pair = min((r[1:] + r[:-1]).min() for c in IRREGULAR for r in intervals[c])
    assert shortest_pair >= field + (last - first) + 0.02, shortest_pair  # 0.02 s: R peaks found to a sample
    # Every sinus interval is shorter than every irregular one, and every irregular record shows long ones.
    sinus, irregular = intervals["SR"], [r for c in IRREGULAR for r in intervals[c]]
    assert max(r.max() for r in sinus) < 0.95 < min(r.min() for r in irregular)
    assert all((r > 1.4).sum() >= 2 for r in irregular)


def test_receptive_field_is_the_front_ends():
    """receptive_field() against the real front end: with positive weights, one input spike reaches a given
    output step exactly when it lies in that step's field."""
    for kernel, expected in ((7, 98), (5, 68)):
        front = build_model(
            "cnn", 12, 1, ModelSettings(channels=[4, 4, 4, 4], kernel_size=kernel, hidden=8, dropout=0.0)
        ).front.eval()
        with torch.no_grad():
            for m in front.modules():
                if isinstance(m, torch.nn.Conv1d):
                    m.weight.fill_(1.0)
            spikes = torch.zeros(400, 12, 400)
            spikes[torch.arange(400), :, torch.arange(400)] = 1.0  # input j: a spike at sample j
            reached = front(spikes)[:, :, 25].amax(dim=1) > 0
        assert reached.sum() == receptive_field(kernel) == expected


def test_a_beat_is_invisible_outside_its_support():
    """Without noise or baseline wander, every digitized sample farther from each R peak than beat_support()
    is exactly zero, whichever diagnosis shapes the beat (1AVB's long PR and CLBBB's wide QRS included). An
    irregular rhythm's cycle has the record's period, so the beats just outside the record, whose waves reach
    into it, are its own R peaks shifted by the record's length."""
    first, last = beat_support()
    rng = np.random.default_rng(3)
    quiet = Acquisition(noise_mv=0.0, wander_mv=0.0)
    seen = []  # the lag from its beat's R peak of every nonzero sample
    for code in ("NORM", *MORPHOLOGY):
        x = np.round(render({code: 100.0, "BIGU": 100.0}, 100, rng, quiet) * GAIN)
        peaks = _beats(x / GAIN)
        peaks = np.concatenate([peaks - x.shape[1], peaks, peaks + x.shape[1]])
        lag = (np.arange(x.shape[1])[:, None] - peaks[None, :]) / 100
        near = (lag >= first) & (lag <= last)
        assert len(peaks) == 3 * 8 and not np.any(x[:, ~near.any(axis=1)]), code
        visible = np.abs(x).max(axis=0) > 0
        seen += list(lag[visible][near[visible]])
    # ... and not loose: some beat reaches within 0.1 s of either end (the longest PR is drawn, not fixed).
    assert first + 0.1 > min(seen) and max(seen) > last - 0.1, (min(seen), max(seen))


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

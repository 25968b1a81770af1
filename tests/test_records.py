"""The fast WFDB reader agrees with wfdb and refuses damaged records by name."""

import os

import numpy as np
import pytest
import wfdb

from ecg_crnn.data.records import RecordError, parse_header, read_digital, signal_problems
from ecg_crnn.data.signals import to_physical
from ecg_crnn.errors import EcgCrnnError


def test_fast_reader_matches_wfdb_on_real_records(shared_ptbxl):
    records = sorted((shared_ptbxl / "records100" / "00000").glob("*.hea"))[:60]
    assert records
    for hea in records:
        digital, header = read_digital(hea.with_suffix(""))
        expected, fields = wfdb.rdsamp(str(hea.with_suffix("")))
        assert header.leads == tuple(fields["sig_name"])
        assert header.fs == fields["fs"]
        np.testing.assert_allclose(
            to_physical(digital, header.gains, header.baselines).T, expected, atol=1e-6
        )


def test_other_formats_go_through_wfdb(tmp_path):
    rng = np.random.default_rng(0)
    signal = rng.normal(0, 0.5, (500, 3))
    wfdb.wrsamp(
        "rec212",
        fs=250,
        units=["mV"] * 3,
        sig_name=["a", "b", "c"],
        p_signal=signal,
        fmt=["212"] * 3,
        write_dir=str(tmp_path),
    )
    digital, header = read_digital(tmp_path / "rec212")
    assert not header.simple_fmt16
    assert digital.shape == (3, 500)
    expected, _ = wfdb.rdsamp(str(tmp_path / "rec212"))
    np.testing.assert_allclose(to_physical(digital, header.gains, header.baselines).T, expected, atol=1e-6)


@pytest.fixture
def record(synthetic_copy):
    return synthetic_copy / "records100" / "00000" / "00005_lr"


def test_truncated_dat_is_refused_by_name(record):
    dat = record.with_suffix(".dat")
    dat.write_bytes(dat.read_bytes()[:-100])
    with pytest.raises(
        RecordError, match=r"00005_lr\.dat: 23900 bytes, but its header declares 12 leads x 1000"
    ):
        read_digital(record)


def test_corrupt_samples_fail_the_header_checksum(record):
    dat = record.with_suffix(".dat")
    data = bytearray(dat.read_bytes())
    data[1000] ^= 0x40
    dat.write_bytes(bytes(data))
    with pytest.raises(
        RecordError, match=r"00005_lr\.hea: lead \S+ checksum .* disagrees with its signal file"
    ):
        read_digital(record)


def test_header_sample_count_disagreeing_with_data(record):
    hea = record.with_suffix(".hea")
    lines = hea.read_text().splitlines()
    lines[0] = lines[0].replace(" 1000", " 1200")
    hea.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordError, match="header declares 12 leads x 1200 samples"):
        read_digital(record)


def test_missing_header_and_garbage_header(record):
    with pytest.raises(RecordError, match="record header not found"):
        read_digital(record.with_name("99999_lr"))
    record.with_suffix(".hea").write_text("00005_lr twelve 100 1000\n")
    with pytest.raises(RecordError, match="00005_lr.hea: malformed WFDB header"):
        read_digital(record)


def test_units_are_parsed_per_lead(shared_ptbxl, tmp_path):
    header = parse_header(shared_ptbxl / "records100" / "00000" / "00001_lr.hea")
    assert header.units == ("mV",) * 12
    (tmp_path / "r.hea").write_text(
        "r 3 100 10\n"
        "r.dat 16 1.0(5)/uV 16 0 0 0 0 I\n"
        "r.dat 16 200 16 0 0 0 0 II\n"  # no units: WFDB's default, mV
        "r.dat 16 0.5/V 16 0 0 0 0 III\n"
    )
    header = parse_header(tmp_path / "r.hea")
    assert header.units == ("uV", "mV", "V")
    assert header.gains == (1.0, 200.0, 0.5) and header.baselines == (5, 0, 0)


def test_signal_problems_names_invalid_and_flat_leads():
    rng = np.random.default_rng(0)
    leads = ["I", "II", "V1", "V2"]
    good = rng.integers(-500, 500, (4, 1000)).astype(np.int16)
    assert signal_problems(good, leads) == []
    bad = good.copy()
    bad[2] = -32768
    bad[3] = 17
    assert signal_problems(bad, leads) == [
        "lead V1: every sample is the WFDB invalid value -32768",
        "lead V2: flat (constant)",
    ]
    nothing = np.full((4, 1000), -32768, np.int16)
    assert signal_problems(nothing, leads) == ["all 4 leads: every sample is the WFDB invalid value -32768"]
    one_invalid_sample = good.copy()
    one_invalid_sample[0, 10] = -32768  # a gap, not a dead lead
    assert signal_problems(one_invalid_sample, leads) == []


# --- Hardening: headers bounded and files checked before anything is read or sized from them -----------


def _set_record_line(record, **fields):
    hea = record.with_suffix(".hea")
    lines = hea.read_text().splitlines()
    parts = lines[0].split()
    for index, value in {1: fields.get("n_sig"), 2: fields.get("fs"), 3: fields.get("n_samples")}.items():
        if value is not None:
            parts[index] = str(value)
    lines[0] = " ".join(parts)
    hea.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"n_samples": 10**10},
            r"10,000,000,000 samples per signal .* at most 60 s \(6,000 samples at 100 Hz\)",
        ),
        ({"n_samples": 10**12}, r"1,000,000,000,000 samples per signal"),
        ({"n_samples": 0}, r"0 samples per signal"),
        ({"fs": 10**6}, r"sampling rate 1e\+06 Hz; an ECG's is above 0 and at most 1000 Hz"),
        ({"n_sig": 10**6}, r"1000000 signals; a 12-lead ECG record has 1 to 16"),
    ],
)
def test_header_numbers_are_bounded_before_use(record, fields, message):
    _set_record_line(record, **fields)
    with pytest.raises(RecordError, match=r"00005_lr\.hea: malformed WFDB header \(" + message):
        read_digital(record)


def test_signal_file_must_be_in_the_records_own_folder(record, tmp_path):
    secret = record.parent.parent.parent / "secret.bin"
    secret.write_bytes(record.with_suffix(".dat").read_bytes())  # readable as the record's samples
    hea = record.with_suffix(".hea")
    hea.write_text(hea.read_text().replace("00005_lr.dat ", "../../secret.bin "))
    with pytest.raises(RecordError, match=r"signal file '\.\./\.\./secret\.bin' is not a plain file name"):
        read_digital(record)


@pytest.mark.parametrize("which", [".dat", ".hea"])
def test_a_fifo_is_refused_not_waited_on(record, which):
    import subprocess
    import sys

    path = record.with_suffix(which)
    path.unlink()
    os.mkfifo(path)  # nothing writes to it: a plain open() and read would wait forever
    code = f"from pathlib import Path; from ecg_crnn.data.records import read_digital; read_digital(Path({str(record)!r}))"
    # The timeout only keeps a regression from hanging the suite; the test checks the error.
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert f"{path}: " in done.stderr and "is a FIFO, not a regular file; refused" in done.stderr


def test_a_huge_header_is_refused_before_it_is_read(record):
    hea = record.with_suffix(".hea")
    with open(hea, "r+b") as f:
        f.truncate(10**9)  # sparse
    with pytest.raises(EcgCrnnError, match=r"record header of 1,000,000,000 bytes, more than the 65,536"):
        read_digital(record)


def _wfdb_record(tmp_path, name, **fields):
    """A valid WFDB record of 3 signals written by wfdb itself, with the features in `fields`."""
    rng = np.random.default_rng(0)
    n = 500
    d = rng.integers(-300, 300, (n, 3)).astype(np.int16)
    common = dict(adc_gain=[200.0] * 3, baseline=[0] * 3, units=["mV"] * 3, sig_name=["I", "II", "III"])
    sums = [int(x) for x in d.astype(np.int64).sum(0) % 65536]
    rec = wfdb.Record(
        record_name=name,
        n_sig=3,
        fs=100,
        sig_len=n,
        file_name=[f"{name}.dat"] * 3,
        fmt=["16"] * 3,
        d_signal=d,
        adc_res=[16] * 3,
        adc_zero=[0] * 3,
        init_value=[int(v) for v in d[0]],
        checksum=sums,
        block_size=[0] * 3,
        **common,
        **fields,
    )
    rec.wrsamp(write_dir=str(tmp_path))
    return tmp_path / name, d


def test_wfdb_features_the_reader_does_not_handle_are_named_not_called_corrupt(tmp_path):
    skewed, _ = _wfdb_record(tmp_path, "skew", skew=[0, 2, 0])
    with pytest.raises(RecordError) as err:
        read_digital(skewed)
    assert "lead II has a skew of 2 samples; this reader does not support it" in str(err.value)
    assert "disagrees" not in str(err.value)
    rng = np.random.default_rng(1)
    e = [rng.integers(-300, 300, 1000).astype(np.int16), rng.integers(-300, 300, 500).astype(np.int16)]
    multi = wfdb.Record(
        record_name="mf",
        n_sig=2,
        fs=100,
        sig_len=500,
        file_name=["mf.dat"] * 2,
        fmt=["16"] * 2,
        samps_per_frame=[2, 1],
        adc_gain=[200.0] * 2,
        baseline=[0] * 2,
        units=["mV"] * 2,
        sig_name=["I", "II"],
        e_d_signal=e,
        adc_res=[16] * 2,
        adc_zero=[0] * 2,
        init_value=[int(x[0]) for x in e],
        checksum=[int(x.astype(np.int64).sum() % 65536) for x in e],
        block_size=[0] * 2,
    )
    multi.wrsamp(expanded=True, write_dir=str(tmp_path))
    with pytest.raises(RecordError, match=r"lead I has 2 samples per frame \(a multi-frequency record\)"):
        read_digital(tmp_path / "mf")


def test_byte_offsets_are_read_through_wfdb(tmp_path):
    record, d = _wfdb_record(tmp_path, "off", byte_offset=[24] * 3)
    digital, header = read_digital(record)
    assert not header.simple_fmt16 and header.offsets == (24, 24, 24)
    np.testing.assert_array_equal(digital, d.T)


# --- Hardening: physical plausibility, calibrated on the real records ------------------------------------


@pytest.fixture(scope="module")
def real_records(shared_ptbxl):
    """The 488 real records of the shared subset: (digital, gains per mV, baselines, leads)."""
    from ecg_crnn.data.records import gains_in_mv

    out = []
    for hea in sorted((shared_ptbxl / "records100").glob("*/*.hea")):
        digital, header = read_digital(hea.with_suffix(""))
        out.append((digital, np.array(gains_in_mv(header, hea)), np.array(header.baselines), header.leads))
    assert len(out) == 488
    return out


def test_every_real_record_is_plausible(real_records):
    from ecg_crnn.data.plausibility import amplitude_problems

    assert [p for r in real_records if (p := amplitude_problems(*r))] == []


@pytest.mark.parametrize(
    ("factor", "words"), [(1e-3, "more than the 100 mV"), (1e3, "less than the 0.02 mV")]
)
def test_a_gain_off_by_a_thousand_is_caught_on_every_real_record_and_lead(real_records, factor, words):
    """The class the check claims: a header gain 1,000 times too small (uV written as mV) or too large, caught in
    every one of the 5,856 real leads; the unscaled records (the test above) are the control that must pass."""
    from ecg_crnn.data.plausibility import amplitude_problems

    for digital, gains, baselines, leads in real_records:
        problems = amplitude_problems(digital, gains * factor, baselines, leads)
        named = {p.split(":")[0] for p in problems if words in p}
        assert named == {f"lead {lead}" for lead, d in zip(leads, digital, strict=True) if d.min() < d.max()}


def test_a_baseline_far_off_is_caught(real_records):
    from ecg_crnn.data.plausibility import amplitude_problems

    digital, gains, baselines, leads = real_records[0]
    off = baselines.copy()
    off[3] -= 20_000  # +20 mV at 1,000 adu/mV
    median = np.median((digital[3] - off[3]) / gains[3])
    assert amplitude_problems(digital, gains, off, leads) == [
        f"lead {leads[3]}: median {median:+,.4g} mV, further from 0 than the 10 mV a filtered ECG can be (check the "
        f"header's baseline, {int(off[3])} adu)"
    ]
    assert 19.5 < median < 20.5


def test_predict_refuses_an_implausible_record_by_name(shared_ptbxl, tmp_path):
    import shutil

    from ecg_crnn.inference import read_record

    src = shared_ptbxl / "records100" / "00000" / "00001_lr"
    for ext in (".hea", ".dat"):
        shutil.copy(src.with_suffix(ext), tmp_path / f"00001_lr{ext}")
    hea = tmp_path / "00001_lr.hea"
    hea.chmod(0o644)
    hea.write_text(hea.read_text().replace("1000.0(0)/mV", "1.0(0)/mV", 1))  # lead I: uV numbers called mV
    header = parse_header(src.with_suffix(".hea"))
    checkpoint = {
        "fs": 100.0,
        "leads": list(header.leads),
        "window": 250,
        "mean": [0.0] * 12,
        "std": [1.0] * 12,
    }
    with pytest.raises(EcgCrnnError) as err:
        read_record(tmp_path / "00001_lr", checkpoint)
    message = str(err.value)
    assert message.startswith(
        f"{hea}: no prediction for a record whose signal is unusable or implausible: lead I:"
    )
    assert "mV peak to peak, more than the 100 mV" in message and "gain 1 adu/mV" in message
    read_record(src, checkpoint)  # the record as it is: a prediction's input

"""The fast WFDB reader agrees with wfdb and refuses damaged records by name."""

import numpy as np
import pytest
import wfdb

from ecg_crnn.data.records import RecordError, parse_header, read_digital, signal_problems
from ecg_crnn.data.signals import to_physical


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

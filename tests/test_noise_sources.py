"""Noise sources: nstdb read from a copy in PhysioNet's layout (the fixture), the recording chain's
resampling, and the synthetic fall-back only when nothing is configured."""

import numpy as np
import pytest
import wfdb
from scipy.signal import resample

from ecg_crnn.data.checksums import parse_sums
from ecg_crnn.errors import EcgCrnnError
from ecg_crnn.hashing import sha256_file
from ecg_crnn.robustness import (
    NSTDB_FILES,
    NSTDB_MAX_BYTES,
    NstdbNoise,
    SyntheticNoise,
    corrupt,
    nstdb,
    open_noise_source,
)
from ecg_crnn.robustness.resampling import edge_samples, resample_chain
from ecg_crnn.robustness.seeding import record_generator

from .helpers.nstdb import write_nstdb_fixture

SECONDS = 30.0


@pytest.fixture(scope="module")
def nstdb_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("nstdb")
    write_nstdb_fixture(out, seconds=SECONDS, seed=0)
    return out


def test_fixture_is_in_physionets_layout(nstdb_dir):
    sums = parse_sums((nstdb_dir / "SHA256SUMS.txt").read_text())
    assert set(NSTDB_FILES) < set(sums)  # the listing names more than the download needs
    assert all(sha256_file(nstdb_dir / path) == digest for path, digest in sums.items())
    for record in nstdb.RECORDS:
        header = wfdb.rdheader(str(nstdb_dir / record))
        assert (header.fs, header.n_sig, header.fmt) == (360, 2, ["212", "212"])
        # Format 212: 3 bytes per pair of samples, the formula behind the real records' size cap.
        assert (nstdb_dir / f"{record}.dat").stat().st_size == header.sig_len * header.n_sig * 3 // 2


def test_size_caps_cover_the_real_files():
    assert (
        set(NSTDB_MAX_BYTES)
        == set(NSTDB_FILES)
        == {f"{r}.{e}" for r in ("bw", "em", "ma") for e in ("hea", "dat")}
    )
    assert nstdb.DAT_BYTES == 1_950_000  # 650,000 samples x 2 channels x 1.5 bytes
    assert all(NSTDB_MAX_BYTES[f"{r}.dat"] >= nstdb.DAT_BYTES for r in nstdb.RECORDS)
    assert all(NSTDB_MAX_BYTES[f"{r}.dat"] < 1.05 * nstdb.DAT_BYTES for r in nstdb.RECORDS)  # still a cap


def test_fixture_headers_fit_the_cap(nstdb_dir):
    assert all((nstdb_dir / f"{r}.hea").stat().st_size <= NSTDB_MAX_BYTES[f"{r}.hea"] for r in nstdb.RECORDS)


@pytest.mark.parametrize("fs", [100, 500])
def test_records_are_resampled_through_the_chain(nstdb_dir, fs):
    source = NstdbNoise(nstdb_dir)
    raw = wfdb.rdrecord(str(nstdb_dir / "em")).p_signal.T
    x = source.record("em", fs)
    edge = edge_samples(360, fs)
    assert x.shape == (2, round(SECONDS * fs) - 2 * edge)
    # Independent check: the in-band waveform survives. The fixture's noise is periodic (drawn in the
    # frequency domain), so FFT resampling of the same record is a fair reference.
    reference = resample(raw, round(SECONDS * fs), axis=-1)[:, edge:-edge]
    assert np.abs(x - reference).max() < 0.01 * np.abs(reference).max()


@pytest.mark.parametrize("fs", [100, 500])
def test_segments_have_the_record_length_and_come_from_the_record(nstdb_dir, fs):
    source = NstdbNoise(nstdb_dir)
    n = 10 * fs
    channels = source.channels("bw", record_generator("baseline_wander", 0, 17), n, fs)
    assert channels.shape == (8, n) and channels.dtype == np.float32
    record = source.record("bw", fs).astype(np.float32)

    def offsets(channel, row):
        windows = np.lib.stride_tricks.sliding_window_view(record[row], n)
        return set(np.flatnonzero((windows == channel).all(axis=1)))

    limb = offsets(channels[0], 0) & offsets(channels[1], 1)
    assert limb  # leads I and II: both channels at one offset, recorded together
    chest = [offsets(channels[2 + k], k % 2) for k in range(6)]
    assert all(chest)  # each chest lead: a stretch of one channel ...
    assert len({min(o) for o in chest} | {min(limb)}) > 4  # ... at offsets of its own


def test_segments_are_deterministic_and_seeded(nstdb_dir):
    source = NstdbNoise(nstdb_dir)

    def draw(seed, record_id):
        return source.channels("ma", record_generator("muscle", seed, record_id), 1000, 100)

    assert draw(0, 5).tobytes() == draw(0, 5).tobytes()
    assert (
        draw(0, 5).tobytes()
        == NstdbNoise(nstdb_dir).channels("ma", record_generator("muscle", 0, 5), 1000, 100).tobytes()
    )  # a fresh reader of the same files
    assert draw(1, 5).tobytes() != draw(0, 5).tobytes()
    assert draw(0, 6).tobytes() != draw(0, 5).tobytes()


@pytest.fixture(scope="module")
def fold():
    rng = np.random.default_rng(3)
    t = np.arange(1000) / 100
    beats = np.exp(-0.5 * ((t[None, :] % 0.9 - 0.3) / 0.02) ** 2)  # a spike train, 12 leads of own size
    x = beats[None] * rng.uniform(0.3, 1.5, (30, 12, 1)) + rng.normal(0, 0.02, (30, 12, 1000))
    return x.astype(np.float32), np.arange(30) * 3 + 11


@pytest.mark.parametrize("name", ["baseline_wander", "electrode_motion", "muscle"])
def test_corrupting_with_nstdb_noise(nstdb_dir, fold, name):
    x, ids = fold
    source = open_noise_source(nstdb_dir)
    result = corrupt(x, ids, name, 6.0, seed=0, fs=100, noise=source)
    assert result.source == "nstdb"
    x64, noise = x.astype(np.float64), result.x.astype(np.float64) - x
    snr = 10 * np.log10(np.var(x64, axis=-1) / np.mean(noise**2, axis=-1))
    np.testing.assert_allclose(snr, 6.0, atol=0.01)
    assert (np.abs(noise.mean(axis=-1)) < 1e-4 * np.sqrt(np.mean(noise**2, axis=-1))).all()  # no offset
    pieces = [
        corrupt(x[a:b], ids[a:b], name, 6.0, seed=0, fs=100, noise=source).x for a, b in ((0, 4), (4, 30))
    ]
    assert np.concatenate(pieces).tobytes() == result.x.tobytes()
    synthetic = corrupt(x, ids, name, 6.0, seed=0, fs=100)
    assert synthetic.source == "synthetic" and synthetic.x.tobytes() != result.x.tobytes()


def test_a_configured_but_missing_directory_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "nowhere" / "nstdb"
    with pytest.raises(EcgCrnnError, match=f"{missing}: nstdb directory not found"):
        open_noise_source(missing)
    assert isinstance(open_noise_source(None), SyntheticNoise)  # only an unset source is synthetic


def test_an_incomplete_copy_is_an_error_naming_the_files(nstdb_dir, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("bw.hea", "bw.dat", "em.hea"):
        (partial / name).write_bytes((nstdb_dir / name).read_bytes())
    with pytest.raises(EcgCrnnError, match="lacks em.dat, ma.hea, ma.dat"):
        open_noise_source(partial)


def test_a_record_shorter_than_the_segments_is_an_error(tmp_path):
    write_nstdb_fixture(tmp_path, seconds=5.0)
    with pytest.raises(EcgCrnnError, match="shorter than the 10 s records"):
        NstdbNoise(tmp_path).channels("bw", record_generator("x", 0, 0), 1000, 100)


@pytest.mark.parametrize("source_fs, target_fs", [(360, 100), (360, 500), (500, 100)])
def test_resampling_passes_the_band_and_stops_above_the_new_nyquist(source_fs, target_fs):
    t_in = np.arange(source_fs * 20) / source_fs
    t_out = np.arange(target_fs * 20) / target_fs
    edge = edge_samples(source_fs, target_fs)
    inner = slice(edge, -edge)
    for f in (1.0, 5.0, 25.0, 0.35 * min(source_fs, target_fs)):  # the passband: kept, in place
        y = resample_chain(np.sin(2 * np.pi * f * t_in), source_fs, target_fs)
        assert np.abs(y - np.sin(2 * np.pi * f * t_out))[inner].max() < 2e-3
    if target_fs < source_fs:  # beyond the new Nyquist frequency: >= 60 dB down
        for f in (0.55 * target_fs, 0.6 * target_fs, 0.45 * source_fs):
            y = resample_chain(np.sin(2 * np.pi * f * t_in + 0.7), source_fs, target_fs)
            assert 10 * np.log10(np.mean(y[inner] ** 2) / 0.5) < -60

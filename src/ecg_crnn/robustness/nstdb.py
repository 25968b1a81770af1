"""Real noise from the MIT-BIH Noise Stress Test Database (nstdb 1.0.0 on PhysioNet).

Its three noise records, `bw` (baseline wander), `em` (electrode motion) and `ma` (muscle artifact), were
recorded from physically active volunteers with electrodes on the limbs placed where the ECG is not
visible: 2 channels each, 360 Hz, format 212, 650,000 samples (30 min 5.6 s). Each record is read once
with wfdb, resampled to the study's rate by `resampling.resample_chain` (an anti-aliasing filter, so at
100 Hz `ma` keeps its 20-40 Hz part and loses what lies above 50 Hz) and kept in memory.

Segments and the 12 leads: for each record of the study, leads I and II take the two channels at one
random offset (two leads recorded at the same time, as the limb leads are), and the other four limb leads
follow from them by Einthoven's and Goldberger's relations (`leads.channels_to_leads`). Each chest lead
takes one channel (alternating 0, 1, 0, ...) at an offset of its own, since chest electrodes move and
pick up muscle noise independently. Offsets are uniform over the resampled record, less the filter's
edges; segments of different records may overlap, as a 30-minute record holds only ~180 disjoint 10 s
segments. The noise is only as varied as those 30 minutes from a few volunteers.

The noise stage downloads exactly `FILES` (data/datasets.py, where nstdb's layout is said); `MAX_BYTES` bounds each
for a size cap. A .dat in
format 212 packs two 12-bit samples into 3 bytes: 650,000 samples x 2 channels x 1.5 bytes = 1,950,000
bytes exactly; the cap leaves 50 kB of slack. A header is three short text lines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wfdb

from ..data import datasets as _layout
from ..errors import EcgCrnnError
from .noise import KINDS
from .resampling import edge_samples, resample_chain

# nstdb's layout is said once, with the other datasets' (data/datasets.py: what the noise stage downloads)
BASE_URL, RECORDS, FILES = _layout.NSTDB_BASE_URL, _layout.NSTDB_RECORDS, _layout.NSTDB_FILES
FS, N_SIGNALS, N_SAMPLES, DAT_BYTES = (
    _layout.NSTDB_FS,
    _layout.NSTDB_N_SIGNALS,
    _layout.NSTDB_N_SAMPLES,
    _layout.NSTDB_DAT_BYTES,
)
MAX_BYTES, SUMS_MAX_BYTES = _layout.NSTDB_MAX_BYTES, _layout.NSTDB_SUMS_MAX_BYTES
assert tuple(KINDS) == RECORDS  # the noise kinds are nstdb's record names


class NstdbNoise:
    """A local nstdb copy as a noise source (see the module docstring)."""

    name = "nstdb"

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise EcgCrnnError(
                f"{self.directory}: nstdb directory not found (robustness.noise_source is set): the noise stage "
                f"downloads it there (`dvc repro noise`, or `ecg-crnn download-noise`), e.g. from {BASE_URL}; "
                "or set noise_source to null for the synthetic generators"
            )
        missing = [name for name in FILES if not (self.directory / name).is_file()]
        if missing:
            raise EcgCrnnError(f"{self.directory}: nstdb copy lacks {', '.join(missing)}")
        self._resampled: dict[tuple[str, float], np.ndarray] = {}

    def record(self, kind: str, fs: float) -> np.ndarray:
        """(2, samples) float64 mV: record `kind` at `fs`, the filter's edges trimmed."""
        key = (kind, float(fs))
        if key not in self._resampled:
            raw, raw_fs = read_noise_record(self.directory, kind)
            x = resample_chain(raw, raw_fs, fs)
            edge = edge_samples(raw_fs, fs)
            self._resampled[key] = x[:, edge : x.shape[1] - edge]
        return self._resampled[key]

    def channels(self, kind: str, rng: np.random.Generator, n_samples: int, fs: float) -> np.ndarray:
        x = self.record(kind, fs)
        span = x.shape[1] - n_samples
        if span < 0:
            raise EcgCrnnError(
                f"{self.directory / kind}: {x.shape[1] / fs:g} s of usable noise at {fs:g} Hz, shorter "
                f"than the {n_samples / fs:g} s records"
            )
        offsets = rng.integers(0, span + 1, 7)
        limb = x[:, offsets[0] : offsets[0] + n_samples]
        chest = [x[k % 2, o : o + n_samples] for k, o in enumerate(offsets[1:])]
        return np.concatenate([limb, np.stack(chest)]).astype(np.float32)


def read_noise_record(directory: Path, kind: str) -> tuple[np.ndarray, float]:
    """(2, samples) float64 mV and the sampling rate of nstdb record `kind`, checked."""
    if kind not in KINDS:
        raise EcgCrnnError(f"robustness: unknown nstdb record {kind!r} (known: {', '.join(KINDS)})")
    path = directory / kind
    try:
        record = wfdb.rdrecord(str(path))
    except Exception as exc:  # wfdb raises bare ValueErrors, OSErrors, ...: name the record instead
        raise EcgCrnnError(f"{path}: not a readable WFDB record ({exc})") from exc
    x = record.p_signal
    if x is None or x.ndim != 2 or x.shape[1] != N_SIGNALS:
        raise EcgCrnnError(f"{path}: expected {N_SIGNALS} signals, found {record.n_sig}")
    units = {str(u).lower() for u in record.units}
    if units != {"mv"}:
        raise EcgCrnnError(f"{path}: signals in {sorted(units)}, expected mV")
    if not np.isfinite(x).all():
        raise EcgCrnnError(f"{path}: holds invalid samples (WFDB's missing value)")
    return x.T.astype(np.float64), float(record.fs)

"""A small copy of the MIT-BIH Noise Stress Test Database's layout, for tests.

Records bw, em and ma as nstdb holds them (WFDB, 360 Hz, 2 channels, format 212, 200 adu/mV), only
`seconds` long and filled with band-limited Gaussian noise of each kind's band, plus a RECORDS file and
a SHA256SUMS.txt in PhysioNet's form (`<sha256>  <path>` per line, sorted by path) listing every file,
so a download path can be tested against a local server serving this directory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wfdb

from ecg_crnn.data.checksums import SUMS_NAME, format_sums
from ecg_crnn.hashing import sha256_file
from ecg_crnn.robustness.noise import BANDS_HZ, band_limited
from ecg_crnn.robustness.nstdb import FS, N_SIGNALS, RECORDS

GAIN = 200.0  # adu per mV, as in the MIT-BIH databases
RMS_MV = 0.3


def write_nstdb_fixture(out_dir: Path, seconds: float = 30.0, seed: int = 0) -> dict[str, str]:
    """Write the fixture into out_dir; returns {path: sha256} as listed in its SHA256SUMS.txt."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = int(round(seconds * FS))
    for record in RECORDS:
        low, high = BANDS_HZ[record]
        noise = band_limited(rng, N_SIGNALS, n, FS, low, min(high, 0.4 * FS)).astype(np.float64)
        noise *= RMS_MV / noise.std(axis=-1, keepdims=True)
        wfdb.wrsamp(
            record,
            fs=FS,
            units=["mV"] * N_SIGNALS,
            sig_name=["noise1", "noise2"],
            p_signal=noise.T,
            fmt=["212"] * N_SIGNALS,
            adc_gain=[GAIN] * N_SIGNALS,
            baseline=[0] * N_SIGNALS,
            write_dir=str(out_dir),
        )
    (out_dir / "RECORDS").write_text("".join(f"{record}\n" for record in RECORDS))
    sums = {p.name: sha256_file(p) for p in sorted(out_dir.iterdir()) if p.name != SUMS_NAME}
    (out_dir / SUMS_NAME).write_text(format_sums(sums))
    return sums

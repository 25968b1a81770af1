"""Reading WFDB records fast and strictly.

PTB-XL stores every record as format 16 (little-endian int16, leads interleaved) in one .dat per record.
For that layout the header is parsed (headers.py, which bounds it) and the samples are read in one go, ~35x
faster than `wfdb.rdsamp`, which spends most of its time parsing the header generically. Anything else (other
formats, several files, byte offsets) goes through the wfdb package itself.

Reading is strict, because silent damage is worse than a stop: every signal file must be a regular file in the
record's folder whose size is checked before a byte is read (the exact size for format 16, an upper bound
otherwise), and each lead's WFDB checksum (sum of samples mod 2^16) must match the header's. Units are
parsed per lead (`gain(baseline)/units`); `gains_in_mv` turns gains in uV or V into gains per mV, and
refuses any other unit, so a physical signal is always in mV. `signal_problems` names leads that carry no
signal at all (every sample WFDB's invalid value, or one constant).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .files import open_regular
from .headers import Header, RecordError, parse_header

__all__ = [
    "INVALID",
    "Header",
    "RecordError",
    "gains_in_mv",
    "parse_header",
    "read_digital",
    "signal_problems",
]


# Physical units a lead may be in, and how many of them make one mV.
_PER_MV = {"mV": 1.0, "uV": 1000.0, "\u00b5V": 1000.0, "\u03bcV": 1000.0, "V": 0.001}
INVALID = -32768  # WFDB's "no sample here" value in format 16


def gains_in_mv(header: Header, where: Path | str) -> tuple[float, ...]:
    """The header's gains in adu per mV, whatever unit each lead is in (mV, uV or V); any other unit is
    refused, naming `where` (the header file), the lead and the unit."""
    units = header.units or ("mV",) * header.n_sig
    gains = []
    for lead, gain, unit in zip(header.leads, header.gains, units, strict=True):
        per_mv = _PER_MV.get(unit)
        if per_mv is None:
            raise RecordError(
                f"{where}: lead {lead} is in {unit!r}; only mV, uV and V are understood (ECG leads)"
            )
        gains.append(gain * per_mv)
    return tuple(gains)


def signal_problems(digital: np.ndarray, leads: Sequence[str]) -> list[str]:
    """Why a record's signal cannot be used, one reason per bad lead; empty for a good record.

    A lead is bad when every sample is WFDB's invalid value (-32768 in format 16), or when it is flat
    (one constant value: a disconnected electrode, or the invalid value of another format). A record whose
    leads are all invalid gets one reason for all of them. Isolated invalid samples are not a problem here.
    """
    digital = np.asarray(digital)
    if digital.ndim != 2 or digital.shape[0] != len(leads):
        raise ValueError(f"digital has shape {digital.shape}, expected ({len(leads)}, samples)")
    if digital.shape[1] == 0:
        return ["no samples"]
    lo, hi = digital.min(axis=1), digital.max(axis=1)
    invalid = (lo == INVALID) & (hi == INVALID)
    if invalid.all():
        return [f"all {len(leads)} leads: every sample is the WFDB invalid value {INVALID}"]
    problems = []
    for lead, dead, flat in zip(leads, invalid, lo == hi, strict=True):
        if dead:
            problems.append(f"lead {lead}: every sample is the WFDB invalid value {INVALID}")
        elif flat:
            problems.append(f"lead {lead}: flat (constant)")
    return problems


def read_digital(record: Path) -> tuple[np.ndarray, Header]:
    """Digital samples (n_sig, n_samples) int16 and the header of the record at `record` (no suffix)."""
    header = parse_header(record.with_suffix(".hea"))
    if header.simple_fmt16:
        digital = _read_fmt16(record, header)
    else:
        _check_signal_files(record, header)
        digital = _read_with_wfdb(record, header)
    _check_checksums(record, header, digital)
    return np.ascontiguousarray(digital), header


def _open_signal_file(record: Path, name: str):
    dat = record.parent / name
    try:
        return (dat, *open_regular(dat, "signal file"))
    except FileNotFoundError:
        raise RecordError(f"{dat}: signal file not found (named by {record.with_suffix('.hea')})") from None


def _read_fmt16(record: Path, header: Header) -> np.ndarray:
    """One format-16 file, its size checked against the header before it is read."""
    dat, f, size = _open_signal_file(record, header.files[0])
    expected = header.n_sig * header.n_samples * 2
    with f:
        if size != expected:
            raise RecordError(
                f"{dat}: {size} bytes, but its header declares {header.n_sig} leads x {header.n_samples} "
                f"samples in format 16 = {expected} bytes (truncated or corrupt)"
            )
        raw = np.fromfile(f, dtype="<i2", count=expected // 2)
    if raw.size * 2 != expected:
        raise RecordError(f"{dat}: changed while it was read ({raw.size * 2} of {expected} bytes)")
    return raw.reshape(header.n_samples, header.n_sig).T


# The most bytes one sample takes in any WFDB format (format 32); a signal file larger than its signals' samples at
# this size, plus its byte offset, cannot be the header's.
_MAX_SAMPLE_BYTES = 4


def _check_signal_files(record: Path, header: Header) -> None:
    """Before wfdb reads them: every signal file regular and no larger than the header allows."""
    for name in dict.fromkeys(header.files):
        n = header.files.count(name)
        offset = max(o for f, o in zip(header.files, header.offsets, strict=True) if f == name)
        dat, f, size = _open_signal_file(record, name)
        f.close()
        most = offset + n * header.n_samples * _MAX_SAMPLE_BYTES
        if size > most:
            raise RecordError(
                f"{dat}: {size:,} bytes, more than {n} signal(s) x {header.n_samples:,} samples can take in any "
                f"WFDB format ({most:,} bytes); refused"
            )


def _read_with_wfdb(record: Path, header: Header) -> np.ndarray:
    import wfdb

    try:
        rec = wfdb.rdrecord(str(record), physical=False, return_res=16)
    except Exception as exc:  # wfdb raises many types for damaged files
        raise RecordError(f"{record}: wfdb could not read the record ({type(exc).__name__}: {exc})") from None
    digital = rec.d_signal.T.astype(np.int16)
    if digital.shape != (header.n_sig, header.n_samples):
        raise RecordError(
            f"{record}: header declares {header.n_samples} samples, data holds {digital.shape[1]}"
        )
    return digital


def _check_checksums(record: Path, header: Header, digital: np.ndarray) -> None:
    sums = digital.astype(np.int64).sum(axis=1) % 65536
    for lead, want, got in zip(header.leads, header.checksums, sums, strict=True):
        if want is not None and want % 65536 != int(got):
            raise RecordError(
                f"{record.with_suffix('.hea')}: lead {lead} checksum {want} in the header, "
                f"{int(got)} in the data: the header disagrees with its signal file"
            )

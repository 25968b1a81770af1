"""Reading WFDB records fast and strictly.

PTB-XL stores every record as format 16 (little-endian int16, leads interleaved) in one .dat per record.
For that layout the header is parsed here and the samples are read with one `np.fromfile`, ~35x faster
than `wfdb.rdsamp`, which spends most of its time parsing the header generically. Anything else (other
formats, several files, skew or byte offsets) goes through the wfdb package itself.

Reading is strict, because silent damage is worse than a stop: the .dat size must match the header's
sample count, and each lead's WFDB checksum (sum of samples mod 2^16) must match the header's. Units are
parsed per lead (`gain(baseline)/units`); `gains_in_mv` turns gains in uV or V into gains per mV, and
refuses any other unit, so a physical signal is always in mV. `signal_problems` names leads that carry no
signal at all (every sample WFDB's invalid value, or one constant).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EcgCrnnError


class RecordError(EcgCrnnError):
    pass


@dataclass(frozen=True)
class Header:
    name: str
    fs: float
    n_samples: int
    files: tuple[str, ...]  # per lead
    fmts: tuple[str, ...]
    gains: tuple[float, ...]
    baselines: tuple[int, ...]
    checksums: tuple[int | None, ...]
    leads: tuple[str, ...]
    units: tuple[str, ...] = ()  # per lead, as written after the gain's '/'; WFDB's default is mV

    @property
    def n_sig(self) -> int:
        return len(self.leads)

    @property
    def simple_fmt16(self) -> bool:
        return len(set(self.files)) == 1 and all(f == "16" for f in self.fmts)


def parse_header(path: Path) -> Header:
    """Parse a .hea file (record line + one line per signal); errors name the file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise RecordError(f"{path}: record header not found") from None
    except UnicodeDecodeError:
        raise RecordError(f"{path}: header is not text") from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    try:
        rec = lines[0].split()
        if "/" in rec[0]:
            raise ValueError(f"{rec[0]!r} is a multi-segment record, which is not supported")
        n_sig = int(rec[1])
        fs = float(rec[2].split("/")[0].split("(")[0])
        n_samples = int(rec[3])
        sig_lines = [ln.split() for ln in lines[1 : 1 + n_sig]]
        if len(sig_lines) != n_sig:
            raise ValueError(f"declares {n_sig} signals but describes {len(sig_lines)}")
        files, fmts, gains, baselines, checksums, leads, units = [], [], [], [], [], [], []
        for parts in sig_lines:
            files.append(parts[0])
            fmts.append(parts[1])
            gain_field, _, unit = parts[2].partition("/")
            units.append(unit or "mV")
            if "(" in gain_field:
                g, b = gain_field.rstrip(")").split("(")
                gains.append(float(g))
                baselines.append(int(b))
            else:
                gains.append(float(gain_field))
                baselines.append(int(parts[4]) if len(parts) > 4 else 0)  # baseline defaults to adc_zero
            checksums.append(int(parts[6]) if len(parts) > 6 else None)
            leads.append(" ".join(parts[8:]) if len(parts) > 8 else f"sig{len(leads)}")
    except (IndexError, ValueError) as exc:
        raise RecordError(f"{path}: malformed WFDB header ({exc})") from None
    if any(g == 0 for g in gains):
        gains = [200.0 if g == 0 else g for g in gains]  # WFDB: gain 0 means the default, 200 adu/mV
    return Header(
        path.stem,
        fs,
        n_samples,
        tuple(files),
        tuple(fmts),
        tuple(gains),
        tuple(baselines),
        tuple(checksums),
        tuple(leads),
        tuple(units),
    )


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
        dat = record.parent / header.files[0]
        try:
            raw = np.fromfile(dat, dtype="<i2")
        except FileNotFoundError:
            raise RecordError(
                f"{dat}: signal file not found (named by {record.with_suffix('.hea')})"
            ) from None
        expected = header.n_sig * header.n_samples
        if raw.size * 2 != dat.stat().st_size or raw.size != expected:
            raise RecordError(
                f"{dat}: {dat.stat().st_size} bytes, but its header declares {header.n_sig} leads x "
                f"{header.n_samples} samples in format 16 = {expected * 2} bytes (truncated or corrupt)"
            )
        digital = raw.reshape(header.n_samples, header.n_sig).T
    else:
        digital = _read_with_wfdb(record, header)
    _check_checksums(record, header, digital)
    return np.ascontiguousarray(digital), header


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

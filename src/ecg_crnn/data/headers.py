"""WFDB headers (.hea), parsed strictly and bounded before anything is sized from them.

A header is the first thing read of a record and says how large everything else is: the cache is allocated from
the first record's header, and the signal file's expected size from each header. So every number is bounded here
by what a resting 12-lead ECG can be, and every file name checked, before any of it is used:
- at most 16 signals (the 12 leads plus the 3 Frank leads the PTB database adds, and one more);
- a sampling rate above 0 and at most 1,000 Hz (diagnostic ECGs are recorded at 250-1,000 Hz; PTB-XL at 500 Hz,
  PTB at 1,000 Hz);
- at least one sample and at most 60 s of samples per signal (a resting ECG is 10 s, as every PTB-XL record; 60 s
  leaves room for a long rhythm strip). At 16 signals and 1,000 Hz that is 1.9 MB per record in format 16;
- a signal-file field that names a plain file in the record's own folder (no '/', no '..'): a header cannot make
  the reader open anything elsewhere;
- finite, positive gains (0 means WFDB's default, 200 adu per physical unit);
- the header itself a regular file of at most 64 KiB (PTB-XL's are ~600 bytes).
WFDB features the readers do not handle are refused by name, rather than read wrongly: multi-segment records,
several samples of a signal per frame (multi-frequency records) and skew. Byte offsets are read through wfdb.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import EcgCrnnError
from .files import is_plain_name, read_small

MAX_SIGNALS = 16
MAX_FS = 1000.0
MAX_SECONDS = 60.0
MAX_HEADER_BYTES = 64 * 1024
_FORMAT = re.compile(r"^(\d+)(?:x(\d+))?(?::(\d+))?(?:\+(\d+))?$")  # FORMAT[xSPF][:SKEW][+OFFSET]


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
    offsets: tuple[int, ...] = ()  # per lead, bytes to skip at the start of its signal file

    @property
    def n_sig(self) -> int:
        return len(self.leads)

    @property
    def simple_fmt16(self) -> bool:
        return len(set(self.files)) == 1 and all(f == "16" for f in self.fmts) and not any(self.offsets)


def parse_header(path: Path) -> Header:
    """Parse and bound a .hea file (record line + one line per signal); errors name the file."""
    path = Path(path)
    try:
        text = read_small(path, MAX_HEADER_BYTES, "record header").decode("ascii")
    except FileNotFoundError:
        raise RecordError(f"{path}: record header not found") from None
    except UnicodeDecodeError:
        raise RecordError(f"{path}: header is not text") from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    try:
        rec = lines[0].split()
        if "/" in rec[0]:
            raise ValueError(f"{rec[0]!r} is a multi-segment record, which is not supported")
        n_sig, fs, n_samples = int(rec[1]), float(rec[2].split("/")[0].split("(")[0]), int(rec[3])
        _bound_record(n_sig, fs, n_samples)
        sig_lines = [ln.split() for ln in lines[1 : 1 + n_sig]]
        if len(sig_lines) != n_sig:
            raise ValueError(f"declares {n_sig} signals but describes {len(sig_lines)}")
        fields = [_signal(parts, i) for i, parts in enumerate(sig_lines)]
    except (IndexError, ValueError) as exc:
        raise RecordError(f"{path}: malformed WFDB header ({exc})") from None
    except _Unsupported as exc:
        raise RecordError(
            f"{path}: {exc}; this reader does not support it (a valid WFDB record, not a corrupt one)"
        ) from None
    files, fmts, gains, baselines, checksums, leads, units, offsets = (
        tuple(c) for c in zip(*fields, strict=True)
    )
    return Header(path.stem, fs, n_samples, files, fmts, gains, baselines, checksums, leads, units, offsets)


class _Unsupported(Exception):
    pass


def _bound_record(n_sig: int, fs: float, n_samples: int) -> None:
    if not 1 <= n_sig <= MAX_SIGNALS:
        raise ValueError(f"{n_sig} signals; a 12-lead ECG record has 1 to {MAX_SIGNALS}")
    if not (math.isfinite(fs) and 0 < fs <= MAX_FS):
        raise ValueError(f"sampling rate {fs:g} Hz; an ECG's is above 0 and at most {MAX_FS:g} Hz")
    most = int(MAX_SECONDS * fs)
    if not 1 <= n_samples <= most:
        raise ValueError(
            f"{n_samples:,} samples per signal ({n_samples / fs:,.6g} s at {fs:g} Hz); a resting ECG has at least 1 "
            f"and at most {MAX_SECONDS:g} s ({most:,} samples at {fs:g} Hz)"
        )


def _signal(parts: list[str], i: int) -> tuple:
    """One signal line -> (file, format, gain, baseline, checksum, lead, unit, byte offset)."""
    file, lead = parts[0], " ".join(parts[8:]) if len(parts) > 8 else f"sig{i}"
    if not is_plain_name(file):
        raise ValueError(
            f"signal {lead}: signal file {file!r} is not a plain file name in the record's own folder; refused"
        )
    fmt = _FORMAT.match(parts[1])
    if fmt is None:
        raise ValueError(f"signal {lead}: format {parts[1]!r} is not FORMAT[xSPF][:SKEW][+OFFSET]")
    spf, skew, offset = int(fmt[2] or 1), int(fmt[3] or 0), int(fmt[4] or 0)
    if spf > 1:
        raise _Unsupported(f"lead {lead} has {spf} samples per frame (a multi-frequency record)")
    if skew:
        raise _Unsupported(f"lead {lead} has a skew of {skew} samples")
    gain_field, _, unit = (parts[2] if len(parts) > 2 else "0").partition("/")
    if "(" in gain_field:
        g, b = gain_field.rstrip(")").split("(")
        gain, baseline = float(g), int(b)
    else:
        gain, baseline = float(gain_field), int(parts[4]) if len(parts) > 4 else 0  # baseline: adc_zero
    gain = 200.0 if gain == 0 else gain  # WFDB: gain 0 means the default, 200 adu per unit
    if not (math.isfinite(gain) and gain > 0):
        raise ValueError(f"signal {lead}: gain {gain_field!r} is not a finite positive number")
    checksum = int(parts[6]) if len(parts) > 6 else None
    return file, fmt[1], gain, baseline, checksum, lead, unit or "mV", offset

"""Building the signal cache (its layout: signals.py): every record of a task read into one int16 array.

Every record is checked against the sampling rate asked for and against the first record: same rate,
same lead names, same length. What changes the numbers' meaning is handled so that the cache is right:
leads in another order are put in the first record's order (gains and baselines with them), and gains in
uV or V are stored per mV. Leads with no signal at all (see `signal_problems`) and leads whose physical
amplitude no ECG can have (plausibility.py) are reported back to the caller, which drops or refuses those
records.

The cache is sized from the first record, so that record is read and checked whole (its header bounded by
headers.py, its signal file's size and checksums) before the cache is allocated.
"""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import EcgCrnnError
from .plausibility import amplitude_problems
from .records import Header, gains_in_mv, read_digital, signal_problems

_CHUNK = 256  # records per task handed to a worker process


@dataclass(frozen=True)
class _Reference:
    """What every record must agree on: the rate asked for and the first record's leads and length."""

    fs: float
    leads: tuple[str, ...]
    n_samples: int
    first: str  # the first record's header, for messages
    fs_from: str  # where the rate comes from, for messages

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.leads), self.n_samples)


def _conform(path: str, digital: np.ndarray, header: Header, ref: _Reference):
    """The record's digital samples, gains per mV and baselines in the reference's lead order; errors
    name the header file, the field and both values."""
    hea = f"{path}.hea"
    if header.fs != ref.fs:
        raise EcgCrnnError(
            f"{hea}: {header.fs:g} Hz, but {ref.fs_from}: a record at another rate would be read as a "
            "different signal"
        )
    if len(set(header.leads)) != len(header.leads):
        raise EcgCrnnError(f"{hea}: lead names {list(header.leads)} repeat a name")
    if sorted(header.leads) != sorted(ref.leads):
        raise EcgCrnnError(
            f"{hea}: leads {list(header.leads)}, but the first record's ({ref.first}) are "
            f"{list(ref.leads)}: records must have the same leads"
        )
    if header.n_samples != ref.n_samples or digital.shape != (len(header.leads), header.n_samples):
        raise EcgCrnnError(
            f"{hea}: {digital.shape[0]} leads x {digital.shape[1]} samples, but the first record "
            f"({ref.first}) has {ref.shape[0]} x {ref.shape[1]}: records must share one shape"
        )
    gains = np.asarray(gains_in_mv(header, hea), np.float32)
    baselines = np.asarray(header.baselines, np.int32)
    if header.leads != ref.leads:
        order = [header.leads.index(lead) for lead in ref.leads]
        digital, gains, baselines = digital[order], gains[order], baselines[order]
    return digital, gains, baselines


def _read_chunk(out_path: str, start: int, paths: list[str], ref: _Reference):
    """Worker: read records into rows start.. of the shared memory-mapped output; returns their gains and
    baselines, and the rows whose signal is unusable with the reasons."""
    out = np.load(out_path, mmap_mode="r+")
    gains = np.empty((len(paths), len(ref.leads)), np.float32)
    baselines = np.empty((len(paths), len(ref.leads)), np.int32)
    problems: dict[int, list[str]] = {}
    for i, p in enumerate(paths):
        digital, header = read_digital(Path(p))
        digital, gains[i], baselines[i] = _conform(p, digital, header, ref)
        out[start + i] = digital
        reasons = signal_problems(digital, ref.leads) + amplitude_problems(
            digital, gains[i], baselines[i], ref.leads
        )
        if reasons:
            problems[start + i] = reasons
    out.flush()
    return start, gains, baselines, problems


def _reference(first: Path, sampling_rate: float | None) -> _Reference:
    """What every record must agree on, from the first record, read and checked whole before anything is sized
    from its header."""
    first_hea = first.with_suffix(".hea")
    digital, header = read_digital(first)  # bounded header, checked size and checksums
    if sampling_rate is None:
        fs, fs_from = header.fs, f"the first record ({first_hea}) is at {header.fs:g} Hz"
    else:
        fs, fs_from = float(sampling_rate), f"data.sampling_rate is {sampling_rate:g}"
    ref = _Reference(float(fs), header.leads, header.n_samples, str(first_hea), fs_from)
    _conform(str(first), digital, header, ref)  # its rate, lead names and units
    return ref


def build_cache(
    record_paths: list[Path],
    out_dir: Path,
    workers: int = 2,
    progress: bool = True,
    sampling_rate: float | None = None,
) -> dict[int, list[str]]:
    """Read every record into `out_dir` (which must exist, typically a fresh temporary directory).

    Every record must be at `sampling_rate` (by default, the first record's) and have the first record's
    leads and length. Returns {row: reasons} for the records whose signal is unusable (`signal_problems`);
    they are in the cache like the others, for the caller to refuse or take out with `drop_rows`.
    """
    if not record_paths:
        raise EcgCrnnError("no records to read")
    ref = _reference(record_paths[0], sampling_rate)
    shape = ref.shape
    n = len(record_paths)
    sig_path = out_dir / "signals.npy"
    try:
        np.lib.format.open_memmap(sig_path, mode="w+", dtype=np.int16, shape=(n, *shape)).flush()
    except OSError as exc:
        raise EcgCrnnError(
            f"{sig_path}: cannot create the signal cache of {n:,} records x {shape[0]} leads x {shape[1]:,} "
            f"samples ({n * shape[0] * shape[1] * 2 / 1e9:,.2f} GB): {exc.strerror or exc}"
        ) from None
    gains = np.empty((n, shape[0]), np.float32)
    baselines = np.empty((n, shape[0]), np.int32)
    problems: dict[int, list[str]] = {}
    chunks = [(s, [str(p) for p in record_paths[s : s + _CHUNK]]) for s in range(0, n, _CHUNK)]
    bar = tqdm(
        total=n, desc="read records", unit="rec", disable=not progress, mininterval=1.0, file=sys.stderr
    )

    def store(result):
        start, g, b, bad = result
        gains[start : start + len(g)] = g
        baselines[start : start + len(b)] = b
        problems.update(bad)
        bar.update(len(g))

    if workers <= 1 or len(chunks) == 1:
        for start, paths in chunks:
            store(_read_chunk(str(sig_path), start, paths, ref))
    else:
        with ProcessPoolExecutor(min(workers, os.cpu_count() or 1)) as pool:
            futures = [pool.submit(_read_chunk, str(sig_path), s, ps, ref) for s, ps in chunks]
            try:
                for fut in as_completed(futures):
                    store(fut.result())
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
    bar.close()
    np.savez(out_dir / "calibration.npz", gains=gains, baselines=baselines)
    meta = {"fs": ref.fs, "leads": list(ref.leads), "units": "mV", "shape": [n, *shape], "dtype": "int16"}
    (out_dir / "signals.json").write_text(json.dumps(meta, indent=2) + "\n")
    return dict(sorted(problems.items()))


def drop_rows(directory: Path, rows) -> int:
    """Take `rows` out of the cache in `directory` (signals, calibration and shape), keeping the order of
    the rest. The signals are copied chunk by chunk into a new file that replaces the old one."""
    directory = Path(directory)
    sig_path = directory / "signals.npy"
    old = np.load(sig_path, mmap_mode="r")
    keep = np.ones(old.shape[0], bool)
    keep[np.asarray(list(rows), dtype=np.int64)] = False
    kept = np.flatnonzero(keep)
    if not len(kept):
        raise EcgCrnnError(f"{directory}: no record would be left in the signal cache")
    tmp_path = directory / ".signals.compact.npy"
    new = np.lib.format.open_memmap(tmp_path, mode="w+", dtype=old.dtype, shape=(len(kept), *old.shape[1:]))
    for s in range(0, len(kept), _CHUNK):
        new[s : s + _CHUNK] = old[kept[s : s + _CHUNK]]
    new.flush()
    del new, old
    os.replace(tmp_path, sig_path)
    with np.load(directory / "calibration.npz") as cal:
        gains, baselines = cal["gains"][kept], cal["baselines"][kept]
    np.savez(directory / "calibration.npz", gains=gains, baselines=baselines)
    meta = json.loads((directory / "signals.json").read_text())
    meta["shape"][0] = len(kept)
    (directory / "signals.json").write_text(json.dumps(meta, indent=2) + "\n")
    return int((~keep).sum())

"""The corruptions by name, what their severities mean, and `corrupt`, the one entry point.

    corrupt(x, record_ids, "gaussian", 12, seed=0, fs=100) -> Corrupted(x, lost, source)

Determinism: the output for a record depends only on (corruption, severity, seed), the record's id and
signal, the sampling rate, and the noise source's files; not on the other records in the call, their
order, or the block size. A clean severity (`Corruption.clean`: infinite SNR, 0 leads, gain 1, 0 s)
returns a copy of the input, bit for bit. Bit-identical output is promised on one machine and software
stack: another CPU's FFT or libm may differ in the last bits, so a study that spreads evaluation over
machines should corrupt the fold once and share the result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import EcgCrnnError
from . import corruptions as c
from .leads import LEADS, LIMB, standard_positions
from .noise import NoiseSource, SyntheticNoise
from .snr import SCOPES

BLOCK = 256  # records per block: bounds the temporaries (a block's noise: 12 MB at 100 Hz, 60 MB at 500 Hz)


@dataclass(frozen=True)
class Corruption:
    name: str
    apply: Callable
    severity: str  # what the number means
    clean: float
    check: Callable[[float], str | None]  # a reason the severity is invalid, or None
    # Where its noise comes from: "source" (the configured noise source: nstdb or synthetic),
    # "synthetic" (always generated here), "none" (nothing random is added).
    noise: str = "none"


@dataclass(frozen=True)
class Corrupted:
    x: np.ndarray  # (records, leads, samples) float32, mV
    lost: np.ndarray  # (records, leads) bool: leads set to missing
    source: str  # where the noise came from: "nstdb", "synthetic", or "none" (nothing random was added)


def _snr(v):
    return None if math.isfinite(v) or v == math.inf else "a finite SNR in dB, or inf for clean"


def _leads(v):
    whole = math.isfinite(v) and v == int(v)
    return None if whole and 0 <= v <= len(LEADS) else f"a whole number of leads, 0 to {len(LEADS)}"


def _switch(v):
    return None if v in (0, 1) else "1 (applied) or 0 (clean)"


def _gain(v):
    return None if math.isfinite(v) and v > 0 else "a positive factor"


def _shift(v):
    return None if math.isfinite(v) and v >= 0 else "a non-negative number of seconds"


_SNR = "SNR in dB, per lead (or per record: snr_per), lower is worse; inf: clean"
_HUM = "SNR in dB at the electrodes, before the recording chain; inf: clean"
REGISTRY: dict[str, Corruption] = {
    k.name: k
    for k in (
        Corruption("gaussian", c.add_gaussian, "white Gaussian noise, " + _SNR, math.inf, _snr, "synthetic"),
        Corruption(
            "baseline_wander", c.source_noise("bw"), "baseline wander, " + _SNR, math.inf, _snr, "source"
        ),
        Corruption(
            "electrode_motion", c.source_noise("em"), "electrode motion, " + _SNR, math.inf, _snr, "source"
        ),
        Corruption("muscle", c.source_noise("ma"), "muscle artifact, " + _SNR, math.inf, _snr, "source"),
        Corruption("powerline50", c.powerline_noise(50.0), "50 Hz hum, " + _HUM, math.inf, _snr, "synthetic"),
        Corruption("powerline60", c.powerline_noise(60.0), "60 Hz hum, " + _HUM, math.inf, _snr, "synthetic"),
        Corruption("lead_loss_random", c.lose_random_leads, "leads lost per record, at random", 0, _leads),
        Corruption("limb_leads_only", c.keep_only(LIMB), "1: the six chest leads lost", 0, _switch),
        Corruption("lead_I_only", c.keep_only(("I",)), "1: every lead but I lost", 0, _switch),
        Corruption("gain", c.scale_gain, "factor on every lead", 1.0, _gain),
        Corruption("time_shift", c.shift_time, "circular shift in seconds, random direction", 0.0, _shift),
    )
}


def check_severity(name: str, severity) -> float:
    """The severity as a float, or an error naming the corruption and what it expects."""
    if name not in REGISTRY:
        raise EcgCrnnError(f"robustness: unknown corruption {name!r} (known: {', '.join(REGISTRY)})")
    try:
        value = float(severity)
    except (TypeError, ValueError):
        value = math.nan
    reason = "a number" if isinstance(severity, bool) else REGISTRY[name].check(value)
    if reason:
        raise EcgCrnnError(f"robustness: {name} severity {severity!r} is invalid: expected {reason}")
    return value


def _check_inputs(x, record_ids, leads, fill_mv, snr_per):
    if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim != 3:
        raise EcgCrnnError("robustness: signals must be a float32 array (records, leads, samples) in mV")
    ids = np.asarray(record_ids)
    if ids.shape != (x.shape[0],) or not np.issubdtype(ids.dtype, np.integer):
        raise EcgCrnnError(f"robustness: {x.shape[0]} records need as many integer record ids")
    standard_positions(leads)
    if x.shape[1] != len(leads):
        raise EcgCrnnError(f"robustness: signals hold {x.shape[1]} leads, {len(leads)} lead names given")
    if fill_mv is not None and np.shape(fill_mv) != (len(leads),):
        raise EcgCrnnError(f"robustness: fill_mv needs one value per lead ({len(leads)})")
    if snr_per not in SCOPES:
        raise EcgCrnnError(f"robustness: snr_per {snr_per!r} is not one of {', '.join(SCOPES)}")
    return ids


def corrupt(
    x: np.ndarray,
    record_ids: Sequence[int],
    name: str,
    severity: float,
    *,
    seed: int,
    fs: float,
    leads: Sequence[str] = LEADS,
    noise: NoiseSource | None = None,
    snr_per: str = "lead",
    fill_mv: np.ndarray | None = None,
) -> Corrupted:
    """Records x (records, leads, samples) float32 in mV, corrupted by `name` at `severity`.

    `record_ids`: one stable id per record (PTB-XL's ecg_id). `noise`: the source of bw/em/ma noise
    (`sources.open_noise_source`); None: the synthetic generators. `snr_per`: "lead" or "record"
    (see `snr`). `fill_mv`: what a lost lead reads, per lead (see `corruptions`)."""
    value = check_severity(name, severity)
    ids = _check_inputs(x, record_ids, leads, fill_mv, snr_per)
    corruption = REGISTRY[name]
    noise = noise if noise is not None else SyntheticNoise()
    lost = np.zeros(x.shape[:2], bool)
    if value == corruption.clean:
        return Corrupted(x.copy(), lost, "none")
    ctx = c.Context(name, seed, float(fs), tuple(leads), noise, snr_per, fill_mv)
    out = np.empty_like(x)
    for s in range(0, len(ids), BLOCK):
        y, block_lost = corruption.apply(x[s : s + BLOCK], ids[s : s + BLOCK], value, ctx)
        out[s : s + BLOCK] = y
        if block_lost is not None:
            lost[s : s + BLOCK] = block_lost
    return Corrupted(out, lost, noise.name if corruption.noise == "source" else corruption.noise)


def zero_lost_leads(x_standardized: np.ndarray, lost: np.ndarray) -> np.ndarray:
    """A copy of standardized records with the lost leads at exactly 0 (the usual "lead missing")."""
    out = np.array(x_standardized, copy=True)
    out[np.asarray(lost, bool)] = 0.0
    return out

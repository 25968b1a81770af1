"""The corruptions, as pure functions over a block of records.

Each takes x (records, 12, samples) float32 in mV, the records' ids, a severity and a `Context`, and
returns the corrupted block (float32, a new array) and, for lead loss, the (records, leads) mask of lost
leads. `registry.corrupt` is the entry point: it checks inputs, returns clean severities untouched and
processes long folds block by block. Random draws come from each record's own generator
(`seeding.record_generator`, keyed by the corruption's name, the seed and the record's id).

Severities:
- additive noise (gaussian, baseline_wander, electrode_motion, muscle, powerline50, powerline60): an SNR in
  dB as `snr` defines it, per lead by default. SNR rather than millivolts because it is the standard
  severity of noise stress tests (nstdb's own records are at 24 ... -6 dB), it means the same at every
  lead and amplitude, and one axis then orders every kind of noise. The noise kinds are scaled in the band
  the model sees (at the study's rate); powerline at the electrodes, before the chain (see `powerline`).
- lead loss: a lost lead is exactly `fill_mv` (default 0 mV: a disconnected lead reads no potential).
  After standardization 0 mV becomes -mean/std of that lead, not 0. "Lead missing" for a model usually
  means 0 in standardized units: pass the training folds' per-lead means, as the float32 the
  standardization subtracts, as `fill_mv` (then (fill - mean) / std is exactly 0), or set the leads in
  the returned mask to 0 after standardizing (`zero_lost_leads`).
- gain: a factor on every lead (0.5 and 2 are an electrocardiograph set to 5 or 20 mm/mV while the
  reader assumes 10, or a mis-stated ADC gain).
- time_shift: seconds, rounded to whole samples, each record's direction drawn at random. Circular: the
  record is rotated, so every sample stays (the same beats, power and class evidence) and a change in a
  score isolates the models' sensitivity to where things are from any loss of information; the price is
  one seam where the record's end meets its start. Padding would instead drop the shifted-out seconds
  and add a flat stretch, mixing a shift with a truncation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import EcgCrnnError
from . import powerline
from .leads import LEADS, channels_to_leads, positions, to_array_order
from .noise import NoiseSource, SyntheticNoise
from .seeding import record_generator
from .snr import add_at_snr, scale_factors, signal_power


@dataclass(frozen=True)
class Context:
    stream: str  # the corruption's name: its random stream
    seed: int
    fs: float
    leads: tuple[str, ...] = LEADS
    noise: NoiseSource = field(default_factory=SyntheticNoise)
    snr_per: str = "lead"
    fill_mv: np.ndarray | None = None  # per lead, in the order of `leads`; None: 0 mV


def _per_record(ids: np.ndarray, ctx: Context, draw) -> np.ndarray:
    return np.stack([draw(record_generator(ctx.stream, ctx.seed, i)) for i in ids])


def add_gaussian(x, ids, snr_db, ctx: Context):
    """White Gaussian noise, independent per lead (amplifier and quantization noise)."""
    noise = _per_record(ids, ctx, lambda rng: rng.standard_normal(x.shape[1:], dtype=np.float32))
    return add_at_snr(x, to_array_order(noise, ctx.leads), snr_db, ctx.snr_per), None


def source_noise(kind: str):
    """The corruption adding noise of nstdb kind `kind` (bw, em, ma) from the context's noise source."""

    def add(x, ids, snr_db, ctx: Context):
        n = x.shape[-1]
        channels = _per_record(ids, ctx, lambda rng: ctx.noise.channels(kind, rng, n, ctx.fs))
        return add_at_snr(x, channels_to_leads(channels, ctx.leads), snr_db, ctx.snr_per), None

    add.__doc__ = f"Additive noise of kind {kind!r} from the configured source, at an SNR in dB."
    return add


def powerline_noise(mains_hz: float):
    """The corruption adding mains hum at `mains_hz`, its SNR set at the source rate (see `powerline`)."""

    def add(x, ids, snr_db, ctx: Context):
        phases = _per_record(ids, ctx, lambda rng: rng.uniform(0, 2 * np.pi, len(LEADS)))
        noise, power = powerline.hum(to_array_order(phases, ctx.leads), mains_hz, ctx.fs, x.shape[-1])
        k = scale_factors(signal_power(x), power, snr_db, ctx.snr_per).astype(np.float32)
        return x + k[..., None] * noise, None

    add.__doc__ = f"Powerline interference at {mains_hz:g} Hz, at an SNR in dB at the electrodes."
    return add


def _lose(x, lost: np.ndarray, ctx: Context):
    y = x.copy()
    fill = np.zeros(x.shape[1], np.float32) if ctx.fill_mv is None else np.asarray(ctx.fill_mv, np.float32)
    rows, leads = np.nonzero(lost)
    y[rows, leads, :] = fill[leads, None]
    return y, lost


def lose_random_leads(x, ids, k, ctx: Context):
    """k of the 12 leads lost per record, chosen at random; nested in k (the leads lost at k = 3 include
    those lost at k = 1), since each record's leads are ranked once and the first k are lost."""
    k = int(k)
    ranked = _per_record(ids, ctx, lambda rng: rng.permutation(len(LEADS)))
    lost_standard = np.zeros((len(ids), len(LEADS)), bool)
    np.put_along_axis(lost_standard, ranked[:, :k], True, axis=1)
    return _lose(x, to_array_order(lost_standard, ctx.leads), ctx)


def keep_only(kept: Sequence[str]):
    """The corruption that loses every lead but `kept` (severity 1: on)."""

    def apply(x, ids, on, ctx: Context):
        lost = np.ones((len(ids), x.shape[1]), bool)
        lost[:, positions(ctx.leads, kept)] = False
        return _lose(x, lost, ctx)

    apply.__doc__ = f"Every lead lost but {', '.join(kept)}."
    return apply


def scale_gain(x, ids, factor, ctx: Context):
    """Every lead multiplied by `factor` (no random draw: the same for every seed)."""
    return (x * np.float32(factor)).astype(np.float32), None


def shift_time(x, ids, seconds, ctx: Context):
    """Each record rotated by round(seconds x fs) samples, later or earlier at random."""
    shift, n = round(seconds * ctx.fs), x.shape[-1]
    if not 1 <= shift < n:
        raise EcgCrnnError(
            f"robustness: a time shift of {seconds:g} s is {shift} samples at {ctx.fs:g} Hz; it needs at least "
            f"one and fewer than the record's {n}"
        )
    signs = _per_record(ids, ctx, lambda rng: rng.choice(np.array([-1, 1])))
    out = np.empty_like(x)
    for r, samples in enumerate(signs * shift):
        out[r] = np.roll(x[r], samples, axis=-1)
    return out, None

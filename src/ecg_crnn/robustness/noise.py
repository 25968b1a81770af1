"""Noise sources for the three artifact kinds of the MIT-BIH Noise Stress Test Database, and the synthetic
generators used when no copy of that database is configured (the embedded default).

A source delivers, for one record, 8 noise channels at the study's rate (leads I and II, then V1..V6; see
`leads.channels_to_leads` for the 12 leads), drawn from that record's own generator. Their amplitude is
arbitrary: the corruption scales them to the asked SNR. Kinds (nstdb's record names):
  bw  baseline wander: band-limited Gaussian noise, 0.05-0.7 Hz (respiration, 0.1-0.5 Hz, and slow
      drift), all of its power below 1 Hz.
  em  electrode motion: 0.5-10 Hz band-limited Gaussian noise under a burst envelope, so it comes in
      episodes and overlaps the P-QRS-T band (why nstdb calls it the most troublesome kind). The envelope
      is a floor plus the square of 0-0.5 Hz Gaussian noise, normalized to mean 1: a chi-square process
      whose peaks, a few times the mean and one to two seconds long, are the episodes of motion.
  ma  muscle (EMG) artifact: band-limited Gaussian noise from 20 Hz up to 200 Hz or 0.4 x the sampling
      rate, whichever is lower (what an anti-aliasing chain passes): 20-200 Hz at 500 Hz, 20-40 Hz at
      100 Hz.
The synthetic kinds are stationary in their spectral shape and Gaussian: a stand-in with the right band,
not a model of real artifacts. Results state which source was used.

Band-limited noise is drawn in the frequency domain: independent complex Gaussian coefficients on the
record's Fourier bins inside the band, zero elsewhere, then one inverse FFT (the same as ideally
filtering white noise, circularly, so its statistics are the same at both ends, and it costs only as many
draws as there are bins in the band). Each record is transformed alone, never as part of a batch, so its
noise is the same whatever other records are processed with it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

import numpy as np

from ..errors import EcgCrnnError
from .leads import N_CHANNELS

KINDS = {"bw": "baseline wander", "em": "electrode motion", "ma": "muscle artifact"}
BANDS_HZ = {"bw": (0.05, 0.7), "em": (0.5, 10.0), "ma": (20.0, 200.0)}
MA_TOP_SHARE = 0.4  # of the sampling rate: the chain's passband edge (0.8 x Nyquist)
EM_ENVELOPE_HZ = (0.0, 0.5)
EM_FLOOR = 0.1  # the envelope between episodes, relative to its mean


class NoiseSource(Protocol):
    name: str  # "synthetic" or "nstdb": reported with every result

    def channels(self, kind: str, rng: np.random.Generator, n_samples: int, fs: float) -> np.ndarray:
        """(8, n_samples) float32 noise of `kind` for one record at `fs`."""
        ...


def band(kind: str, fs: float) -> tuple[float, float]:
    low, high = BANDS_HZ[kind]
    return (low, min(high, MA_TOP_SHARE * fs)) if kind == "ma" else (low, high)


@lru_cache(maxsize=32)
def band_bins(n_samples: int, fs: float, low: float, high: float) -> np.ndarray:
    """Indices of an n-sample record's rfft bins inside [low, high] Hz; a record too short or too slowly
    sampled to hold any is an error rather than silently noise-free."""
    freqs = np.fft.rfftfreq(n_samples, 1.0 / fs)
    bins = np.flatnonzero((freqs >= low) & (freqs <= high))
    if not bins.size:
        raise EcgCrnnError(
            f"robustness: a {n_samples / fs:g} s record at {fs:g} Hz has no frequency in {low:g}-{high:g} Hz "
            "to put synthetic noise in"
        )
    bins.setflags(write=False)
    return bins


def band_limited(
    rng: np.random.Generator, n_channels: int, n_samples: int, fs: float, low: float, high: float
) -> np.ndarray:
    """Gaussian noise with a flat spectrum over [low, high] Hz and nothing elsewhere, (channels, samples)
    float32."""
    bins = band_bins(n_samples, fs, low, high)
    draws = rng.standard_normal((2, n_channels, bins.size), dtype=np.float32)
    spectrum = np.zeros((n_channels, n_samples // 2 + 1), np.complex64)
    spectrum[:, bins] = draws[0] + 1j * draws[1]
    return np.fft.irfft(spectrum, n=n_samples, axis=-1)


def burst_envelope(rng: np.random.Generator, n_channels: int, n_samples: int, fs: float) -> np.ndarray:
    """(channels, samples): EM_FLOOR plus squared slow Gaussian noise of mean 1, independent per channel."""
    slow = np.square(band_limited(rng, n_channels, n_samples, fs, *EM_ENVELOPE_HZ))
    return EM_FLOOR + slow / slow.mean(axis=-1, keepdims=True)


class SyntheticNoise:
    """The embedded noise source: the generators above."""

    name = "synthetic"

    def channels(self, kind: str, rng: np.random.Generator, n_samples: int, fs: float) -> np.ndarray:
        if kind not in KINDS:
            raise EcgCrnnError(f"robustness: unknown noise kind {kind!r} (known: {', '.join(KINDS)})")
        noise = band_limited(rng, N_CHANNELS, n_samples, fs, *band(kind, fs))
        if kind == "em":
            noise *= burst_envelope(rng, N_CHANNELS, n_samples, fs)
        return noise

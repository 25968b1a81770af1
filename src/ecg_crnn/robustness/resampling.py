"""Resampling the way a recording chain does it: an anti-aliasing low-pass filter, then decimation.

`resample_chain` changes the rate by a rational factor up/down with scipy's polyphase `resample_poly`,
given our own linear-phase FIR filter rather than scipy's default one. The filter is a Kaiser-window
design, at the upsampled rate, that passes 0 to 0.8 x the lower of the two Nyquist frequencies (ripple
under 0.01 dB) and stops at least 60 dB from that Nyquist frequency on: what lies above the new Nyquist
frequency is removed instead of folding back onto the band. From 500 Hz or 360 Hz to 100 Hz: flat to
40 Hz, -61 dB at 50 Hz, -68 to -70 dB at 60 Hz, more above.

scipy's default filter for 500 -> 100 Hz (Kaiser beta 5, cutoff at 50 Hz) would instead leave 50 Hz only
6 dB down, at the new Nyquist frequency, and 60 Hz 55 dB down: a chain with such a filter passes half the
amplitude of 50 Hz mains hum. This is an assumption about the chain behind PTB-XL's 100 Hz records,
which the database does not document; a filter that stops the new Nyquist band is the standard design.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np
from scipy import signal

STOPBAND_DB = 60.0
PASSBAND_EDGE = 0.8  # of the lower Nyquist frequency


def rate_ratio(source_fs: float, target_fs: float) -> tuple[int, int]:
    """(up, down): target_fs / source_fs as a fraction in lowest terms."""
    ratio = Fraction(target_fs).limit_denominator(10_000) / Fraction(source_fs).limit_denominator(10_000)
    return ratio.numerator, ratio.denominator


@lru_cache(maxsize=32)
def chain_filter(source_fs: float, target_fs: float) -> np.ndarray:
    """The anti-aliasing FIR (odd length, unit gain at 0 Hz) at the upsampled rate source_fs x up."""
    up, _ = rate_ratio(source_fs, target_fs)
    rate = source_fs * up
    nyquist = min(source_fs, target_fs) / 2
    width = (1 - PASSBAND_EDGE) * nyquist
    numtaps, beta = signal.kaiserord(STOPBAND_DB, width / (rate / 2))
    # Odd length: a whole-sample group delay, which resample_poly compensates exactly.
    taps = signal.firwin(numtaps | 1, nyquist - width / 2, window=("kaiser", beta), fs=rate)
    taps.setflags(write=False)
    return taps


def resample_chain(x: np.ndarray, source_fs: float, target_fs: float) -> np.ndarray:
    """x (..., samples) at source_fs -> float64 at target_fs, along the last axis. The edges are filtered
    as if the signal were zero outside it: trim `edge_samples` at each end where that matters."""
    x = np.asarray(x, np.float64)
    up, down = rate_ratio(source_fs, target_fs)
    if up == down == 1:
        return x.copy()
    return signal.resample_poly(x, up, down, axis=-1, window=np.array(chain_filter(source_fs, target_fs)))


def edge_samples(source_fs: float, target_fs: float) -> int:
    """Output samples at each end of `resample_chain`'s result that the zero padding reaches."""
    up, _ = rate_ratio(source_fs, target_fs)
    half = (len(chain_filter(source_fs, target_fs)) - 1) / 2 / (source_fs * up)  # seconds
    return int(np.ceil(half * target_fs)) + 1

"""Powerline interference at 50 or 60 Hz, synthesized at the acquisition rate and passed through the chain.

The interference is a pure sinusoid at the mains frequency (real hum has weaker harmonics; they are left
out), with a random phase per record and lead, since each electrode pair couples to the mains through its
own impedances. Its severity is an SNR at the electrodes: the sinusoid's power at the source rate
(500 Hz, the rate PTB-XL was acquired at) against the lead's signal power, as `snr` defines them.

It then goes through the recording chain to the study's rate (`resampling.resample_chain`). At 500 Hz the
chain is the identity and the hum is all there, at the asked SNR. At 100 Hz, 50 Hz is the new Nyquist
frequency and 60 Hz would alias to 40 Hz; the anti-aliasing filter attenuates 50 Hz by 61 dB and 60 Hz by
70 dB first, so what reaches a 100 Hz model is a residue 58 dB or more below the asked level (50 Hz: an
alternation at the Nyquist frequency whose power depends on the phase, up to 3 dB over the average; 60 Hz:
a 40 Hz tone). That is the truth about 100 Hz data, not a defect: at 100 Hz, powerline conditions are a
negative control that must not move any model.

Since the chain is linear, each record's hum is a combination of two templates (the filtered sine and
cosine), computed once per rate, with the source signal extended beyond the record on both sides so
that the record is a window of continuous hum, free of filter start-up transients.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import EcgCrnnError
from .resampling import chain_filter, rate_ratio, resample_chain

SOURCE_FS = 500.0


@lru_cache(maxsize=16)
def templates(mains_hz: float, fs: float, n_samples: int, source_fs: float = SOURCE_FS):
    """(sine and cosine at the study's rate (2, n), their mean-removed Gram matrix at the source rate (2, 2)).

    A hum of phase p is cos(p) * sine + sin(p) * cosine; its power at the source rate is the quadratic form
    of (cos p, sin p) with the Gram matrix."""
    up, down = rate_ratio(source_fs, fs)
    if (n_samples * down) % up:
        raise EcgCrnnError(
            f"robustness: {n_samples} samples at {fs:g} Hz are no whole number of samples at {source_fs:g} Hz"
        )
    n_source = n_samples * down // up
    half = (len(chain_filter(source_fs, fs)) - 1) // (2 * up) + 1 if (up, down) != (1, 1) else 0
    pad = -(-half // down) * down  # source samples before and after, a whole number of output samples
    t = (np.arange(-pad, n_source + pad)) / source_fs
    waves = np.stack([np.sin(2 * np.pi * mains_hz * t), np.cos(2 * np.pi * mains_hz * t)])
    inside = waves[:, pad : pad + n_source]
    centred = inside - inside.mean(axis=1, keepdims=True)
    gram = centred @ centred.T / n_source
    start = pad * up // down
    at_fs = resample_chain(waves, source_fs, fs)[:, start : start + n_samples]
    at_fs.setflags(write=False)
    gram.setflags(write=False)
    return at_fs, gram


def hum(phases: np.ndarray, mains_hz: float, fs: float, n_samples: int):
    """Unit-amplitude hum for phases (records, leads): (noise at fs (records, leads, n) float32, its power
    at the source rate (records, leads) float64)."""
    (sine, cosine), gram = templates(float(mains_hz), float(fs), int(n_samples))
    a, b = np.cos(phases), np.sin(phases)
    power = a * a * gram[0, 0] + 2 * a * b * gram[0, 1] + b * b * gram[1, 1]
    a32, b32 = a.astype(np.float32)[..., None], b.astype(np.float32)[..., None]
    return a32 * sine.astype(np.float32) + b32 * cosine.astype(np.float32), power

"""Whether a record's physical signal can be an ECG at all: amplitudes in mV, both ways.

The checksums cover the digital samples, not the header's gains, units and baselines, so a header that is wrong
about those (uV written as mV, a gain 1000 times too small or too large, a baseline far off) passes every other
check and turns a good record into nonsense. Each lead's physical signal (invalid samples left out) must stay
within bounds calibrated on the 488 real PTB-XL records of the shared subset (5,856 leads):
- peak to peak (max - min): between 0.205 and 14.75 mV there. Refused above MAX_SPAN_MV = 100 mV: no PTB-XL
  record can reach it (int16 at its 1,000 adu/mV spans 65.5 mV), and a gain 1,000 times too small puts even
  the smallest real lead at 205 mV. Refused below MIN_SPAN_MV = 0.02 mV (a tenth of the smallest real lead): a
  gain 1,000 times too large leaves even the largest at 0.015 mV; a lead this quiet carries no ECG;
- the median: within 0.351 mV of 0 there (ECGs are high-pass filtered). Refused beyond MAX_OFFSET_MV = 10 mV,
  a baseline off by 10,000 adu at PTB-XL's gain.
What this cannot see: an error of a factor 10 or less within that span (real leads themselves differ by a factor
72), and a lead flat or entirely invalid (signal_problems in records.py names those; they are skipped here).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .records import INVALID

MAX_SPAN_MV = 100.0
MIN_SPAN_MV = 0.02
MAX_OFFSET_MV = 10.0


def amplitude_problems(
    digital: np.ndarray, gains_mv: Sequence[float], baselines: Sequence[int], leads: Sequence[str]
) -> list[str]:
    """One reason per lead whose physical amplitude (mV) no ECG can have; empty for a plausible record.
    `digital` (leads, samples), `gains_mv` in adu per mV."""
    digital = np.asarray(digital)
    valid = digital != INVALID
    g = np.asarray(gains_mv, np.float64)[:, None]
    physical = (digital.astype(np.float64) - np.asarray(baselines, np.float64)[:, None]) / g
    problems = []
    for i, lead in enumerate(leads):
        x = physical[i][valid[i]]
        if x.size == 0 or digital[i][valid[i]].min() == digital[i][valid[i]].max():
            continue  # no signal at all: signal_problems says so
        span, median = float(x.max() - x.min()), float(np.median(x))
        gain = f"gain {float(g[i, 0]):g} adu/mV"
        if span > MAX_SPAN_MV:
            problems.append(
                f"lead {lead}: {span:,.4g} mV peak to peak, more than the {MAX_SPAN_MV:g} mV a surface ECG can "
                f"show (check the header's {gain} and units)"
            )
        elif span < MIN_SPAN_MV:
            problems.append(
                f"lead {lead}: {span:.3g} mV peak to peak, less than the {MIN_SPAN_MV:g} mV of any real lead "
                f"(check the header's {gain} and units)"
            )
        if abs(median) > MAX_OFFSET_MV:
            problems.append(
                f"lead {lead}: median {median:+,.4g} mV, further from 0 than the {MAX_OFFSET_MV:g} mV a filtered "
                f"ECG can be (check the header's baseline, {int(baselines[i])} adu)"
            )
    return problems

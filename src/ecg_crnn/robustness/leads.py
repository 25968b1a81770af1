"""The 12 leads by name: which positions a corruption touches, and how noise channels become 12 leads.

Corruptions are defined in the standard order (`LEADS`: I, II, III, aVR, aVL, aVF, V1..V6, PTB-XL's
order) and mapped onto whatever order an array holds, so a record's lead V1 gets the same noise whatever
the array's lead order.

Noise channels -> leads (`channels_to_leads`): additive noise sources deliver 8 channels, the noise of
leads I and II and of the six chest leads. The other four limb leads are derived from I and II by
Einthoven's and Goldberger's relations (III = II - I, aVR = -(I + II)/2, aVL = I - II/2,
aVF = II - I/2), as an electrocardiograph derives them from the same three limb electrodes, so limb-lead
noise is correlated across leads as real electrode noise is. Each chest lead gets its own channel: the
chest electrodes move and pick up muscle activity independently of each other. (Their shared reference,
Wilson's central terminal, would add a common limb-electrode component to all six; it is left out.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..data.leads import LEADS
from ..errors import EcgCrnnError

LIMB = LEADS[:6]
CHEST = LEADS[6:]
N_CHANNELS = 8  # noise channels: I, II, V1..V6


def standard_positions(leads: Sequence[str]) -> np.ndarray:
    """For each standard lead (LEADS order), its position in `leads`; names are matched case-insensitively
    and must be the 12 standard leads, each once."""
    names = [str(name).upper() for name in leads]
    missing = [lead for lead in LEADS if lead not in names]
    extra = [name for name in names if name not in LEADS]
    if missing or extra or len(names) != len(LEADS):
        raise EcgCrnnError(
            f"robustness: leads {list(leads)} are not the 12 standard leads once each "
            f"(missing {missing}, unknown {extra})"
        )
    return np.array([names.index(lead) for lead in LEADS])


def positions(leads: Sequence[str], chosen: Sequence[str]) -> np.ndarray:
    """Positions of the `chosen` standard leads in `leads`."""
    pos = standard_positions(leads)
    return np.array([pos[LEADS.index(name)] for name in chosen], dtype=int)


def to_array_order(standard: np.ndarray, leads: Sequence[str]) -> np.ndarray:
    """(records, 12, ...) in the standard order -> the same in the order of `leads` (along axis 1)."""
    pos = standard_positions(leads)
    if (pos == np.arange(len(LEADS))).all():
        return standard
    out = np.empty_like(standard)
    out[:, pos] = standard
    return out


def channels_to_leads(channels: np.ndarray, leads: Sequence[str]) -> np.ndarray:
    """(records, 8, samples) noise channels (I, II, V1..V6) -> (records, 12, samples) in the order of
    `leads`, limb leads derived as the module docstring says. Element-wise arithmetic only, so each
    record's result is the same whatever else is in the batch."""
    if channels.ndim != 3 or channels.shape[1] != N_CHANNELS:
        raise ValueError(f"expected (records, {N_CHANNELS}, samples) noise channels, got {channels.shape}")
    pos = standard_positions(leads)
    out = np.empty((channels.shape[0], len(LEADS), channels.shape[2]), channels.dtype)
    lead_i, lead_ii = channels[:, 0], channels[:, 1]
    out[:, pos[0]] = lead_i
    out[:, pos[1]] = lead_ii
    np.subtract(lead_ii, lead_i, out=out[:, pos[2]])  # III = II - I
    np.multiply(lead_i + lead_ii, -0.5, out=out[:, pos[3]])  # aVR = -(I + II) / 2
    np.subtract(lead_i, 0.5 * lead_ii, out=out[:, pos[4]])  # aVL = I - II / 2
    np.subtract(lead_ii, 0.5 * lead_i, out=out[:, pos[5]])  # aVF = II - I / 2
    out[:, pos[6:]] = channels[:, 2:]
    return out

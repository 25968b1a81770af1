"""The evaluation windows of a record: where each window of a run's length starts.

The segment stage's layout.json gives the sampling rate, the record length and the stride; each run's window length
comes from study.windows. Training, evaluation, prediction and the cost stage lay windows out the same way.
"""

from __future__ import annotations

from ..errors import EcgCrnnError


def eval_starts(n_samples: int, window: int, stride: int) -> list[int]:
    """Window starts covering the record; the last window is aligned to the end so no tail is lost."""
    starts = list(range(0, n_samples - window + 1, stride))
    if starts[-1] != n_samples - window:
        starts.append(n_samples - window)
    return starts


def window_layout(layout: dict, window_s: float) -> tuple[int, list[int]]:
    """(window in samples, evaluation window starts) of a `window_s`-second window over the records that
    layout.json describes; a window as long as the record is scored once."""
    window = round(window_s * layout["fs"])
    if window < 1:
        raise EcgCrnnError(f"window {window_s:g} s: under one sample at {layout['fs']:g} Hz")
    if window > layout["record_samples"]:
        raise EcgCrnnError(
            f"window {window_s:g} s: longer than the records ({layout['record_samples'] / layout['fs']:g} s)"
        )
    return window, eval_starts(layout["record_samples"], window, layout["stride"])

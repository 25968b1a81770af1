"""Choosing the noise source from the configuration: nstdb when a directory is configured, otherwise the
synthetic generators. A configured directory that is missing or incomplete is an error naming it, never a
silent fall-back to synthetic noise (a study would then report real-noise results that are not)."""

from __future__ import annotations

from pathlib import Path

from .noise import NoiseSource, SyntheticNoise
from .nstdb import NstdbNoise


def open_noise_source(directory: str | Path | None) -> NoiseSource:
    """None: the synthetic generators; a path: the nstdb copy there (checked now, read when first used)."""
    if directory is None:
        return SyntheticNoise()
    return NstdbNoise(directory)

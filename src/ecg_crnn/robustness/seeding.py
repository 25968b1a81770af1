"""Random streams keyed by what a corruption depends on, and by nothing else.

Every record draws from its own generator, seeded by (stream, seed, record id): the corruption's name, the
study's robustness seed, and the record's id (PTB-XL's ecg_id). A record's corruption therefore never
depends on which other records are processed with it, in what order or in what chunks, so a stage can
corrupt the test fold piece by piece and every model still sees the same data.

The severity is deliberately not part of the key (common random numbers): at every severity a record gets
the same noise waveform, only scaled, and lead loss drops nested sets of leads, so a curve over severities
is not confounded by a fresh draw at each point.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..errors import EcgCrnnError


def _stream_word(stream: str) -> int:
    # A stable 64-bit number per name (Python's hash() is salted per process).
    return int.from_bytes(hashlib.sha256(stream.encode()).digest()[:8], "little")


def record_generator(stream: str, seed: int, record_id: int) -> np.random.Generator:
    """The generator of one record for one stream (a corruption's name)."""
    seed, record_id = int(seed), int(record_id)
    if seed < 0 or record_id < 0:
        raise EcgCrnnError(f"robustness: seed ({seed}) and record ids ({record_id}) must be non-negative")
    # SFC64: a fast, well-tested generator (a fold draws millions of normals per condition).
    return np.random.Generator(
        np.random.SFC64(np.random.SeedSequence([_stream_word(stream), seed, record_id]))
    )

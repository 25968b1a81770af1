"""Content hashes of files and arrays: the one sha256 every layer uses (downloads, publishing, fingerprints)."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_arrays(*arrays) -> str:
    """One digest of every byte of `arrays`, each with its dtype and shape (the same bytes read as another shape
    or type are other data). Read in place where contiguous: one pass over memory, no copy."""
    import numpy as np

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()

"""Choices that do not leak into the test of what was chosen.

A seed's quality carries over from the validation fold to the test fold (the same weights are scored on both).
Choosing the best model on the validation figures of seeds whose test figures then confirm the choice favours
the lucky seeds: the reviewer's simulation found false "beats the CNN" at 7-9 % where 2.5 % is promised.

So the seeds are split in advance into SELECTION seeds, whose validation figures make every choice (the best
model, the best recurrent model per window, the order of label families), and CONFIRMATION seeds, whose
weights take no part in any choice and whose test figures alone form every contrast that depends on a choice.
Every model of such a contrast is restricted to its confirmation seeds, the models not chosen among as well:
seeds that share a number share the data order, so their luck may be shared across architectures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .contrasts import SeedRuns


@dataclass(frozen=True)
class SeedSplit:
    selection: tuple[int, ...]
    confirmation: tuple[int, ...]


def split_seeds(seeds: Sequence[int], n_selection: int) -> SeedSplit:
    """The first `n_selection` seeds (in the configured order, fixed before any training) select; the rest
    confirm. Confirmation needs at least 2 seeds: its contrasts need a seed variance."""
    seeds = tuple(int(s) for s in seeds)
    if len(set(seeds)) != len(seeds):
        raise ValueError("seeds must be distinct")
    if n_selection < 1 or len(seeds) - n_selection < 2:
        raise ValueError(
            f"{len(seeds)} seeds cannot give {n_selection} selection seeds and at least 2 confirmation seeds"
        )
    return SeedSplit(seeds[:n_selection], seeds[n_selection:])


def choose(runs: Mapping[str, SeedRuns], candidates: Sequence[str], split: SeedSplit) -> str:
    """The candidate with the highest mean validation figure over the selection seeds (ties: the first in
    `candidates`)."""
    if not candidates:
        raise ValueError("nothing to choose from")
    scores = []
    for name in candidates:
        r = runs[name]
        if r.val is None:
            raise ValueError(f"{name}: no validation figures to choose on")
        scores.append(float(r.val[[r.seeds.index(s) for s in split.selection]].mean()))
    return candidates[int(np.argmax(scores))]


def confirmation_runs(
    runs: Mapping[str, SeedRuns], split: SeedSplit, names: Sequence[str] | None = None
) -> dict[str, SeedRuns]:
    """The models (all, or those named) restricted to the confirmation seeds, for the contrasts that depend on
    a choice."""
    return {name: runs[name].only(split.confirmation) for name in (runs if names is None else names)}

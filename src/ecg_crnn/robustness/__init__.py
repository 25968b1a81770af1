"""Corruptions for the robustness study: seeded, deterministic damage to test-fold ECGs, shared by every
model so that comparisons stay paired.

    from ecg_crnn.robustness import corrupt, open_noise_source, parse_plan
    plan = parse_plan(params.get("robustness"))
    source = open_noise_source(plan.noise_source)      # nstdb copy, or the synthetic generators
    for condition in plan.conditions:
        result = corrupt(x_mv, ecg_ids, condition.name, condition.severity, seed=plan.seed, fs=fs,
                         leads=leads, noise=source, snr_per=plan.snr_per)
        # result.x: corrupted mV; result.lost: lost leads; result.source: "nstdb" | "synthetic" | "none"

Modules: `registry` (names, severities, `corrupt`), `corruptions` (the functions), `snr` (the SNR's
definition), `noise` (synthetic generators), `nstdb` (the real noise records), `powerline`,
`resampling` (the recording chain), `leads` (lead names and noise-to-lead mapping), `seeding` (per-record
random streams), `plan` (the params.yaml section), `sources` (choosing the noise source).
"""

from .noise import SyntheticNoise
from .nstdb import FILES as NSTDB_FILES
from .nstdb import MAX_BYTES as NSTDB_MAX_BYTES
from .nstdb import NstdbNoise
from .plan import DEFAULT_PARAMS, Condition, RobustnessPlan, describe, parse_plan
from .registry import REGISTRY, Corrupted, Corruption, corrupt, zero_lost_leads
from .sources import open_noise_source

__all__ = [
    "DEFAULT_PARAMS",
    "NSTDB_FILES",
    "NSTDB_MAX_BYTES",
    "REGISTRY",
    "Condition",
    "Corrupted",
    "Corruption",
    "NstdbNoise",
    "RobustnessPlan",
    "SyntheticNoise",
    "corrupt",
    "describe",
    "open_noise_source",
    "parse_plan",
    "zero_lost_leads",
]

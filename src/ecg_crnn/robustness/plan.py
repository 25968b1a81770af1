"""The robustness configuration: params.yaml's `robustness` section (config.RobustnessSettings holds its
defaults), checked, and the conditions it names. A section given in params.yaml replaces the defaults key by key (a `corruptions` mapping given there is the whole
list of conditions, so a study can run a subset). Every condition is one (corruption, severity) pair,
applied alone to the clean test fold.

Why these severities: the additive noises share 24, 12 and 6 dB, levels of nstdb's own stress test
records (24 ... -6 dB): from barely visible (24 dB, noise RMS 6 % of the signal's) to heavy (6 dB, the
signal's RMS only twice the noise's); one axis for every kind lets the report rank the kinds. Powerline at 100 Hz is a negative control
(the chain removes it, see `powerline`). Lead loss at 1, 3 and 6 random leads, and the two reduced sets
that devices record: six limb leads, and lead I alone (a watch). Gain halved and doubled (5 and
20 mm/mV against the usual 10). Shifts of 0.1 s (about a QRS width) and 0.5 s (half a beat at 60 bpm),
both under the 1.25 s evaluation stride.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..config import RobustnessSettings
from ..errors import EcgCrnnError
from .registry import REGISTRY, check_severity
from .snr import SCOPES

# the defaults, written once in config.py (and documented in params.yaml)
DEFAULT_PARAMS: dict = RobustnessSettings().model_dump()
KEYS = tuple(DEFAULT_PARAMS)


@dataclass(frozen=True)
class Condition:
    name: str
    severity: float

    @property
    def key(self) -> str:
        """A file- and DVC-friendly name, e.g. gaussian_24, gain_0.5."""
        return f"{self.name}_{self.severity:g}"


@dataclass(frozen=True)
class RobustnessPlan:
    seed: int
    noise_source: str | None  # where the noise stage downloaded nstdb from; None: the synthetic generators
    snr_per: str
    conditions: tuple[Condition, ...]


def parse_plan(section: Mapping | None = None) -> RobustnessPlan:
    """params.yaml's `robustness` section (None: the defaults) -> a checked plan; errors name the key."""
    section = dict(section or {})
    unknown = sorted(set(section) - set(KEYS))
    if unknown:
        raise EcgCrnnError(f"robustness: unknown key(s) {', '.join(unknown)} (known: {', '.join(KEYS)})")
    params = {**DEFAULT_PARAMS, **section}
    seed = params["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise EcgCrnnError(f"robustness.seed: {seed!r} is not a non-negative integer")
    if params["snr_per"] not in SCOPES:
        raise EcgCrnnError(f"robustness.snr_per: {params['snr_per']!r} is not one of {', '.join(SCOPES)}")
    source = params["noise_source"]
    if source is not None and (not isinstance(source, str | Path) or not str(source)):
        raise EcgCrnnError(
            f"robustness.noise_source: {source!r} is neither null nor a source of nstdb (a URL, s3:// or a folder)"
        )
    return RobustnessPlan(
        seed,
        str(source) if source is not None else None,
        params["snr_per"],
        _conditions(params["corruptions"]),
    )


def _conditions(corruptions) -> tuple[Condition, ...]:
    if not isinstance(corruptions, Mapping) or not corruptions:
        raise EcgCrnnError("robustness.corruptions: expected a mapping of corruption name -> severities")
    out = []
    for name, severities in corruptions.items():
        if name not in REGISTRY:
            raise EcgCrnnError(
                f"robustness.corruptions.{name}: unknown corruption (known: {', '.join(REGISTRY)})"
            )
        if not isinstance(severities, list) or not severities:
            raise EcgCrnnError(f"robustness.corruptions.{name}: expected a non-empty list of severities")
        values = [check_severity(name, s) for s in severities]
        if len(set(values)) != len(values):
            raise EcgCrnnError(f"robustness.corruptions.{name}: severities {severities} repeat")
        out += [Condition(name, v) for v in values]
    return tuple(out)


def describe(plan: RobustnessPlan) -> list[dict]:
    """One row per condition, with what its severity means (for the report and a stage's metadata)."""
    return [
        {
            "condition": c.key,
            "corruption": c.name,
            "severity": c.severity,
            "meaning": REGISTRY[c.name].severity,
        }
        for c in plan.conditions
    ]

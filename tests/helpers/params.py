"""The one way tests set parameters: dotted keys, `{"train.epochs": 3}`, onto a params file or a project."""

from pathlib import Path

import yaml

from ecg_crnn.config import Params, from_dict

from .paths import REPO

# Settings that keep a training run to seconds on 2 CPU cores.
SMALL = {
    "models.channels": [16, 16, 32, 32],
    "models.hidden": 16,
    "train.batch_size": 32,
    "evaluate.bootstrap": 50,
    "evaluate.latency_runs": 3,
    # two of the robustness stage's conditions (an additive noise and a lead loss) instead of all 27
    "robustness.corruptions": {"gaussian": [12.0], "lead_loss_random": [3.0]},
}

# The small grid of the study tests: 2 architectures x 2 windows x 2 seeds, tiny models, 3 epochs (long
# enough for the pool test to kill a worker between a run's first checkpoint and its end), one thread per
# training job (so that the local runner runs two at once on 2 cores, with the serial run's bytes).
GRID = {
    **SMALL,
    "train.epochs": 3,
    "train.threads": 1,
    "study.architectures": ["cnn", "cnn_bilstm1"],
    "study.reference": "cnn_bilstm1",
    "study.windows": [2.5, 10],
    "train.seeds": [0, 1],
    "study.selection_seeds": 0,  # two seeds: no separate selection (the report warns)
}


def nested(overrides: dict, base: dict | None = None) -> dict:
    """`base` (a params mapping) with `overrides` ({"section.key": value}) applied."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in (base or {}).items()}
    for dotted, value in overrides.items():
        section, key = dotted.split(".", 1)
        out.setdefault(section, {})[key] = value
    return out


def set_params(target: Path, overrides: dict) -> Path:
    """Apply `overrides` to a params file, or to the params.yaml of a project folder, in place."""
    path = Path(target) / "params.yaml" if Path(target).is_dir() else Path(target)
    params = yaml.safe_load(path.read_text()) if path.is_file() else {}
    path.write_text(yaml.safe_dump(nested(overrides, params), sort_keys=False))
    return path


def write_params(path: Path, overrides: dict | None = None) -> Path:
    """A params file at `path`: the repository's params.yaml with `overrides`."""
    path = Path(path)
    path.write_text((REPO / "params.yaml").read_text())
    return set_params(path, overrides or {})


def params(overrides: dict | None = None) -> Params:
    """The repository's parameters with `overrides`, validated."""
    return from_dict(nested(overrides or {}, yaml.safe_load((REPO / "params.yaml").read_text())))

"""params.yaml -> typed, validated settings, by schema.

One pydantic model per section of params.yaml, named like it. What each key means is said once, in params.yaml's
comments; here are only the types and the bounds. Loading checks every key before any work starts: an unknown key,
a value of the wrong type or outside its allowed set is reported by its dotted name (e.g. `filter.task`), the bad
value and what is allowed, together with the file it came from.

Strict types: an int is accepted where a float is asked for (and becomes a float), nothing else is converted, so a
bool is no int and "2" is no number.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import EcgCrnnError
from .registry import ALL_ARCHITECTURES, REGISTRY

TASKS = ("all", "diagnostic", "subdiagnostic", "superdiagnostic", "form", "rhythm")
SAMPLING_RATES = (100, 500)


class ConfigError(EcgCrnnError):
    pass


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    def replaced(self, **changes):
        """A copy with `changes`, validated like a section read from params.yaml."""
        return type(self).model_validate({**self.model_dump(), **changes})


Positive = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegative = Annotated[int, Field(ge=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]


class DataSettings(Section):
    sampling_rate: Literal[100, 500] = 100


class DownloadSettings(Section):
    source: str = "https://physionet.org/files/ptb-xl/1.0.3/"
    s3_endpoint_url: str | None = None
    s3_unsigned: bool = True
    workers: Positive = 16
    retries: NonNegative = 3
    timeout_s: PositiveFloat = 60.0


class FilterSettings(Section):
    task: Literal[TASKS] = "subdiagnostic"
    min_class_count: NonNegative = 0
    validated_only: bool = False
    records: Literal["all", "present"] = "all"
    bad_records: Literal["drop", "refuse"] = "drop"
    workers: Positive = 2


class SegmentSettings(Section):
    stride_s: PositiveFloat = 1.25
    train_folds: list[int] = [1, 2, 3, 4, 5, 6, 7, 8]
    val_folds: list[int] = [9]
    test_folds: list[int] = [10]

    @model_validator(mode="after")
    def _disjoint(self):
        seen: dict[int, str] = {}
        for name in ("train_folds", "val_folds", "test_folds"):
            folds = getattr(self, name)
            if not folds:
                raise ConfigError(f"segment.{name}: must name at least one fold")
            for fold in folds:
                if not 1 <= fold <= 10:
                    raise ConfigError(f"segment.{name}: fold {fold} is not in 1..10")
                if fold in seen:
                    raise ConfigError(f"segment.{name}: fold {fold} is already in segment.{seen[fold]}")
                seen[fold] = name
        return self


class Margins(Section):
    macro_auroc: NonNegativeFloat = 0.005
    macro_auprc: NonNegativeFloat = 0.02
    micro_f1: NonNegativeFloat = 0.01
    subset_accuracy: NonNegativeFloat = 0.02
    hamming_loss: NonNegativeFloat = 0.002


class StudySettings(Section):
    architectures: list[str] = list(ALL_ARCHITECTURES)
    windows: list[PositiveFloat] = [2.5, 10.0]
    reference: str = "cnn_bilstm1"
    margins: Margins = Margins()
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05

    @model_validator(mode="after")
    def _grid(self):
        if not self.architectures:
            raise ConfigError("study.architectures: must name at least one architecture")
        for i, name in enumerate(self.architectures):
            if name not in REGISTRY:
                raise ConfigError(
                    f"study.architectures[{i}]: unknown architecture {name!r}; known: {', '.join(REGISTRY)}"
                )
        if len(set(self.architectures)) != len(self.architectures):
            raise ConfigError("study.architectures: names must be unique")
        if self.reference not in self.architectures:
            raise ConfigError(f"study.reference: {self.reference!r} is not in study.architectures")
        if not self.windows:
            raise ConfigError("study.windows: must name at least one window length")
        if len(set(self.windows)) != len(self.windows):
            raise ConfigError(f"study.windows: lengths must be distinct, got {self.windows!r}")
        return self


class ModelSettings(Section):
    channels: list[Positive] = [64, 64, 128, 128]
    kernel_size: Positive = 7
    hidden: Positive = 128
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.3

    @model_validator(mode="after")
    def _channels(self):
        if not self.channels:
            raise ConfigError(f"models.channels: must be positive integers, got {self.channels!r}")
        return self


class TrainSettings(Section):
    epochs: Positive = 40
    batch_size: Positive = 64
    lr: PositiveFloat = 0.003
    weight_decay: NonNegativeFloat = 0.01
    grad_clip: NonNegativeFloat = 1.0
    warmup: Annotated[float, Field(ge=0, lt=1)] = 0.1
    cooldown: Annotated[float, Field(gt=0, le=1)] = 0.25
    patience: Positive | None = 8
    class_weighted: bool = False
    seeds: list[NonNegative] = [0, 1, 2]
    device: Literal["auto", "cpu", "cuda"] = "auto"
    bf16: bool = True

    @model_validator(mode="after")
    def _schedule_and_seeds(self):
        if self.warmup + self.cooldown > 1:
            raise ConfigError(
                f"train.warmup + train.cooldown: must not exceed 1, got {self.warmup} + {self.cooldown}"
            )
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(
                f"train.seeds: must be a non-empty list of distinct integers, got {self.seeds!r}"
            )
        return self


class EvaluateSettings(Section):
    aggregate: Literal["max", "mean"] = "max"
    bootstrap: Positive = 1000
    bootstrap_seed: int = 0
    latency_runs: Positive = 30


class DriftSettings(Section):
    drift_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    method: Literal["auto", "tests", "distances"] = "auto"
    top: Positive = 10


class StorageSettings(Section):
    publish_url: str | None = None
    endpoint_url: str | None = None


OBJECTIVES = ("macro_auroc", "params", "macs", "latency")  # the first is maximized, the costs minimized


class TuneSettings(Section):
    trials: Positive = 12
    epochs: Positive | None = None
    weight_decay: list[PositiveFloat] | None = None

    @model_validator(mode="after")
    def _range(self):
        wd = self.weight_decay
        if wd is not None and (len(wd) != 2 or not wd[0] <= wd[1]):
            raise ConfigError(
                f"search.tune.weight_decay: expected [low, high] with 0 < low <= high, got {wd!r}"
            )
        return self


class SearchSettings(Section):
    trials: Positive = 20
    study_name: str = "ecg-crnn"
    storage: str | None = None
    objectives: list[Literal[OBJECTIVES]] = ["macro_auroc"]
    sampler: Literal["tpe", "nsga2"] = "tpe"
    windows: list[PositiveFloat] = [2.5, 10.0]
    rnn: list[Literal["none", "lstm", "gru"]] = ["none", "lstm", "gru"]
    bidirectional: list[bool] = [False, True]
    depth: list[Annotated[int, Field(ge=1, le=3)]] = [1, 2, 3]
    hidden: list[Positive] = [64, 128, 256]
    dropout: list[NonNegativeFloat] = [0.1, 0.5]
    lr: list[NonNegativeFloat] = [0.0003, 0.01]
    epochs: Positive = 20
    pruner: Literal["median", "hyperband", "none"] = "median"
    seed: NonNegative = 1000
    tune: TuneSettings = TuneSettings()
    heartbeat_s: Positive = 30
    retries: int = 2
    mode: Literal["local", "pool"] = "local"
    work_pool: str = "ecg-crnn"
    workers: Positive = 2
    worker_timeout_s: Positive = 300

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @model_validator(mode="after")
    def _space(self):
        for key in ("windows", "rnn", "bidirectional", "hidden", "dropout", "lr"):
            if not getattr(self, key):
                raise ConfigError(f"search.{key}: the search space is empty")
        if any(r != "none" for r in self.rnn) and not self.depth:
            raise ConfigError("search.depth: needs a depth in 1..3 when search.rnn includes lstm or gru")
        for key in ("dropout", "lr"):
            lo_hi = getattr(self, key)
            if len(lo_hi) != 2 or not lo_hi[0] <= lo_hi[1]:
                raise ConfigError(f"search.{key}: expected [low, high] with 0 <= low <= high, got {lo_hi!r}")
        if self.dropout[1] >= 1:
            raise ConfigError(f"search.dropout: must stay below 1, got {self.dropout!r}")
        if self.lr[0] <= 0:
            raise ConfigError(f"search.lr: must be > 0, got {self.lr!r}")
        if (
            not self.objectives
            or self.objectives[0] != "macro_auroc"
            or len(set(self.objectives)) != len(self.objectives)
        ):
            raise ConfigError(
                "search.objectives: macro_auroc first, then any of params, macs, latency once each, "
                f"got {self.objectives!r}"
            )
        return self


class GridSettings(Section):
    work_pool: str = "ecg-crnn"
    git_remote: str | None = None
    resume_root: str | None = None
    heartbeat_s: int = 30
    stale_after_s: int = 100
    retries: NonNegative = 2
    worker_timeout_s: Positive = 600

    @model_validator(mode="after")
    def _heartbeats(self):
        # Prefect sends flow-run heartbeats at most every 30 s; a run is stale only after two are missed.
        if self.heartbeat_s < 30:
            raise ConfigError(
                f"grid.heartbeat_s: Prefect sends heartbeats at most every 30 s, got {self.heartbeat_s}"
            )
        if self.stale_after_s <= 2 * self.heartbeat_s:
            raise ConfigError(
                f"grid.stale_after_s: must exceed two heartbeats (2 x grid.heartbeat_s = {2 * self.heartbeat_s}), "
                f"got {self.stale_after_s}"
            )
        return self


class RetrainSettings(Section):
    cron: str = "0 3 * * 0"
    timezone: str = "UTC"
    publish: bool = True


class Params(Section):
    data: DataSettings = DataSettings()
    download: DownloadSettings = DownloadSettings()
    filter: FilterSettings = FilterSettings()
    segment: SegmentSettings = SegmentSettings()
    study: StudySettings = StudySettings()
    models: ModelSettings = ModelSettings()
    train: TrainSettings = TrainSettings()
    evaluate: EvaluateSettings = EvaluateSettings()
    drift: DriftSettings = DriftSettings()
    storage: StorageSettings = StorageSettings()
    search: SearchSettings = SearchSettings()
    grid: GridSettings = GridSettings()
    retrain: RetrainSettings = RetrainSettings()

    @model_validator(mode="after")
    def _search_seed_is_not_a_grid_seed(self):
        # A trial trained with a grid seed starts from the same weights and crops as that seed's grid run: the
        # search's choice would then rest on the very runs the grid goes on to test.
        if self.search.seed in self.train.seeds:
            raise ConfigError(
                f"search.seed: {self.search.seed} is also in train.seeds {self.train.seeds}; the search trains "
                "with a seed of its own, so that what it chooses is tested on seeds that took no part in the choice"
            )
        return self


# ---- messages that name the key -------------------------------------------------------------------------

_TYPE_NAMES = {
    "int_type": "int",
    "float_type": "float",
    "string_type": "str",
    "bool_type": "bool",
    "list_type": "a list",
    "model_type": "a mapping",
    "dict_type": "a mapping",
}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def _dotted(loc: tuple) -> str:
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


def _section_of(loc: tuple) -> type[BaseModel] | None:
    """The model class that holds the last key of `loc` (for the list of known keys or allowed values)."""
    model: Any = Params
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        tp = field.annotation if field else None
        if not (isinstance(tp, type) and issubclass(tp, BaseModel)):
            break
        model = tp
    return model


def _literal_values(tp) -> tuple:
    """The values of the Literal inside an annotation (Literal[...], list[Literal[...]], Literal[...] | None)."""
    if getattr(tp, "__origin__", None) is Literal:
        return get_args(tp)
    for arg in get_args(tp):
        if values := _literal_values(arg):
            return values
    return ()


def _allowed(loc: tuple) -> str:
    model = _section_of(loc)
    name = next((p for p in reversed(loc) if isinstance(p, str) and model and p in model.model_fields), None)
    return ", ".join(map(str, _literal_values(model.model_fields[name].annotation))) if name else ""


def describe(error: dict) -> str:
    """One pydantic error as today's messages put it: the dotted key, what is wrong, the bad value."""
    loc, kind, value = tuple(error["loc"]), error["type"], error.get("input")
    key = _dotted(loc)
    if kind == "extra_forbidden":
        parent = _dotted(loc[:-1])
        model = _section_of(loc)
        known = ", ".join(model.model_fields) if model else ""
        return f"unknown key {key} (known keys{' in ' + parent if parent else ''}: {known})"
    if kind == "literal_error":
        return f"{key}: {value!r} is not one of {_allowed(loc)}"
    if kind in _TYPE_NAMES:
        return f"{key or 'params'}: expected {_TYPE_NAMES[kind]}, got {value!r}"
    if kind in _BOUNDS:
        bound = next(iter(error["ctx"].values()))
        return f"{key}: must be {_BOUNDS[kind]} {bound:g}, got {value!r}"
    return f"{key}: {error['msg']}, got {value!r}"


def from_dict(raw: Any) -> Params:
    if raw is None:
        raw = {}
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe(exc.errors()[0])) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml; every error names the file and the key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such parameters file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        return from_dict(raw or {})
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_params_or_defaults(path: str | Path) -> Params:
    """params.yaml when it exists (predict and export work from a bare model folder too), else the defaults."""
    return load_params(path) if Path(path).is_file() else Params()
